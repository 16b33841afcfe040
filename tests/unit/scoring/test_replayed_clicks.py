"""Issue 20 item 7: replaying one tracked link (or re-opening one message) does not inflate the score without
bound. The default rules cap what opens, clicks and page views give per lead and window; incremental scoring,
the bulk rescore and the per-lead history agree on it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from nurture_tui.scoring import rescore, service
from nurture_tui.scoring.rules import DEFAULT_RULES, SCORABLE_KINDS
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead

from .helpers import add_lead, record

DOC = Path(__file__).resolve().parents[3] / "docs" / "scoring.md"
GUIDE = "https://northwind.example/guides/buyers-guide"
PRICING = "https://northwind.example/pricing?plan=pro"


def _live(ws, conn, lead_id):
    return service.live_score(conn, lead_id, ws.clock.now(), ws.settings)


def _click(lid: int, url: str, outbox_id: int = 1) -> dict:
    return {"lead_id": lid, "kind": "click", "url": url, "outbox_id": outbox_id}


@pytest.fixture
def ws(workspace):
    workspace.settings.scoring.half_life_days = 0  # isolate the caps from decay
    workspace.settings.scoring.mql_score = 10_000  # and from MQL hand-offs
    return workspace


def test_one_link_clicked_100_times_is_capped(ws):
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        guide, pricing, both = add_lead(conn, "g@x.test"), add_lead(conn, "p@x.test"), add_lead(conn, "b@x.test")
        record(conn, ws.settings, now, *[_click(guide, GUIDE) for _ in range(100)])  # one burst (one batch)
        for i in range(100):  # one at a time, as the tracking app records them
            record(conn, ws.settings, now + timedelta(seconds=i), _click(pricing, PRICING))
        record(conn, ws.settings, now, *[_click(both, GUIDE) for _ in range(50)],
               *[_click(both, PRICING) for _ in range(50)])
        assert _live(ws, conn, guide) == pytest.approx(9)  # was 300: 3 per click, at most 9 a day
        assert _live(ws, conn, pricing) == pytest.approx(9 + 10)  # was 1,300: click + pricing, each capped
        assert _live(ws, conn, both) == pytest.approx(9 + 10)


def test_replayed_opens_are_capped(ws):
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        record(conn, ws.settings, now, *[{"lead_id": lid, "kind": "open", "outbox_id": 1} for _ in range(100)])
        assert _live(ws, conn, lid) == pytest.approx(5)


def test_the_cap_is_per_window_genuine_engagement_still_counts(ws):
    clock = ws.clock
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        record(conn, ws.settings, clock.now(), _click(lid, GUIDE, 1), _click(lid, f"{GUIDE}?2", 2))
        assert _live(ws, conn, lid) == pytest.approx(6)  # distinct clicks below the cap score in full
        record(conn, ws.settings, clock.now(), *[_click(lid, GUIDE, 1) for _ in range(20)])
        assert _live(ws, conn, lid) == pytest.approx(9)
    clock.advance(timedelta(days=1))
    with write_tx(ws.engine) as conn:
        record(conn, ws.settings, clock.now(), *[_click(lid, GUIDE, 1) for _ in range(20)])
        assert _live(ws, conn, lid) == pytest.approx(18)  # a new day, a new window


def test_bulk_rescore_and_history_agree_with_the_capped_score(ws):
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        record(conn, ws.settings, now, *[_click(lid, PRICING) for _ in range(100)],
               *[{"lead_id": lid, "kind": "page_view", "url": PRICING} for _ in range(100)])
        before = float(conn.execute(select(lead.c.score).where(lead.c.id == lid)).scalar_one())
        assert _live(ws, conn, lid) == pytest.approx(9 + 10 + 10 + 10)
    rescore.rescore_all(ws.engine, ws.settings, ws.clock)
    with ws.engine.connect() as conn:
        after = float(conn.execute(select(lead.c.score).where(lead.c.id == lid)).scalar_one())
        sc = service.scale(conn, ws.clock.now(), ws.settings)
        assert after == pytest.approx(before, abs=1e-9)
        assert service.recompute_stored(service.history(conn, lid), sc) == pytest.approx(after, abs=1e-9)


def test_every_repeatable_default_rule_is_capped_and_documented():
    """Opens, clicks and page views can be replayed at will: no default rule on them is uncapped."""
    repeatable = {"open", "click", "page_view"}
    assert repeatable <= set(SCORABLE_KINDS)
    uncapped = [r["name"] for r in DEFAULT_RULES if r["kind"] in repeatable and not (r.get("cap") or r.get("once"))]
    assert uncapped == []
    doc = DOC.read_text()
    assert "### Replayed clicks and opens" in doc
    assert "| click | +3 (capped at 9 per day) |" in doc and "| pricing click | +10 (capped at 10 per day) |" in doc
