"""`nurture sequences …`: validate/apply/export YAML files, publish versions, pause/resume, simulate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .common import echo_json, state

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ..workspace import Workspace

NAME = "sequences"
app = typer.Typer(help="Nurture sequences: YAML files, versions, simulation.", no_args_is_help=True)


@contextmanager
def _problems_exit() -> Iterator[None]:
    """Print every problem of a ProblemsError on its own line and exit 2."""
    from ..sequences.problems import ProblemsError

    try:
        yield
    except ProblemsError as err:
        for line in err.lines:
            typer.echo(line, err=True)
        raise typer.Exit(2) from None


def _ws(ctx: typer.Context) -> Workspace:
    return state(ctx).workspace()


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON lines.")) -> None:
    """Sequences with status, current version, draft changes and enrollments by status."""
    from ..sequences import service

    with _ws(ctx) as ws, ws.engine.connect() as conn:
        rows = service.list_sequences(conn)
    if as_json:
        for r in rows:
            echo_json({"name": r.name, "status": r.status, "version": r.version,
                       "draft_changed": r.draft_changed, "enrolled": r.enrolled, "error": r.error})
        return
    typer.echo(f"{'name':<28} {'status':<8} {'version':>7}  {'draft':<9} enrolled")
    for r in rows:
        enrolled = ", ".join(f"{k} {v}" for k, v in sorted(r.enrolled.items())) or "-"
        draft = "changed" if r.draft_changed else "="
        version = f"v{r.version}" if r.version else "-"
        typer.echo(f"{r.name:<28} {r.status:<8} {version:>7}  {draft:<9} {enrolled}")
        if r.error:
            typer.echo(f"  error: {r.error}")


@app.command("show")
def show_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Sequence name."),
             as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """One sequence: status (and why the engine paused it), current version, enrollments by status."""
    from ..errors import NotFoundError
    from ..sequences import service

    with _ws(ctx) as ws, ws.engine.connect() as conn:
        row = next((r for r in service.list_sequences(conn) if r.name == name), None)
    if row is None:
        raise NotFoundError(f"sequence {name!r}: no such sequence")
    data = {"name": row.name, "status": row.status, "version": row.version, "draft_changed": row.draft_changed,
            "enrolled": row.enrolled, "error": row.error, "description": row.description}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key == "enrolled":
            value = ", ".join(f"{k} {v}" for k, v in sorted(row.enrolled.items())) or "-"
        if value is not None and value != "":
            typer.echo(f"{key + ':':<15}{value}")
    if row.error:
        typer.echo(f"fix the reference, then `nurture sequences resume {row.name}`")


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Sequence YAML files."),
    no_db: bool = typer.Option(False, "--no-db", help="Do not open the workspace: check everything else and "
                               "list the references to stored templates and saved segments not checked."),
    strict: bool = typer.Option(False, "--strict", help="A reference that could not be checked (no "
                                "workspace) is an error."),
) -> None:
    """Check files; prints one line per problem (every file is checked) and exits 2 if there are any.

    Without a workspace (none configured, `--no-db`: a git hook, a CI job) everything that needs none is
    checked and each reference to a stored template or saved segment is listed as not checked; that is not
    an error unless `--strict`."""
    problems: list[str] = []
    unchecked: list[str] = []
    ws, why = (None, "--no-db") if no_db else _workspace_if_any(ctx)
    if ws is None:
        for f in files:
            bad, skipped = _check_offline(f)
            problems += bad
            unchecked += skipped
    else:
        with ws, ws.engine.connect() as conn:
            for f in files:
                problems += _check_one(conn, f)
    for line in problems:
        typer.echo(line)
    for line in unchecked:
        typer.echo(f"{'error' if strict else 'note'}: {line}")
    if problems or (strict and unchecked):
        raise typer.Exit(2)
    plural = "s" if len(files) != 1 else ""
    tail = f"; {len(unchecked)} reference{'s' if len(unchecked) != 1 else ''} not checked ({why})" if unchecked else ""
    typer.echo(f"ok: {len(files)} file{plural} valid{tail}")


def _workspace_if_any(ctx: typer.Context) -> tuple[Workspace | None, str]:
    """The workspace, or (None, why) when none is configured. A workspace named on the command line
    (`--db` / `--config`) that cannot be opened stays an error; a default SQLite file that does not exist is
    not created."""
    from ..errors import NurtureError

    st = state(ctx)
    explicit = bool(st.db_url or st.config_file)
    settings = st.settings()
    url = settings.db_url
    if not explicit and url.startswith("sqlite:///"):
        db_file = Path(url.removeprefix("sqlite:///")).expanduser()
        if not db_file.exists():
            return None, "no workspace"
    try:
        from ..workspace import Workspace

        return Workspace.open(settings), ""
    except NurtureError:
        if explicit:
            raise
        return None, "no workspace"


def _read(path: Path) -> tuple[str | None, list[str]]:
    from ..errors import ValidationError
    from ..yamlfile import read_text

    try:
        return read_text(path), []
    except ValidationError as exc:
        return None, [f"{path.name}: {exc.message}"]


def _check_one(conn: Connection | None, path: Path) -> list[str]:
    """The problem lines of one file. A file that cannot be read (missing, too large, not UTF-8, a NUL byte)
    is one line naming it, and the next file is still checked."""
    from ..sequences import service

    text, problems = _read(path)
    if text is None:
        return problems
    try:
        return service.check_text(conn, text, path.name,
                                  templates_dir=path.parent / service.TEMPLATES_DIRNAME).lines()
    except UnicodeDecodeError:
        return [f"{path.name}: {service.TEMPLATES_DIRNAME}/: a template file is not UTF-8 text"]


def _check_offline(path: Path) -> tuple[list[str], list[str]]:
    """(problem lines, unchecked-reference lines) of one file checked without a workspace: the same
    checks as `service.check_text`, with stored templates and saved segments reported as not checked."""
    from ..sequences import service
    from ..sequences.codec import line_at, parse_text
    from ..sequences.validate import Catalog, default_rule_parser, validate_definition

    text, problems = _read(path)
    if text is None:
        return problems, []
    name = path.name
    parsed = parse_text(text, name)
    fc = service.FileCheck(filename=name, parsed=parsed, problems=list(parsed.problems))
    defn = parsed.definition
    if defn is None:
        return fc.lines(), []
    try:
        library, errors = service.read_templates_dir(path.parent / service.TEMPLATES_DIRNAME)
    except UnicodeDecodeError:
        return [f"{name}: {service.TEMPLATES_DIRNAME}/: a template file is not UTF-8 text"], []
    fc.problems += errors
    fc.templates = {t.name: t for t in defn.templates}
    for ref in service._referenced_templates(defn):
        if ref not in fc.templates and ref in library:
            fc.templates[ref], fc.template_files[ref] = library[ref]
    catalog = Catalog(templates=set(fc.templates) | set(library), parse_rule=default_rule_parser(), unchecked=[])
    fc.problems += validate_definition(defn, catalog, data=parsed.data, locate=lambda loc: line_at(parsed.root, loc))
    fc.problems += service._template_problems(parsed, defn, fc)
    return fc.lines(), [p.format(name) for p in catalog.unchecked or []]


@app.command("apply")
def apply_cmd(ctx: typer.Context, files: list[Path] = typer.Argument(..., help="Sequence YAML files.")) -> None:
    """Create or update the drafts (and templates) from files. All or nothing."""
    from ..sequences import service
    from ..store.engine import write_tx

    unreadable = [line for f in files for line in _read(f)[1]]  # too large, not UTF-8, NUL: every file named
    if unreadable:
        for line in unreadable:
            typer.echo(line, err=True)
        raise typer.Exit(2)
    with _ws(ctx) as ws, _problems_exit(), write_tx(ws.engine) as conn:
        results = [service.apply_file(conn, f, user=ws.user, now=ws.clock.now()) for f in files]
    for r in results:
        what = "created" if r.created else ("updated" if r.changed else "unchanged")
        extra = f" (templates saved: {', '.join(r.templates)})" if r.templates else ""
        typer.echo(f"{r.name}: draft {what}{extra}")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Sequence name."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (default: stdout)."),
    version: int | None = typer.Option(None, "--version", help="A published version number (default: draft)."),
) -> None:
    """Write a sequence back as YAML (re-applying it changes nothing)."""
    from ..sequences import service

    with _ws(ctx) as ws, _problems_exit(), ws.engine.connect() as conn:
        text = service.export(conn, name, version=version)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{name}: written to {output}")


@app.command("publish")
def publish_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    migrate: bool = typer.Option(False, "--migrate", help="Move waiting enrollments to the new version where "
                                 "their step id still exists."),
) -> None:
    """Freeze the draft as a new immutable version."""
    from ..sequences import service
    from ..store.engine import write_tx

    with _ws(ctx) as ws, _problems_exit(), write_tx(ws.engine) as conn:
        res = service.publish_report(conn, name, user=ws.user, now=ws.clock.now(), migrate=migrate)
    if res.created:
        typer.echo(f"{name}: published v{res.number} ({res.diff.summary()})")
    else:
        typer.echo(f"{name}: draft unchanged since v{res.number}; nothing published")
    if res.migration is not None:
        m = res.migration
        why = ", ".join(f"{k} {v}" for k, v in m.stayed_by_reason.items())
        typer.echo(f"migration: {m.moved} moved to v{res.number}, {m.stayed} stayed" + (f" ({why})" if why else ""))


@app.command("pause")
def pause_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Stop executing steps; enrollments keep their place."""
    _status(ctx, name, pause=True)


