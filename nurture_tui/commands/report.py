"""`nurture report <name> [--since DATE] [--until DATE] [--sequence NAME] [--segment NAME]
[--format table|json|csv] [--output FILE]`: one report from the local store (see docs/reports.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import state

REPORT_NAMES = "emails, funnel, progression, time-to-opportunity, influence, splits, mql, adaptive"


def report(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=f"The report: {REPORT_NAMES}."),
    since: str | None = typer.Option(None, "--since", help="First day (YYYY-MM-DD, UTC); default 90 days back."),
    until: str | None = typer.Option(None, "--until", help="Last day, inclusive (YYYY-MM-DD, UTC); default today."),
    sequence: str | None = typer.Option(None, "--sequence", help="Only this sequence."),
    segment: str | None = typer.Option(None, "--segment", help="Only leads of this saved segment."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    output: Path | None = typer.Option(None, "--output", help="Write to FILE instead of standard output."),
) -> None:
    """Email metrics, sequence funnels, lead progression, time to opportunity, pipeline influence, split
    tests, MQL flow and adaptive decisions (each with why), computed from the local store."""
    from ..errors import ValidationError
    from ..reports.common import parse_day
    from ..reports.render import FORMATS, render
    from ..reports.service import check_name, load_report

    check_name(name)
    if fmt not in FORMATS:
        raise ValidationError("--format", f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    first = parse_day(since, "--since") if since else None
    last = parse_day(until, "--until") if until else None
    with state(ctx).workspace() as ws:
        result = load_report(ws.engine, ws.settings, name, ws.clock.now(), since=first, until=last,
                             sequence=sequence, segment=segment)
    text = render(result, fmt)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValidationError("--output", f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {result.title.lower()} ({len(result.rows)} rows) to {output}", err=True)


COMMANDS = [("report", report)]
