"""`nurture scoring …`: score rules, rescore, grade profiles, rep groups, and a lead's score explained."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import echo_json, state

NAME = "scoring"
app = typer.Typer(help="Lead scoring and grading: rules, rescore, grade profiles, rep groups.", no_args_is_help=True)
rules_app = typer.Typer(help="Score rules (activity kind + filters → points, caps, one-time).", no_args_is_help=True)
grades_app = typer.Typer(help="Grade profiles (fit grade A+…F in ⅓-letter steps from D).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(grades_app, name="grades")


def _progress(done: int, total: int) -> None:
    typer.echo(f"rescored {done:,}/{total:,} leads", err=True)


@rules_app.command("list")
def rules_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The rule set (active and inactive)."""
    from ..scoring import rules as R

    with state(ctx).workspace() as ws, ws.engine.begin() as conn:
        rows = R.list_rules(conn)
    if as_json:
        echo_json([R.render_rule(r) for r in rows])
        return
    for r in rows:
        spec = R.render_rule(r)
        extra = {k: v for k, v in spec.items() if k not in ("name", "kind", "points", "active")}
        flag = "" if r["active"] else "  (inactive)"
        typer.echo(f"{r['points']:+7g}  {r['kind']:<17} {r['name']:<28} {extra or ''}{flag}")


@rules_app.command("export")
def rules_export(ctx: typer.Context, file: Path | None = typer.Argument(None, help="Write here (default: stdout).")
                 ) -> None:
    """Write the active rules as a rules file (YAML)."""
    import yaml

    from ..scoring import rules as R

    with state(ctx).workspace() as ws, ws.engine.begin() as conn:
        rows = [R.render_rule(r) for r in R.list_rules(conn) if r["active"]]
    text = yaml.safe_dump({"rules": rows}, sort_keys=False, allow_unicode=True)
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text)
        typer.echo(f"wrote {len(rows)} rules to {file}")


@rules_app.command("apply")
def rules_apply(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="YAML file with a top-level `rules:` list."),
    keep_missing: bool = typer.Option(False, "--keep-missing", help="Do not deactivate rules absent from FILE."),
    rescore: bool = typer.Option(True, "--rescore/--no-rescore", help="Rescore history after a change."),
) -> None:
    """Validate and save the rules (by name), then rescore every lead with progress."""
    from ..scoring import rules as R
    from ..scoring.rescore import rescore_all
    from ..store import audit
    from ..store.engine import write_tx

    specs = R.parse_rules_file(file)
    with state(ctx).workspace() as ws:
        with write_tx(ws.engine) as conn:
            changed = R.save_rules(conn, specs, replace=not keep_missing)
            audit.record(conn, at=ws.clock.now(), user=ws.user, action="scoring.rules_apply", entity="score_rule",
                         entity_id=str(file), before=None, after=dict(changed))
        summary = ", ".join(f"{len(v)} {k}" for k, v in changed.items())
        typer.echo(f"rules: {summary}")
        if rescore and any(changed.values()):
            result = rescore_all(ws.engine, ws.settings, ws.clock, _progress)
            typer.echo(f"rescored {result.leads:,} leads in {result.seconds:.1f}s: {result.changed:,} changed, "
                       f"{len(result.qualified)} newly MQL")


@app.command("rescore")
def rescore_cmd(ctx: typer.Context) -> None:
    """Recompute every lead's score from its activity history and the current rules."""
    from ..scoring.rescore import rescore_all

    with state(ctx).workspace() as ws:
        result = rescore_all(ws.engine, ws.settings, ws.clock, _progress)
    typer.echo(f"rescored {result.leads:,} leads in {result.seconds:.1f}s: {result.changed:,} changed, "
               f"{len(result.qualified)} newly MQL")


@grades_app.command("apply")
def grades_apply(ctx: typer.Context,
                 file: Path = typer.Argument(..., help="YAML file with a top-level `profiles:` list.")) -> None:
    """Save grade profiles (file order = priority) and regrade every lead."""
    from ..scoring import grading
    from ..store import audit
    from ..store.engine import write_tx

    profiles = grading.parse_profiles_file(file)
    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        grading.save_profiles(conn, profiles)
        audit.record(conn, at=ws.clock.now(), user=ws.user, action="scoring.grades_apply", entity="grade_profile",
                     entity_id=str(file), before=None, after={"profiles": [p.name for p in profiles]})
        qualified = grading.regrade(conn, None, ws.clock.now(), ws.settings)
    typer.echo(f"{len(profiles)} profiles saved; every lead regraded; {len(qualified)} newly MQL")


