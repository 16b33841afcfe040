"""`nurture segments …`: count a rule or a saved segment, list/show/save/rename/duplicate/delete saved segments,
what uses one, refresh."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from .common import echo_json, state

NAME = "segments"
app = typer.Typer(help="Segments: rules over leads, saved by name, counted live.", no_args_is_help=True)


def _rule_or_name(rule_file: Path | None, name: str | None) -> None:
    from ..errors import NurtureError

    if (rule_file is None) == (name is None):
        raise NurtureError("give exactly one of --rule FILE or --name NAME")


@app.command("count")
def count_cmd(
    ctx: typer.Context,
    rule_file: Path | None = typer.Option(None, "--rule", help="Rule file (YAML or JSON)."),
    name: str | None = typer.Option(None, "--name", help="A saved segment."),
    as_json: bool = typer.Option(False, "--json", help="Print {count, rule} as JSON."),
) -> None:
    """Count the leads matching a rule file or a saved segment; prints the count and the rule in words."""
    from ..segments import compiler, rules, service

    _rule_or_name(rule_file, name)
    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        now = ws.clock.now()
        half_life = ws.settings.scoring.half_life_days
        if rule_file is not None:
            rule = rules.load_rule_file(rule_file)
            try:
                total = compiler.count(conn, rule, now, half_life_days=half_life)
            except Exception as exc:
                _reraise_with_file(exc, rule_file)
            rendering = rules.render(rule)
        else:
            info = service.get_segment(conn, name or "")
            total = compiler.count(conn, {"in_segment": info.name}, now, half_life_days=half_life)
            rendering = info.rendering
    if as_json:
        echo_json({"count": total, "rule": rendering})
    else:
        typer.echo(f"{total}\t{rendering}")


def _reraise_with_file(exc: Exception, path: Path) -> NoReturn:
    from ..errors import ValidationError

    if isinstance(exc, ValidationError):
        raise ValidationError(f"{path}: {exc.where}", exc.message) from None
    raise exc


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Saved segments with their cached counts."""
    from ..segments import service

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        infos = service.list_segments(conn)
    if as_json:
        echo_json([{"name": i.name, "count": i.cached_count, "counted_at": i.counted_at, "hot": i.materialized,
                    "description": i.description, "rule": i.rendering} for i in infos])
        return
    if not infos:
        typer.echo("no saved segments (create one with `nurture segments save NAME --rule FILE`)")
        return
    width = max(len(i.name) for i in infos)
    for i in infos:
        count = "?" if i.cached_count is None else str(i.cached_count)
        hot = "hot" if i.materialized else "   "
        typer.echo(f"{i.name:<{width}}  {count:>9}  {hot}  {i.rendering}")


@app.command("show")
def show_cmd(
    ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")
) -> None:
    """A saved segment: rule (YAML), rendering, cached count, hot state."""
    from ..segments import rules, service

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        info = service.get_segment(conn, name)
    if as_json:
        echo_json({"name": info.name, "description": info.description, "rule": info.rule.to_data(),
                   "rendering": info.rendering, "count": info.cached_count, "counted_at": info.counted_at,
                   "hot": info.materialized, "materialized_at": info.materialized_at})
        return
    typer.echo(f"name:        {info.name}")
    if info.description:
        typer.echo(f"description: {info.description}")
    typer.echo(f"rule:        {info.rendering}")
    typer.echo(f"count:       {info.cached_count if info.cached_count is not None else '?'}"
               f"{f' (at {info.counted_at:%Y-%m-%d %H:%M} UTC)' if info.counted_at else ''}")
    typer.echo(f"hot:         {'yes' if info.materialized else 'no'}")
    typer.echo("---")
    typer.echo(rules.dump_yaml(info.rule).rstrip())


