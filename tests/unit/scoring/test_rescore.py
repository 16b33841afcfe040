"""Bulk SQL rescore agrees with incremental scoring and with the per-lead history; progress; rule change."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from nurture_tui.scoring import rescore, service
from nurture_tui.scoring import rules as R
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead

from .helpers import add_lead, record

KINDS = ["open", "click", "page_view", "form", "reply", "unsubscribe", "bounce", "meeting", "sent"]
URLS = ["https://x.io/pricing", "https://x.io/blog/a", None, "https://x.io/Pricing/enterprise"]


def _simulate(ws, n_leads=12, days=40, seed=7):
    """Random engagement over weeks with caps, one-time rules, adjustments and a reset."""
    rnd = random.Random(seed)
    clock = ws.clock
    with write_tx(ws.engine) as conn:
        ids = [add_lead(conn, f"l{i}@x.io") for i in range(n_leads)]
    for day in range(days):
        with write_tx(ws.engine) as conn:
            if day == 20:  # before the day's activities: nothing is recorded ahead of the clock
                service.reset_score(conn, ids[0], 3, "recycled", clock.now(), ws.settings)
            batch = [{"lead_id": rnd.choice(ids), "kind": rnd.choice(KINDS), "url": rnd.choice(URLS),
                      "at": clock.now() + timedelta(minutes=rnd.randint(0, 600))} for _ in range(rnd.randint(3, 12))]
            record(conn, ws.settings, clock.now() + timedelta(hours=11), *batch)
            if day % 9 == 4:
                service.adjust_score(conn, rnd.choice(ids), rnd.choice([5, -7.5]), "manual", clock.now(), ws.settings)
        clock.advance(timedelta(days=1))
    return ids


def _scores(conn):
    return dict(conn.execute(select(lead.c.id, lead.c.score).order_by(lead.c.id)).all())


def test_rescore_matches_incremental_and_history(workspace):
    ws = workspace
    ws.settings.scoring.mql_score = 10_000  # keep MQL hand-offs out of this test
    _simulate(ws)
    with ws.engine.connect() as conn:
        before = _scores(conn)
    seen = []
    result = rescore.rescore_all(ws.engine, ws.settings, ws.clock, lambda d, t: seen.append((d, t)),
                                 range_size=5, workers=2)
    with ws.engine.connect() as conn:
        after = _scores(conn)
        sc = service.scale(conn, ws.clock.now(), ws.settings)
        for lid, stored in after.items():
            assert stored == pytest.approx(before[lid], rel=1e-9, abs=1e-9)
            assert service.recompute_stored(service.history(conn, lid), sc) == pytest.approx(stored, abs=1e-9)
    assert result.changed == 0 and result.leads == 12
    assert seen[0] == (0, 12) and seen[-1] == (12, 12) and len(seen) == 4  # ranges of 5 ids


def test_rule_change_rescores_history(workspace):
    ws = workspace
    ws.settings.scoring.mql_score = 10_000
    ids = _simulate(ws, n_leads=6, days=15, seed=3)
    with write_tx(ws.engine) as conn:
        R.save_rules(conn, [R.parse_rule(r) for r in [
            {"name": "email click", "kind": "click", "points": 5, "cap": {"points": 12, "per": "2d"}},
            {"name": "form submission", "kind": "form", "points": 25, "once": True},
        ]], replace=True)
    job = rescore.start_background(ws.engine, ws.settings, ws.clock)
    result = job.wait(120)
    assert job.done and job.progress == (6, 6) and result.changed > 0
    with ws.engine.connect() as conn:
        sc = service.scale(conn, ws.clock.now(), ws.settings)
        rules = R.load_rules(conn)
        assert {r.name for r in rules.rules} == {"email click", "form submission"}
        for lid in ids:
            changes = service.history(conn, lid, rules)
            assert {c.reason for c in changes if c.kind == "rule"} <= {"email click", "form submission"}
            stored = conn.execute(select(lead.c.score).where(lead.c.id == lid)).scalar_one()
            assert service.recompute_stored(changes, sc) == pytest.approx(stored, abs=1e-9)


def test_rescore_qualifies_leads_now_over_the_threshold(workspace):
    ws = workspace
    ws.settings.scoring.mql_grade = ""
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        record(conn, ws.settings, ws.clock.now(), *[{"lead_id": lid, "kind": "click"}] * 10)  # 30 points
        R.save_rules(conn, [R.parse_rule({"name": "email click", "kind": "click", "points": 12})], replace=False)
    result = rescore.rescore_all(ws.engine, ws.settings, ws.clock)
    assert result.qualified == [lid]


def test_points_scored_during_a_rescore_are_kept(workspace):
    """Phase 1 snapshots; scoring that happens before phase 2 applies is carried over, resets win."""
    ws = workspace
    ws.settings.scoring.mql_score = 10_000
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        a, b = add_lead(conn, "a@x.io"), add_lead(conn, "b@x.io")
        record(conn, ws.settings, now, {"lead_id": a, "kind": "click"}, {"lead_id": b, "kind": "click"})
        R.save_rules(conn, [R.parse_rule({"name": "email click", "kind": "click", "points": 10})], replace=False)
        rules = R.load_rules(conn)
        sc = service.scale(conn, now, ws.settings)
    part = rescore.compute_changes(ws.engine, rules, sc, a, b)
    assert [r[0] for r in part.rows] == [a, b] and part.leads == 2
    with write_tx(ws.engine) as conn:  # meanwhile: new engagement and a recycle
        record(conn, ws.settings, now, {"lead_id": a, "kind": "form"})
        service.reset_score(conn, b, 1, "recycled", now, ws.settings)
    with write_tx(ws.engine) as conn:
        assert rescore.apply_changes(conn, part.rows, part.last_event_id) == 1
        assert service.live_score(conn, a, now, ws.settings) == pytest.approx(10 + 15)
        assert service.live_score(conn, b, now, ws.settings) == pytest.approx(1)