@app.command("resume")
def resume_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Resume a paused sequence."""
    _status(ctx, name, pause=False)


def _status(ctx: typer.Context, name: str, *, pause: bool) -> None:
    from ..sequences import service
    from ..store.engine import write_tx

    with _ws(ctx) as ws, write_tx(ws.engine) as conn:
        fn = service.pause if pause else service.resume
        before = fn(conn, name, user=ws.user, now=ws.clock.now())
    after = "paused" if pause else "active"
    typer.echo(f"{name}: {after}" + (" (already)" if before == after else f" (was {before})"))


@app.command("versions")
def versions_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Published versions of a sequence."""
    from ..sequences import service

    with _ws(ctx) as ws, ws.engine.connect() as conn:
        rows = service.versions(conn, name)
    for v in rows:
        mark = "*" if v.current else " "
        when = v.published_at.strftime("%Y-%m-%d %H:%M UTC") if v.published_at else "-"
        typer.echo(f"{mark} v{v.number:<4} {when}  {v.published_by or '-':<16} {v.checksum[:12]}")


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    old: int | None = typer.Option(None, "--from", help="Version number (default: the current version)."),
    new: int | None = typer.Option(None, "--to", help="Version number (default: the draft)."),
) -> None:
    """Added / removed / changed step ids between two versions (or the draft)."""
    from ..sequences import service

    with _ws(ctx) as ws, _problems_exit(), ws.engine.connect() as conn:
        d = service.diff(conn, name, old, new)
    if d.empty:
        typer.echo("no changes")
    for key, ids in d.as_dict().items():
        if ids:
            typer.echo(f"{key}: {', '.join(ids)}")