@app.command("save")
def save_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Segment name (replaces an existing one)."),
    rule_file: Path = typer.Option(..., "--rule", help="Rule file (YAML or JSON)."),
    description: str | None = typer.Option(None, "--description", help="What the segment is for."),
    materialize: bool | None = typer.Option(None, "--materialize/--no-materialize",
                                            help="Keep membership materialised (a hot segment)."),
) -> None:
    """Create or replace a saved segment from a rule file."""
    from ..segments import rules, service
    from ..store.engine import write_tx

    rule = rules.load_rule_file(rule_file)
    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        try:
            info = service.save_segment(conn, name, rule, user=ws.user, now=ws.clock.now(), description=description,
                                        materialize=materialize, half_life_days=ws.settings.scoring.half_life_days)
        except Exception as exc:
            _reraise_with_file(exc, rule_file)
    hot = " (hot)" if info.materialized else ""
    typer.echo(f"saved segment {info.name!r}{hot}: {info.cached_count} leads\t{info.rendering}")


@app.command("delete")
def delete_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a saved segment (refused while a segment or a sequence uses it; see `segments users`)."""
    from ..segments import service
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        service.delete_segment(conn, name, user=ws.user, now=ws.clock.now())
    typer.echo(f"deleted segment {name!r}")


@app.command("rename")
def rename_cmd(ctx: typer.Context, old: str = typer.Argument(...), new: str = typer.Argument(...)) -> None:
    """Rename a saved segment; other segments' rules and sequence drafts follow (refused while a published
    sequence version uses it)."""
    from ..segments import service
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        result = service.rename_segment(conn, old, new, user=ws.user, now=ws.clock.now())
    followed = [*(f"segment {n}" for n in result.segments), *(f"sequence {n} (draft)" for n in result.sequences)]
    typer.echo(f"renamed segment {result.old!r} to {result.new!r}"
               + (f"; updated {', '.join(followed)}" if followed else ""))


@app.command("duplicate")
def duplicate_cmd(ctx: typer.Context, name: str = typer.Argument(...), new: str = typer.Argument(...)) -> None:
    """Copy a saved segment (rule, description, hot switch) under a new name."""
    from ..segments import service
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        info = service.duplicate_segment(conn, name, new, user=ws.user, now=ws.clock.now(),
                                         half_life_days=ws.settings.scoring.half_life_days)
    typer.echo(f"saved segment {info.name!r}{' (hot)' if info.materialized else ''}: {info.cached_count} leads"
               f"\t{info.rendering}")


@app.command("users")
def users_cmd(
    ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")
) -> None:
    """What uses a saved segment: other segments, sequence drafts and published versions."""
    from ..segments import service

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        info = service.get_segment(conn, name)
        users = service.segment_users(conn, info.name)
    if as_json:
        echo_json({"segment": users.segment, "segments": list(users.segments),
                   "sequences": [{"sequence": r.sequence, "version": r.version, "current": r.current,
                                  "place": r.place, "node_id": r.node_id} for r in users.sequences]})
        return
    if users.empty:
        typer.echo(f"segment {users.segment!r} is not used")
        return
    for seg in users.segments:
        typer.echo(f"segment\t{seg}")
    for ref in users.sequences:
        typer.echo(f"sequence\t{ref.sequence}\t{ref.label}\t{ref.place}")


@app.command("refresh")
def refresh_cmd(
    ctx: typer.Context, name: str | None = typer.Argument(None, help="One segment (default: all).")
) -> None:
    """Recount saved segments and rebuild hot segments' membership."""
    from ..segments import service
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        now, half_life = ws.clock.now(), ws.settings.scoring.half_life_days
        hot = {r.segment: r for r in service.refresh_materialized(conn, now, half_life_days=half_life)}
        names = [name] if name else [i.name for i in service.list_segments(conn)]
        for seg in names:
            info = service.get_segment(conn, seg)
            if info.name in hot:
                r = hot[info.name]
                typer.echo(f"{info.name}: {r.count} (hot: +{r.added} −{r.removed})")
            else:
                typer.echo(f"{info.name}: {service.refresh_count(conn, info.name, now, half_life_days=half_life)}")
