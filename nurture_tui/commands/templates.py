"""`nurture templates …`: list, show, validate and apply template files, preview for a lead."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import echo_json, state

NAME = "templates"
app = typer.Typer(help="Email templates: validate, apply, preview.", no_args_is_help=True)


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON lines.")) -> None:
    """Templates with category, stage and version."""
    from ..mail import templates

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        rows = templates.list_templates(conn)
    for t in rows:
        if as_json:
            echo_json({"name": t.name, "category": t.category, "stage": t.stage, "version": t.version,
                       "subject": t.subject, "updated_at": t.updated_at})
        else:
            typer.echo(f"{t.name:<32} {t.category:<14} {t.stage or '-':<14} v{t.version:<4} {t.subject}")


@app.command("show")
def show_cmd(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Template name.")]) -> None:
    """Print a template's source (current version)."""
    from ..mail import templates

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        src = templates.get_source(conn, name)
    typer.echo(f"name: {src['name']}  category: {src['category']}  stage: {src['stage'] or '-'}  "
               f"version: {src['version']}")
    typer.echo(f"subject: {src['subject']}")
    typer.echo("--- html")
    typer.echo(src["html"])
    typer.echo("--- text" + ("" if src["text"] else " (derived from html)"))
    if src["text"]:
        typer.echo(src["text"])


@app.command("validate")
def validate_cmd(file: Annotated[Path, typer.Argument(help="YAML template file.")]) -> None:
    """Check syntax and merge fields of every template in FILE (no workspace needed)."""
    from ..errors import ValidationError
    from ..mail import files, templates

    items = files.load_template_file(file)
    for item in items:
        try:
            templates.validate(**item)
        except ValidationError as err:
            raise ValidationError(f"{file}: {err.where}", err.message) from None
    typer.echo(f"{file}: {len(items)} template(s) OK")


@app.command("apply")
def apply_cmd(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="YAML template file.")]) -> None:
    """Validate and save every template in FILE (all or nothing); changed bodies get a new version."""
    from ..errors import ValidationError
    from ..mail import files, templates
    from ..store.engine import write_tx

    items = files.load_template_file(file)
    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        for item in items:
            try:
                templates.upsert_template(conn, **item, user=ws.user, now=ws.clock.now())
            except ValidationError as err:
                raise ValidationError(f"{file}: {err.where}", err.message) from None
        names = [i["name"] for i in items]
    typer.echo(f"applied {len(names)} template(s): {', '.join(names)}")


@app.command("preview")
def preview_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name.")],
    lead: Annotated[str, typer.Option("--lead", help="Render for this lead (email or id).")],
    part: Annotated[str, typer.Option("--part", help="subject, html, text, headers or all.")] = "all",
) -> None:
    """Render a template for a lead exactly as it would be sent (tracking, footer, headers); writes nothing."""
    from ..errors import NurtureError
    from ..mail.preview import preview

    if part not in ("subject", "html", "text", "headers", "all"):
        raise NurtureError(f"--part {part!r}: one of subject, html, text, headers, all")
    with state(ctx).workspace() as ws:
        row = preview(ws, name, lead)
    if part in ("subject", "all"):
        typer.echo(row["subject"] if part == "subject" else f"Subject: {row['subject']}")
    if part in ("headers", "all"):
        for key, value in row["headers"].items():
            typer.echo(f"{key}: {value}")
    if part in ("text", "all"):
        typer.echo(("\n--- text\n" if part == "all" else "") + row["text"])
    if part in ("html", "all"):
        typer.echo(("--- html\n" if part == "all" else "") + row["html"])


@app.command("lint")
def lint_cmd(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Templates (default: all).")] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Render for this lead (default: a sample lead).")] = None,
    as_json: bool = typer.Option(False, "--json", help="One JSON line per template."),
    no_spam: bool = typer.Option(False, "--no-spamassassin", help="Skip the SpamAssassin score."),
) -> None:
    """Deliverability lint: render each template as it would be sent and report problems and, when
    SpamAssassin is installed, its local-rules score. Exits 1 when a template has a problem."""
    from ..mail import lint
    from ..mail.preview import find_lead

    # the sample lead is inserted in a transaction that is rolled back: lint writes nothing
    with state(ctx).workspace() as ws, ws.engine.connect() as conn, conn.begin() as tx:
        lead_id = find_lead(conn, lead) if lead else None
        results = lint.render_for_lint(conn, ws.settings, lint.template_names(conn, names), lead_id,
                                       ws.clock.now())
        tx.rollback()
    spam = not no_spam and lint.spamassassin_available()
    if spam:
        lint.spam_scores(results)
    elif not no_spam and not as_json:
        typer.echo("note: spamassassin is not installed; no spam scores (apt-get install spamassassin)", err=True)
    for r in results:
        if as_json:
            echo_json(r.as_dict())
            continue
        score = f"  spamassassin {r.spam_score:+.1f}" if r.spam_score is not None else ""
        rules = " (" + ", ".join(f"{n} {p:g}" for n, p in r.spam_rules if p) + ")" if r.spam_rules else ""
        typer.echo(f"{r.name:<28} {'ok' if not r.problems else f'{len(r.problems)} problem(s)'}{score}{rules}")
        for p in r.problems:
            typer.echo(f"    - {p}")
    if any(r.problems for r in results):
        raise typer.Exit(1)


@app.command("test-send")
def test_send_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name.")],
    to: Annotated[list[str] | None, typer.Option("--to", help="Address (repeatable; default mail.seed_list).")] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Render for this lead (default: placeholders).")] = None,
) -> None:
    """Send a test of a saved template to a seed list through the relay: marked `X-Nurture-Test` and
    `[TEST]`, links inert, never queued or counted (audited as test_send)."""
    from ..errors import ValidationError
    from ..mail.preview import find_lead
    from ..mail.templates import default_cache
    from ..mail.testsend import addresses_problem, build_test_message, deliver, record_test_send
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws:
        addresses = list(to or ws.settings.mail.seed_list)
        if not addresses:
            raise ValidationError("--to", "give --to ADDRESS or set mail.seed_list")
        problem = addresses_problem(", ".join(addresses))
        if problem:
            raise ValidationError("--to", problem)
        now = ws.clock.now()
        with ws.engine.connect() as conn:
            compiled = default_cache().get(conn, name)
            lead_id = find_lead(conn, lead) if lead else None
            messages = [build_test_message(conn, ws.settings, compiled, to=a, lead_id=lead_id, now=now)
                        for a in addresses]
        for message in messages:
            deliver(ws.settings.mail, message, now)  # no transaction open while the relay talks
            with write_tx(ws.engine) as conn:
                record_test_send(conn, template=compiled.name, version=compiled.version, message=message,
                                 lead_id=lead_id, user=ws.user, now=now)
            echo_json({"template": compiled.name, "to": message.to, "message_id": message.message_id})
