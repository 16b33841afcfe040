"""`nurture sync [--pull] [--push] [--full]`: one two-way sync with the configured Salesforce org."""

from __future__ import annotations

import typer

from .common import echo_json, state


def sync(
    ctx: typer.Context,
    pull: bool = typer.Option(False, "--pull", help="Only pull (Salesforce → nurture)."),
    push: bool = typer.Option(False, "--push", help="Only push (nurture → Salesforce)."),
    full: bool = typer.Option(False, "--full", help="Re-read everything instead of changes since the watermark."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Queue failed pushes again first."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Sync with Salesforce now (both directions unless --pull or --push)."""
    from ..errors import NurtureError
    from ..salesforce.sync import retry_errors as requeue
    from ..salesforce.sync import run_sync

    with state(ctx).workspace() as ws:
        if not ws.settings.salesforce.enabled:
            raise NurtureError("Salesforce sync is not enabled: set salesforce.enabled = true in the config "
                               "(or NURTURE_SALESFORCE__ENABLED=true); see docs/salesforce.md")
        requeued = requeue(ws) if retry_errors else 0
        both = not pull and not push
        report = run_sync(ws, pull=pull or both, push=push or both, full=full)
    if as_json:
        echo_json({**report.to_dict(), "requeued": requeued})
    else:
        if requeued:
            typer.echo(f"requeued {requeued} failed pushes")
        for name, o in report.pulled.items():
            if o.fetched or o.deleted or o.merged:
                typer.echo(f"pull {name:<15} {o.fetched:>7} read  {o.inserted:>6} new  {o.updated:>6} updated  "
                           f"{o.deleted} deleted  {o.merged} merged  {o.converted} converted  {o.errors} errors "
                           f"({o.via})" + (f"; {o.erased} erased people not brought back" if o.erased else ""))
        if report.pushed is not None:
            p = report.pushed
            typer.echo(f"push {p.sent} sent, {p.failed} failed, {p.retry_later} to retry, {p.deferred} waiting for a "
                       f"Salesforce id ({p.collection_calls} collection calls, {p.bulk_jobs} bulk jobs)"
                       + ("; API budget reached" if p.budget_stopped else ""))
        typer.echo(f"{report.api_calls} API calls, budget {report.budget_used}/{report.budget_allowed}, "
                   f"{report.open_errors} open sync errors")
    if report.error:
        typer.echo(f"error: sync stopped: {report.error}", err=True)
        raise typer.Exit(1)


COMMANDS = [("sync", sync)]
