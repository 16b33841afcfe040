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
