"""The demo data generator on SQLite and PostgreSQL: deterministic, consistent, reusable."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nurture_tui.config import load_settings
from nurture_tui.demo.generate import build_demo, is_demo, stored_demo
from nurture_tui.demo.workspace import ensure_demo
from nurture_tui.engine.events import ENGAGEMENT_KINDS
from nurture_tui.errors import NurtureError
from nurture_tui.store import rollups
from nurture_tui.store.engine import write_tx
from nurture_tui.store.models import PERSONAS, STAGES
from nurture_tui.store.tables import (
    account,
    activity,
    campaign_member,
    email_stat,
    lead,
    lead_cohort,
    lead_milestone,
    opportunity,
    rep_group,
    user,
)
from nurture_tui.workspace import Workspace


def _count(ws: Workspace, table: object, *where: object) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_build_small_demo(workspace: Workspace) -> None:
    phases: list[str] = []
    summary = build_demo(workspace, leads=300, seed=3, activities=900, progress=lambda p, d, t: phases.append(p))
    assert (summary.leads, summary.activities) == (300, 900)
    assert _count(workspace, lead) == 300 and _count(workspace, activity) == 900
    assert _count(workspace, account) == summary.accounts == 37
    assert _count(workspace, user) == summary.users and _count(workspace, rep_group) == 3
    assert _count(workspace, campaign_member) == summary.campaign_members
    assert _count(workspace, opportunity) == summary.opportunities
    assert {"leads", "activities", "mqls"} <= set(phases)
    now = workspace.clock.now()
    with workspace.engine.connect() as conn:
        leads = conn.execute(select(lead)).all()
        acts = conn.execute(select(activity.c.lead_id, activity.c.kind, activity.c.at, activity.c.bot)).all()
        grouped = conn.execute(select(activity.c.lead_id, func.max(activity.c.at))
                               .where(activity.c.kind.in_(ENGAGEMENT_KINDS)).group_by(activity.c.lead_id))
        last = {lead_id: at for lead_id, at in grouped}
    zones = zoneinfo.available_timezones()
    assert all(r.persona in PERSONAS and r.stage in STAGES and r.timezone in zones for r in leads)
    assert all(r.email == r.email.lower() and "@" in r.email for r in leads)
    assert all(r.grade is not None and r.account_id is not None for r in leads)
    assert {r.id: r.last_activity_at for r in leads if r.last_activity_at} == last  # last engagement
    assert all(now.timestamp() - 91 * 86400 <= a.at.timestamp() <= now.timestamp() for a in acts)
    kinds = {a.kind for a in acts}
    assert {"sent", "open", "page_view"} <= kinds
    # Every opted-out lead has the unsubscribe that explains it.
    unsubscribed = {a.lead_id for a in acts if a.kind == "unsubscribe"}
    assert {r.id for r in leads if r.opted_out} <= unsubscribed
    assert any(r.score > 0 for r in leads)
    assert stored_demo(workspace) == summary and is_demo(workspace)
    # The load ran without the rollup triggers (their probes need the indexes it defers); they are back and
    # the rollups equal a rebuild from the log.
    with write_tx(workspace.engine) as conn:
        assert rollups.installed(conn)
        tables = (lead_cohort, lead_milestone, email_stat)
        before = [sorted(map(tuple, conn.execute(select(t)))) for t in tables]
        rollups.install(conn, rebuild=True)
        assert [sorted(map(tuple, conn.execute(select(t)))) for t in tables] == before
        assert conn.execute(select(func.sum(lead_cohort.c.n)).where(lead_cohort.c.sequence_id == 0)).scalar() == 300


def test_same_seed_same_data(tmp_path: Path) -> None:
    def snapshot(name: str, seed: int) -> list[tuple[object, ...]]:
        ws = Workspace.open(load_settings(None, f"sqlite:///{tmp_path / name}", data_dir=tmp_path), create=True)
        try:
            build_demo(ws, leads=200, seed=seed, activities=400)
            with ws.engine.connect() as conn:
                rows = conn.execute(select(lead.c.email, lead.c.title, lead.c.stage, lead.c.grade)
                                    .order_by(lead.c.id)).all()
                acts = conn.execute(select(activity.c.lead_id, activity.c.kind, activity.c.url)
                                    .order_by(activity.c.id)).all()
            return [tuple(r) for r in rows + acts]
        finally:
            ws.close()

    first = snapshot("a.db", 9)
    assert first == snapshot("b.db", 9)
    assert first != snapshot("c.db", 10)


def test_ensure_demo_reuses_rebuilds_and_protects_real_data(workspace: Workspace) -> None:
    ws, first = ensure_demo(workspace, leads=100, seed=1, activities=150)
    assert not first.reused
    ws, again = ensure_demo(ws, leads=100, seed=1, activities=150)
    assert again.reused and again.leads == 100
    ws, other = ensure_demo(ws, leads=120, seed=1, activities=100)
    assert not other.reused and _count(ws, lead) == 120 and _count(ws, activity) == 100
    with write_tx(ws.engine) as conn:
        from nurture_tui.store import meta

        meta.put(conn, "demo", None)  # now it looks like someone's real workspace
    with pytest.raises(NurtureError, match="not a nurture demo"):
        ensure_demo(ws, leads=100, seed=1)
    assert _count(ws, lead) == 120
    ws.close()


def test_build_refuses_a_workspace_with_leads(workspace: Workspace) -> None:
    with write_tx(workspace.engine) as conn:
        conn.execute(lead.insert().values(email="real@customer.com"))
    with pytest.raises(NurtureError, match="needs an empty workspace"):
        build_demo(workspace, leads=10)


def test_generated_scores_match_a_rescore(workspace: Workspace) -> None:
    """The generator scores history itself (for speed); the scoring engine's rescore must agree."""
    from nurture_tui.scoring import rescore

    build_demo(workspace, leads=400, seed=5, activities=3000)
    with workspace.engine.connect() as conn:
        before = {i: s for i, s in conn.execute(select(lead.c.id, lead.c.score))}
    rescore.rescore_all(workspace.engine, workspace.settings, workspace.clock)
    with workspace.engine.connect() as conn:
        after = {i: s for i, s in conn.execute(select(lead.c.id, lead.c.score))}
    assert any(s > 0 for s in before.values())
    assert before.keys() == after.keys()
    assert all(abs(before[i] - after[i]) < 1e-6 * max(1.0, abs(after[i])) for i in after)
