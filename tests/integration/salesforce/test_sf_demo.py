"""The demo's emulated org: local leads are linked by email on the first sync, then pushes flow."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from nurture_tui.salesforce import outbox
from nurture_tui.salesforce.demo import start_demo_org
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead
from nurture_tui.store.tables import user as user_t
from nurture_tui.workspace import Workspace

from .sf_support import FAST_RETRY


def test_demo_org_links_local_leads_and_takes_pushes(sqlite_workspace: Workspace) -> None:
    ws = sqlite_workspace
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        rep = conn.execute(insert(user_t).values(username="rep1", name="Rep One")).inserted_primary_key[0]
        rep2 = conn.execute(insert(user_t).values(username="rep2", name="Rep Two")).inserted_primary_key[0]
        conn.execute(insert(lead), [{"email": f"demo{i}@example.com", "last_name": f"D{i}", "company": "Demo",
                                     "owner_id": rep2, "created_at": now, "updated_at": now} for i in range(50)])
    emu = start_demo_org(ws)
    try:
        from nurture_tui.salesforce.sync import run_sync

        report = run_sync(ws, policy=FAST_RETRY)
        assert report.ok, report.error
        with ws.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(lead)).scalar() == 50
            assert conn.execute(select(func.count()).select_from(lead).where(lead.c.sf_id.is_(None))).scalar() == 0
            assert conn.execute(select(func.count()).select_from(lead).where(lead.c.owner_id == rep2)).scalar() == 50
            first = conn.execute(select(lead.c.id, lead.c.sf_id).order_by(lead.c.id)).first()
        assert first is not None
        with write_tx(ws.engine) as conn:
            outbox.enqueue_field_update(conn, first.id, {"score": 77.0, "mql_status": "MQL", "owner": rep}, now)
            outbox.enqueue_campaign_member(conn, first.id, "Summit 2026", "Responded", now)
        report = run_sync(ws, policy=FAST_RETRY)
        assert report.pushed is not None and report.pushed.sent == 2
        pushed = emu.org.records["Lead"][first.sf_id]
        assert pushed["Nurture_Score__c"] == 77.0
        assert emu.org.records["User"][pushed["OwnerId"]]["Username"] == "rep1"
        with ws.engine.connect() as conn:
            # rep1 was linked, not duplicated: one local user per org user
            assert conn.execute(select(func.count()).select_from(user_t)).scalar() == len(emu.org.records["User"])
    finally:
        emu.stop()
