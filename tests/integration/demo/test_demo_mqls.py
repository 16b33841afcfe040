"""The demo's MQL queue is alive (issue 18 item 2): generated MQLs have varied ages (some past the SLA), and
while the demo runs hot leads keep engaging until they qualify, through the engine's pipeline."""

from __future__ import annotations

from sqlalchemy import func, select

from nurture_tui.demo.generate import build_demo
from nurture_tui.demo.mqls import MqlArrivals, spread_ages
from nurture_tui.scoring import mql
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead
from nurture_tui.store.tables import mql as mql_t
from nurture_tui.workspace import Workspace


def test_generated_mqls_have_varied_ages(workspace: Workspace) -> None:
    build_demo(workspace, leads=500, seed=4)
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:  # 40 leads qualify at once, as the generator's check_all does
        lead_ids = list(conn.execute(select(lead.c.id).where(lead.c.mql_at.is_(None)).limit(40)).scalars())
        for lead_id in lead_ids:
            mql.qualify(conn, lead_id, now, workspace.settings, reason="demo test")
        spread_ages(conn, lead_ids, now, seed=4)
    with workspace.engine.connect() as conn:
        entries = [e for e in mql.list_queue(conn, now, workspace.settings, limit=10_000) if e.lead_id in lead_ids]
        marks = {r.id: r.mql_at for r in conn.execute(select(lead.c.id, lead.c.mql_at).where(lead.c.id.in_(lead_ids)))}
    ages = [e.age_hours for e in entries]
    assert len(entries) == 40 and len(set(ages)) > 30
    assert min(ages) > 0 and max(ages) <= 96
    assert any(e.overdue for e in entries) and not all(e.overdue for e in entries)
    assert all(marks[e.lead_id] == e.created_at for e in entries)  # the lead's cycle mark moved with it


def test_hot_leads_engage_until_they_qualify(workspace: Workspace) -> None:
    build_demo(workspace, leads=500, seed=4)
    with workspace.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(mql_t)).scalar_one()
    arrivals = MqlArrivals(workspace, seed=1)
    engaged = [arrivals.run() for _ in range(12)]
    with workspace.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(mql_t)).scalar_one()
        forms = conn.execute(select(func.count()).select_from(activity)
                             .where(activity.c.kind == "form", activity.c.lead_id.in_(engaged))).scalar_one()
    assert all(engaged) and forms >= 12
    assert after > before  # new entries arrive while the demo runs
