"""The simulator explains adaptive decisions as the engine makes them: the arm with each arm's posterior mean
and 95 % interval, the optimal send time with the hour histogram, and a segment's reach by the current
allocation (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from seq_support import add_lead, add_segment
from sqlalchemy import insert, select

from nurture_tui.engine.seeding import publish_definition
from nurture_tui.mail.templates import upsert_template
from nurture_tui.sequences import simulate
from nurture_tui.sequences.adaptive import ArmCounts, build_allocation, decide, settings_of
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, adaptive_decision, sequence
from nurture_tui.workspace import Workspace

NY = ZoneInfo("America/New_York")
DEFINITION: dict[str, Any] = {
    "name": "adx", "entry": {"type": "segment", "segment": "everyone"},
    "send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00", "holidays": False},
    "steps": [
        {"id": "ab", "split": {"mode": "adaptive", "metric": "click", "window": "2d", "seed": 3, "arms": [
            {"name": "a", "steps": [{"id": "wa", "wait": {"duration": "1d"}}]},
            {"name": "b", "steps": [{"id": "wb", "wait": {"duration": "1d"}}]}]}},
        {"id": "s1", "send": {"template": "welcome", "send_time": "optimal"}},
    ]}


def _setup(ws: Workspace) -> tuple[int, int]:
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        add_segment(conn, "everyone", {"field": "email", "contains": "@"})
        upsert_template(conn, name="welcome", subject="Hi", html="<p>Hi</p>", user="t", now=now)
        publish_definition(conn, DEFINITION, now)
        lid = add_lead(conn, "dana@acme.example", now, timezone="America/New_York")
        for days in (3, 4, 5):  # opened at 14:xx New York time
            conn.execute(insert(activity).values(lead_id=lid, kind="open", bot=False, meta={},
                                                 at=datetime(2026, 2, 20, 14, 10, tzinfo=NY) + timedelta(days=days)))
        seq_id = conn.execute(select(sequence.c.id)).scalar_one()
    return lid, seq_id


def test_lead_timeline_explains_the_arm_and_the_send_time(workspace: Workspace) -> None:
    lid, _seq = _setup(workspace)
    with workspace.engine.connect() as conn:
        sim = simulate.simulate_lead(conn, "adx", "dana@acme.example", settings=workspace.settings,
                                     start=datetime(2026, 3, 2, 10, 0, tzinfo=NY))
    split = next(e for e in sim.events if e.node_id == "ab")
    spec = SequenceDef.model_validate(DEFINITION).steps[0].split
    assert spec is not None
    arm, how = decide(build_allocation(["a", "b"], {}, None, settings_of(spec)), 3, "ab", lid)
    assert split.text == f"split: arm {arm}"
    assert split.why == (f"adaptive (click within 2d): audience all, {how}: a 50.0% [2.4%–97.6%] n=0; "
                         "b 50.0% [2.4%–97.6%] n=0")
    send = next(e for e in sim.events if e.node_id == "s1")
    assert send.local == "Tue 2026-03-03 14:00 EST"  # the wait ends at 10:00; its best hour is 14:00
    assert send.why == ("optimal send time moved from Tue 2026-03-03 10:00 EST: the lead's own opens/clicks by "
                        "local hour: 14h ×3")


def test_segment_reach_follows_the_current_allocation(workspace: Workspace) -> None:
    lid, seq_id = _setup(workspace)
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:  # settled evidence: a failed 60 times, b only 10 times
        for arm, total in (("a", 60), ("b", 10)):
            for i in range(total):
                conn.execute(insert(adaptive_decision).values(
                    kind="split", sequence_id=seq_id, version_id=1, node_id="ab", lead_id=lid, arm=arm,
                    audience="all", decided_at=now - timedelta(days=5, seconds=i),
                    closes_at=now - timedelta(days=3, seconds=i), detail={}))
    with workspace.engine.connect() as conn:
        sim = simulate.simulate_segment(conn, "adx", "everyone", settings=workspace.settings, now=now)
    reach = {n.node_id: n for n in sim.nodes}
    assert reach["ab"].basis.startswith("adaptive: current allocation per audience (all: a ")
    expected = build_allocation(["a", "b"], {"a": ArmCounts(0, 60), "b": ArmCounts(0, 10)}, None,
                                settings_of(SequenceDef.model_validate(DEFINITION).steps[0].split))  # type: ignore[arg-type]
    shares = {v.name: v.share for v in expected.arms}
    assert shares["b"] > 0.8
    assert reach["wa"].reach == shares["a"] and reach["wb"].reach == shares["b"]  # one lead in the sample
