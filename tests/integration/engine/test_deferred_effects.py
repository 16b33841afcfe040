"""Effects applied after the hit is committed (issue 21, web/ingest.py on PostgreSQL): `record_events(…,
defer_effects=True)` stores the rows and lists them in `activity_pending`; `apply_pending` applies them later in
batches, oldest first, with the same outcome as applying them at once — capped rules grant exactly what they
would (rows still pending are not "earlier" ones), the lead is touched, the list is emptied."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from nurture_tui.activity import ActivityEvent
from nurture_tui.engine.events import apply_pending, record_events, unlist_oldest_pending
from nurture_tui.engine.seeding import make_leads
from nurture_tui.scoring.history import history
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity_pending, lead, outbox
from nurture_tui.workspace import Workspace

PRICING = "https://example.com/pricing"


def _clicks(ws: Workspace, n: int) -> tuple[list[int], list[ActivityEvent]]:
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lids = make_leads(conn, 2, now)
        oids = [conn.execute(insert(outbox).values(
            idempotency_key=f"d:{lid}", lead_id=lid, to_email=f"d{lid}@example.com", status="sent",
            message_ref=f"d-{lid}", sent_at=now - timedelta(hours=1), created_at=now, headers={})
            .returning(outbox.c.id)).scalar_one() for lid in lids]
    return lids, [ActivityEvent(lid, "click", now, outbox_id=oid, url=PRICING)
                  for lid, oid in zip(lids, oids, strict=True) for _ in range(n)]


def _pending(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(activity_pending)).scalar_one())


def test_deferred_clicks_score_as_if_applied_at_once(workspace: Workspace) -> None:
    ws = workspace
    (deferred, inline), events = _clicks(ws, 10)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        record_events(conn, [e for e in events if e.lead_id == deferred], now, ws.settings, defer_effects=True)
        record_events(conn, [e for e in events if e.lead_id == inline], now, ws.settings)
    assert _pending(ws) == 10
    with ws.engine.connect() as conn:  # nothing scored before the effects are applied
        assert conn.execute(select(lead.c.score).where(lead.c.id == deferred)).scalar_one() == 0
    applied = []
    while True:  # three at a time: each batch sees the later clicks stored but not yet scored
        with write_tx(ws.engine) as conn:
            n = apply_pending(conn, ws.clock.now(), ws.settings, limit=3)
        if not n:
            break
        applied.append(n)
    assert applied == [3, 3, 3, 1] and _pending(ws) == 0
    with ws.engine.connect() as conn:
        # capped per message: "email click" (3) and "pricing page click" (10) once each, as applied at once
        assert sorted(c.points for c in history(conn, deferred) if c.kind == "rule") == [3, 10]
        assert sorted(c.points for c in history(conn, inline) if c.kind == "rule") == [3, 10]
        rows = {r.id: r for r in conn.execute(select(lead.c.id, lead.c.score, lead.c.last_activity_at)
                                              .where(lead.c.id.in_((deferred, inline))))}
        assert rows[deferred].score > 0 and rows[deferred].score == rows[inline].score
        assert rows[deferred].last_activity_at is not None
        assert rows[deferred].last_activity_at == rows[inline].last_activity_at


def test_an_activity_whose_effects_fail_alone_can_be_unlisted(workspace: Workspace) -> None:
    ws = workspace
    (lid, _), events = _clicks(ws, 2)
    with write_tx(ws.engine) as conn:
        ids = record_events(conn, [e for e in events if e.lead_id == lid], ws.clock.now(), ws.settings,
                            defer_effects=True)
    with write_tx(ws.engine) as conn:
        assert unlist_oldest_pending(conn) == ids[0]
    assert _pending(ws) == 1
    with write_tx(ws.engine) as conn:
        assert apply_pending(conn, ws.clock.now(), ws.settings) == 1
        assert unlist_oldest_pending(conn) is None