@app.command("migrate")
def migrate_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Move waiting enrollments of older versions to the current version (where the step id exists)."""
    from ..sequences import service
    from ..store.engine import write_tx

    with _ws(ctx) as ws, write_tx(ws.engine) as conn:
        m = service.migrate_enrollments(conn, name, user=ws.user, now=ws.clock.now())
    why = ", ".join(f"{k} {v}" for k, v in m.stayed_by_reason.items())
    typer.echo(f"{name}: {m.moved} moved, {m.stayed} stayed" + (f" ({why})" if why else ""))


@app.command("simulate")
def simulate_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    lead_email: str | None = typer.Option(None, "--lead", help="Simulate this lead (by email)."),
    outcomes: str | None = typer.Option(None, "--outcomes", help="Decisions in order (yes,no,ARM,auto) or by "
                                        "step (engaged=yes)."),
    start: str | None = typer.Option(None, "--start", help="Start time, ISO 8601 (no offset = the lead's local "
                                     "time); default now."),
    draft: bool = typer.Option(False, "--draft", help="Simulate the draft instead of the published version."),
    sample_segment: str | None = typer.Option(None, "--sample-segment", help="Predict reach per step for a "
                                              "sample of this segment."),
    n: int = typer.Option(1000, "--n", help="Sample size for --sample-segment."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Dry-run a sequence for one lead (timeline) or a segment sample (reach per step). Writes nothing."""
    from ..errors import ValidationError
    from ..sequences import simulate

    if (lead_email is None) == (sample_segment is None):
        raise ValidationError("simulate", "give exactly one of --lead EMAIL or --sample-segment NAME")
    with _ws(ctx) as ws, _problems_exit(), ws.engine.connect() as conn:
        try:
            if lead_email is not None:
                at = _parse_start(start, ws.clock.now())
                sim: Any = simulate.simulate_lead(conn, name, lead_email, settings=ws.settings, start=at,
                                                  outcomes=outcomes, draft=draft)
            else:
                assert sample_segment is not None
                sim = simulate.simulate_segment(conn, name, sample_segment, settings=ws.settings,
                                                now=ws.clock.now(), n=n, draft=draft)
        finally:
            conn.rollback()  # a simulation never writes; make sure nothing could be committed
    if as_json:
        from dataclasses import asdict

        echo_json(asdict(sim))
        return
    for line in sim.lines():
        typer.echo(line)


@app.command("decisions")
def decisions_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    since: str | None = typer.Option(None, "--since", help="First day (YYYY-MM-DD); default the last 30 days."),
    limit: int = typer.Option(50, "--limit", help="Most recent decisions listed."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Adaptive decisions with why (arm: posterior mean and 95 % interval per arm; send time: the hour
    histogram), and the allocation each adaptive split makes now (docs/adaptive.md). Writes nothing."""
    from ..reports.adaptive import allocation_lines, decisions
    from ..reports.common import make_period, parse_day, resolve_scope
    from ..reports.versions import versions

    with _ws(ctx) as ws, _problems_exit(), ws.engine.connect() as conn:
        now = ws.clock.now()
        scope = resolve_scope(conn, make_period(now, parse_day(since, "--since") if since else None), now, name)
        newest = max(versions(conn, scope), key=lambda v: v.number, default=None)
        lines = allocation_lines(conn, newest.sequence_id, f"{newest.sequence} v{newest.number}",
                                 newest.compiled, now) if newest else []
        report = decisions(conn, scope, limit)
    if as_json:
        echo_json({"allocation": lines, "decisions": report.rows})
        return
    for line in lines or [f"{name}: no adaptive split"]:
        typer.echo(line)
    for r in report.rows:
        typer.echo(f"{r['decided_at']:%Y-%m-%d %H:%M}  {r['lead']}  {r['why']}")


def _parse_start(text: str | None, now: datetime) -> datetime:
    """ISO start time; without an offset the simulator reads it in the lead's time zone."""
    if text is None:
        return now
    from ..errors import ValidationError

    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("--start", f"not an ISO date/time: {text!r} (e.g. 2026-03-02T09:00)") from None
