"""Issue 20 item 7: replaying one tracked link (or re-opening one message) does not inflate the score. The
default rules count repeats of one message and URL once per window (`cap.distinct: message`) and cap what
opens, clicks and page views give per lead and window; incremental scoring, the bulk rescore and the
per-lead history agree on it."""

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


def test_one_link_clicked_100_times_earns_its_points_once(ws):
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        guide, pricing, both = add_lead(conn, "g@x.test"), add_lead(conn, "p@x.test"), add_lead(conn, "b@x.test")
        record(conn, ws.settings, now, *[_click(guide, GUIDE) for _ in range(100)])  # one burst (one batch)
        for i in range(100):  # one at a time, as the tracking app records them
            record(conn, ws.settings, now + timedelta(seconds=i), _click(pricing, PRICING))
        record(conn, ws.settings, now, *[_click(both, GUIDE) for _ in range(50)],
               *[_click(both, PRICING) for _ in range(50)])
        assert _live(ws, conn, guide) == pytest.approx(3)  # was 300 uncapped, 9 with the per-lead cap alone
        assert _live(ws, conn, pricing) == pytest.approx(3 + 10)  # was 1,300: click + pricing, each once
        assert _live(ws, conn, both) == pytest.approx(3 + 3 + 10)  # two links of one message: each once


def test_replayed_opens_count_once_per_message(ws):
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        record(conn, ws.settings, now, *[{"lead_id": lid, "kind": "open", "outbox_id": 1} for _ in range(100)])
        assert _live(ws, conn, lid) == pytest.approx(1)
        record(conn, ws.settings, now, *[{"lead_id": lid, "kind": "open", "outbox_id": m} for m in range(2, 20)])
        assert _live(ws, conn, lid) == pytest.approx(5)  # many messages: the per-lead cap still holds


def test_per_message_and_per_lead_windows_genuine_engagement_still_counts(ws):
    clock = ws.clock
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        record(conn, ws.settings, clock.now(), _click(lid, GUIDE, 1), _click(lid, f"{GUIDE}?2", 2))
        assert _live(ws, conn, lid) == pytest.approx(6)  # distinct clicks score in full
        record(conn, ws.settings, clock.now(), *[_click(lid, GUIDE, 1) for _ in range(20)])
        assert _live(ws, conn, lid) == pytest.approx(6)  # replays of message 1's link: nothing
        record(conn, ws.settings, clock.now(), _click(lid, GUIDE, 3), _click(lid, GUIDE, 4))
        assert _live(ws, conn, lid) == pytest.approx(9)  # the same link in other messages: up to the lead cap
    clock.advance(timedelta(days=1))
    with write_tx(ws.engine) as conn:
        record(conn, ws.settings, clock.now(), *[_click(lid, GUIDE, 1) for _ in range(20)])
        assert _live(ws, conn, lid) == pytest.approx(12)  # a new day, a new window: once more


def test_bulk_rescore_and_history_agree_with_the_capped_score(ws):
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lid = add_lead(conn)
        other = add_lead(conn, "o@x.test")
        record(conn, ws.settings, now, *[_click(lid, PRICING) for _ in range(100)],
               *[{"lead_id": lid, "kind": "page_view", "url": PRICING} for _ in range(100)])
        # a history mixing repeats, several messages and links, days, and events naming no message or URL
        for day in range(3):
            at = now + timedelta(days=day, hours=1)
            record(conn, ws.settings, at, *[_click(other, f"{GUIDE}?{i % 4}", i % 3) for i in range(12)],
                   *[{"lead_id": other, "kind": "open", "outbox_id": i % 2} for i in range(6)],
                   *[{"lead_id": other, "kind": "open"} for _ in range(2)],
                   *[{"lead_id": other, "kind": "page_view", "url": f"{PRICING}&{i % 2}"} for i in range(5)])
        before = {x: float(conn.execute(select(lead.c.score).where(lead.c.id == x)).scalar_one()) for x in (lid, other)}
        assert _live(ws, conn, lid) == pytest.approx(3 + 10 + 1 + 10)
    ws.clock.advance(timedelta(days=3))
    rescore.rescore_all(ws.engine, ws.settings, ws.clock)
    with ws.engine.connect() as conn:
        sc = service.scale(conn, ws.clock.now(), ws.settings)
        for x in (lid, other):
            after = float(conn.execute(select(lead.c.score).where(lead.c.id == x)).scalar_one())
            assert after == pytest.approx(before[x], abs=1e-9)
            assert service.recompute_stored(service.history(conn, x), sc) == pytest.approx(after, abs=1e-9)


def test_every_repeatable_default_rule_is_capped_and_documented():
    """Opens, clicks and page views can be replayed at will: no default rule on them is uncapped."""
    repeatable = {"open", "click", "page_view"}
    assert repeatable <= set(SCORABLE_KINDS)
    uncapped = [r["name"] for r in DEFAULT_RULES if r["kind"] in repeatable and not (r.get("cap") or r.get("once"))]
    assert uncapped == []
    per_message = [r["name"] for r in DEFAULT_RULES if r["kind"] in repeatable
                   and (r.get("cap") or {}).get("distinct") != "message"]
    assert per_message == []
    doc = DOC.read_text()
    assert "### Replayed clicks and opens" in doc
    assert "| click | +3 (once per message and link per day; capped at 9 per day) |" in doc
    assert "| open | +1 (once per message per 7 days; capped at 5 per 7 days) |" in doc
