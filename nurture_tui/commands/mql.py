"""`nurture mql list|show|accept|reject|reassign|snooze`: the rep's MQL queue, every action audited."""

from __future__ import annotations

from datetime import datetime

import typer

from .common import echo_json, state

NAME = "mql"
app = typer.Typer(help="The MQL queue: triage qualified leads (accept, reject → recycle, reassign, snooze).",
                  no_args_is_help=True)


def _who(ctx: typer.Context, as_user: str | None) -> str:
    return as_user or state(ctx).settings().user.name


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: str = typer.Option("open", "--status", help="open (new + snoozed-and-due), all, new, snoozed, "
                                                        "accepted, rejected, recycled."),
    rep: str | None = typer.Option(None, "--rep", help="Only entries assigned to this username."),
    queue: str | None = typer.Option(None, "--queue", help="Only entries waiting in this queue."),
    overdue: bool = typer.Option(False, "--overdue", help="Only entries past the SLA."),
    limit: int = typer.Option(200, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List MQL queue entries, oldest first (SLA age, overdue flag)."""
    from ..scoring import mql

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        entries = mql.list_queue(conn, ws.clock.now(), ws.settings, status=status, rep=rep, queue=queue,
                                 overdue_only=overdue, limit=limit)
    if as_json:
        echo_json([{k: v for k, v in e.__dict__.items() if k != "summary"} for e in entries])
        return
    if not entries:
        typer.echo("no MQLs")
        return
    typer.echo(f"{'ID':>6} {'KIND':<4} {'LEAD':<32} {'SCORE':>6} {'GR':<3} {'REP/QUEUE':<16} {'AGE':>7} "
               f"{'STATUS':<9} SLA")
    for e in entries:
        owner = e.rep or (f"[{e.queue}]" if e.queue else "-")
        sla = "OVERDUE" if e.overdue else ""
        kind = "MQA" if e.account_id is not None else "MQL"  # MQA: the account qualified (ABM)
        typer.echo(f"{e.id:>6} {kind:<4} {e.email[:32]:<32} {e.score:>6.0f} {e.grade or '-':<3} {owner[:16]:<16} "
                   f"{e.age_hours:>6.1f}h {e.status:<9} {sla}")


@app.command("show")
def show_cmd(ctx: typer.Context, mql_id: int = typer.Argument(..., metavar="ID"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """One entry with its engagement summary."""
    from ..scoring import mql

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        e = mql.get(conn, mql_id, ws.clock.now(), ws.settings)
    if as_json:
        echo_json(e.__dict__)
        return
    typer.echo(f"MQL {e.id} · {e.status} · {e.rep or e.queue or 'unassigned'} · age {e.age_hours:.1f}h"
               + (" · OVERDUE" if e.overdue else "")
               + (f" · rejected: {e.reject_reason}" if e.reject_reason else ""))
    typer.echo(e.summary)


@app.command("accept")
def accept_cmd(ctx: typer.Context, mql_id: int = typer.Argument(..., metavar="ID"),
               as_user: str | None = typer.Option(None, "--as", help="Acting user (default: config user).")) -> None:
    """Accept an MQL (lead status → the accepted status, pushed to Salesforce)."""
    from ..scoring import mql
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        mql.accept(conn, mql_id, _who(ctx, as_user), ws.clock.now(), ws.settings)
    typer.echo(f"accepted MQL {mql_id}")


@app.command("reject")
def reject_cmd(ctx: typer.Context, mql_id: int = typer.Argument(..., metavar="ID"),
               reason: str = typer.Option(..., "--reason", help="Why sales does not take it (kept, audited)."),
               as_user: str | None = typer.Option(None, "--as")) -> None:
    """Reject with a reason: the lead is recycled (score reset, recycle sequence if configured)."""
    from ..scoring import mql
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        status = mql.reject(conn, mql_id, reason, _who(ctx, as_user), ws.clock.now(), ws.settings)
    typer.echo(f"MQL {mql_id} {status}")


@app.command("reassign")
def reassign_cmd(ctx: typer.Context, mql_id: int = typer.Argument(..., metavar="ID"),
                 to: str = typer.Option(..., "--to", help="Username of the new rep."),
                 as_user: str | None = typer.Option(None, "--as")) -> None:
    """Hand the MQL to another rep (owner + a Task for them, pushed to Salesforce)."""
    from ..scoring import mql
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        mql.reassign(conn, mql_id, to, _who(ctx, as_user), ws.clock.now(), ws.settings)
    typer.echo(f"MQL {mql_id} reassigned to {to}")


@app.command("snooze")
def snooze_cmd(ctx: typer.Context, mql_id: int = typer.Argument(..., metavar="ID"),
               until: str | None = typer.Option(None, "--until", help="ISO date/time (UTC if no offset)."),
               for_: str | None = typer.Option(None, "--for", help="Duration, e.g. 2d, 36h."),
               as_user: str | None = typer.Option(None, "--as")) -> None:
    """Hide the entry until a time; the SLA restarts when it comes back."""
    from ..errors import ValidationError
    from ..scoring import mql
    from ..sequences.model import parse_duration
    from ..store.engine import write_tx

    if (until is None) == (for_ is None):
        raise ValidationError("snooze", "give exactly one of --until or --for")
    with state(ctx).workspace() as ws:
        now = ws.clock.now()
        if for_ is not None:
            try:
                when = now + parse_duration(for_)
            except ValueError as exc:
                raise ValidationError("--for", str(exc)) from None
        else:
            when = _parse_until(str(until))
        with write_tx(ws.engine) as conn:
            mql.snooze(conn, mql_id, when, _who(ctx, as_user), now)
    typer.echo(f"MQL {mql_id} snoozed until {when.isoformat()}")


def _parse_until(text: str) -> datetime:
    from datetime import UTC

    from ..errors import ValidationError

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("--until", f"not an ISO date/time: {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