@grades_app.command("list")
def grades_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Active grade profiles in priority order."""
    from ..scoring import grading

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        profiles = grading.load_profiles(conn)
    if as_json:
        echo_json([{"name": p.name, "when": p.when, "criteria": [c.__dict__ for c in p.criteria]} for p in profiles])
        return
    for p in profiles:
        typer.echo(f"{p.name}" + (f"  when {p.when}" if p.when else "  (everyone else)"))
        for c in p.criteria:
            typer.echo(f"  {c.describe()}")


@grades_app.command("regrade")
def grades_regrade(ctx: typer.Context) -> None:
    """Regrade every lead (after editing lead fields outside nurture)."""
    from ..scoring import grading
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        qualified = grading.regrade(conn, None, ws.clock.now(), ws.settings)
    typer.echo(f"regraded; {len(qualified)} newly MQL")


@app.command("explain")
def explain_cmd(ctx: typer.Context, lead_ref: str = typer.Argument(..., metavar="LEAD", help="Lead id or e-mail."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """A lead's live score, its score history and why it has its grade."""
    from ..scoring import grading, service

    with state(ctx).workspace() as ws, ws.engine.begin() as conn:
        lid = service.resolve_lead(conn, lead_ref)
        now = ws.clock.now()
        live = service.live_score(conn, lid, now, ws.settings)
        changes = service.history(conn, lid)
        grade = grading.explain(conn, lid)
    if as_json:
        echo_json({"lead_id": lid, "score": round(live, 2), "grade": grade.grade, "profile": grade.profile,
                   "grade_matched": grade.matched, "history": [c.__dict__ for c in changes]})
        return
    typer.echo(f"lead {lid}: score {live:.1f} (decayed, half-life {ws.settings.scoring.half_life_days:g} days), "
               f"grade {grade.grade or '-'}" + (f" by profile {grade.profile!r}" if grade.profile else ""))
    for m in grade.matched:
        typer.echo(f"  grade: {m}")
    for c in changes:
        typer.echo(f"  {c.at:%Y-%m-%d %H:%M} {c.points:+g} {c.reason}")


@app.command("adjust")
def adjust_cmd(ctx: typer.Context, lead_ref: str = typer.Argument(..., metavar="LEAD"),
               points: float = typer.Option(..., "--points"), reason: str = typer.Option(..., "--reason")) -> None:
    """Add (or subtract) points by hand; kept in the lead's history and audited."""
    from ..scoring import service
    from ..store import audit
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        lid = service.resolve_lead(conn, lead_ref)
        now = ws.clock.now()
        qualified = service.adjust_score(conn, lid, points, reason, now, ws.settings)
        audit.record(conn, at=now, user=ws.user, action="scoring.adjust", entity="lead", entity_id=lid,
                     before=None, after={"points": points, "reason": reason})
        live = service.live_score(conn, lid, now, ws.settings)
    typer.echo(f"lead {lid}: score {live:.1f}" + (" — now an MQL" if qualified else ""))


@app.command("group")
def group_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Rep group name (created or updated)."),
    members: str = typer.Option(..., "--members", help="Comma-separated usernames, in round-robin order."),
    country: str | None = typer.Option(None, "--country", help="Territory: comma-separated countries."),
    industry: str | None = typer.Option(None, "--industry", help="Territory: comma-separated industries."),
) -> None:
    """Create or update a rep group (round-robin, optional territory rules)."""
    from sqlalchemy import insert, select, update

    from ..errors import ValidationError
    from ..scoring.assign import validate_territory
    from ..store import audit
    from ..store.engine import write_tx
    from ..store.tables import rep_group, user

    names = [m.strip() for m in members.split(",") if m.strip()]
    if not names:
        raise ValidationError("--members", "at least one username")
    rules_raw = {k: [v.strip() for v in s.split(",") if v.strip()] for k, s in
                 (("country", country), ("industry", industry)) if s}
    rules = validate_territory(rules_raw, "territory")
    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        found = dict(conn.execute(select(user.c.username, user.c.id).where(user.c.username.in_(names))).all())
        missing = [n for n in names if n not in found]
        if missing:
            raise ValidationError("--members", f"no user {missing[0]!r}")
        ids = [int(found[n]) for n in names]
        gid = conn.execute(select(rep_group.c.id).where(rep_group.c.name == name)).scalar()
        if gid is None:
            conn.execute(insert(rep_group).values(name=name, member_ids=ids, rules=rules))
        else:
            conn.execute(update(rep_group).where(rep_group.c.id == gid).values(member_ids=ids, rules=rules))
        audit.record(conn, at=ws.clock.now(), user=ws.user, action="scoring.group", entity="rep_group",
                     entity_id=name, before=None, after={"members": names, "rules": rules})
    typer.echo(f"rep group {name}: {', '.join(names)}" + (f"; territory {rules}" if rules else ""))
