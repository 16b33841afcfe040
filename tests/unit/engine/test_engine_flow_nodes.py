"""wait, wait_for (up_to / exactly / window / yes-no), split, exit, events wake — on both backends."""

from __future__ import annotations

from datetime import timedelta

from engine_helpers import make_leads, publish, run, state, tx
from sqlalchemy import func, select

from nurture_tui.activity import ActivityEvent
from nurture_tui.clock import VirtualClock
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.events import record_events
from nurture_tui.engine.executors import split_arm
from nurture_tui.engine.node_stats import node_counts
from nurture_tui.engine.plans import load_plan
from nurture_tui.store.tables import activity
from nurture_tui.workspace import Workspace

WAIT_FOR = {
    "name": "wf",
    "steps": [
        {"id": "w1", "wait_for": {"events": [{"kind": "click", "url": "*/pricing*"}], "window": "3d",
                                  "mode": "up_to"},
         "yes": [{"id": "hot", "exit": {"reason": "clicked"}}],
         "no": [{"id": "pause", "wait": {"duration": "1d"}}]},
    ],
}


def _setup(ws: Workspace, definition: dict, n: int = 1) -> tuple[int, list[int], list[int]]:
    now = ws.clock.now()
    with tx(ws) as conn:
        vid = publish(conn, definition, now)
        leads = make_leads(conn, n, now)
        eids = [enroll_lead(conn, lid, definition["name"], now) for lid in leads]
    return vid, leads, [e for e in eids if e is not None]


def test_wait_for_up_to_wakes_on_matching_click(workspace: Workspace, clock: VirtualClock) -> None:
    vid, (lead,), (eid,) = _setup(workspace, WAIT_FOR)
    assert run(workspace) == 0  # parking at the first node is not a step
    st = state(workspace, eid)
    assert (st.node_id, st.status) == ("w1", "waiting")
    assert st.due_at == clock.now() + timedelta(days=3)
    clock.advance(timedelta(hours=1))
    with tx(workspace) as conn:  # a non-matching click and a bot click change nothing
        record_events(conn, [ActivityEvent(lead_id=lead, kind="click", url="https://x.test/blog"),
                             ActivityEvent(lead_id=lead, kind="click", url="https://x.test/pricing", bot=True)],
                      clock.now(), workspace.settings)
    assert state(workspace, eid).due_at == clock.now() - timedelta(hours=1) + timedelta(days=3)
    with tx(workspace) as conn:
        ids = record_events(conn, [ActivityEvent(lead_id=lead, kind="click", url="https://x.test/pricing?a=1")],
                            clock.now(), workspace.settings)
    assert len(ids) == 1
    st = state(workspace, eid)
    assert st.due_at == clock.now() and st.wait_for["outcome"] == "yes"
    run(workspace)
    st = state(workspace, eid)
    assert (st.status, st.exit_reason, st.node_id) == ("exited", "clicked", "hot")
    with workspace.engine.connect() as conn:
        counts = node_counts(conn, [vid])
        kinds = dict(conn.execute(select(activity.c.kind, func.count()).group_by(activity.c.kind)).all())
    assert counts["w1"].yes == 1 and counts["w1"].no == 0 and counts["w1"].waiting == 0
    assert counts["hot"].exited == 1
    assert kinds == {"entered": 1, "click": 3, "exited": 1}


def test_wait_for_times_out_to_no_then_wait(workspace: Workspace, clock: VirtualClock) -> None:
    vid, _leads, (eid,) = _setup(workspace, WAIT_FOR)
    run(workspace)
    clock.advance(timedelta(days=3))
    run(workspace)
    st = state(workspace, eid)
    assert (st.node_id, st.status) == ("pause", "waiting")
    assert st.due_at == clock.now() + timedelta(days=1)
    clock.advance(timedelta(days=1))
    run(workspace)
    assert state(workspace, eid).status == "done"
    with workspace.engine.connect() as conn:
        counts = node_counts(conn, [vid])
    assert counts["w1"].no == 1 and counts["pause"].entered == 1 and counts["pause"].waiting == 0


def test_event_before_reaching_node_does_not_count(workspace: Workspace, clock: VirtualClock) -> None:
    definition = {"name": "late", "steps": [
        {"id": "first", "wait": {"duration": "1h"}},
        {"id": "w1", "wait_for": {"events": [{"kind": "open"}], "window": "1d"},
         "yes": [{"id": "y", "exit": {}}], "no": [{"id": "n", "exit": {}}]},
    ]}
    _vid, (lead,), (eid,) = _setup(workspace, definition)
    run(workspace)
    with tx(workspace) as conn:  # opened while still in the first wait
        record_events(conn, [ActivityEvent(lead_id=lead, kind="open")], clock.now(), workspace.settings)
    clock.advance(timedelta(hours=1))
    run(workspace)
    assert state(workspace, eid).node_id == "w1"
    clock.advance(timedelta(days=1))
    run(workspace)
    assert state(workspace, eid).node_id == "n"


def test_wait_for_exactly_holds_until_window_end(workspace: Workspace, clock: VirtualClock) -> None:
    definition = {"name": "exact", "steps": [
        {"id": "w1", "wait_for": {"events": [{"kind": "open"}], "window": "2d", "mode": "exactly"},
         "yes": [{"id": "y", "exit": {}}], "no": [{"id": "n", "exit": {}}]},
    ]}
    _vid, (lead,), (eid,) = _setup(workspace, definition)
    run(workspace)
    clock.advance(timedelta(hours=5))
    with tx(workspace) as conn:
        record_events(conn, [ActivityEvent(lead_id=lead, kind="open")], clock.now(), workspace.settings)
    run(workspace)
    st = state(workspace, eid)
    assert st.status == "waiting" and st.wait_for["outcome"] == "yes"
    clock.advance(timedelta(days=2))
    run(workspace)
    assert state(workspace, eid).node_id == "y"


def test_split_is_deterministic_and_weighted(workspace: Workspace) -> None:
    definition = {"name": "ab", "steps": [
        {"id": "s", "split": {"arms": [
            {"name": "a", "weight": 30, "steps": [{"id": "a1", "exit": {"reason": "a"}}]},
            {"name": "b", "weight": 70, "steps": [{"id": "b1", "exit": {"reason": "b"}}]},
        ]}},
    ]}
    vid, leads, eids = _setup(workspace, definition, n=400)
    run(workspace)
    with workspace.engine.connect() as conn:
        plan = load_plan(conn, vid)
        counts = node_counts(conn, [vid])
    node = plan.nodes["s"]
    expected = [split_arm(lid, node)[0] for lid in leads]
    got = [state(workspace, e).exit_reason for e in eids[:20]]
    assert got == expected[:20]
    assert 80 <= counts["a1"].exited <= 160 and counts["a1"].exited + counts["b1"].exited == 400
    assert [split_arm(lid, node)[0] for lid in leads] == expected


def test_wait_weekday_and_until_in_lead_timezone(workspace: Workspace, clock: VirtualClock) -> None:
    definition = {"name": "waits", "steps": [
        {"id": "tue", "wait": {"weekday": "tue", "time": "10:00"}},
        {"id": "until", "wait": {"until": "2026-03-05"}},
    ]}
    now = clock.now()  # Monday 2026-03-02 09:00 UTC
    with tx(workspace) as conn:
        publish(conn, definition, now)
        (lead,) = make_leads(conn, 1, now, timezone="America/New_York")
        eid = enroll_lead(conn, lead, "waits", now)
    run(workspace)
    st = state(workspace, eid)
    assert st.due_at.isoformat() == "2026-03-03T15:00:00+00:00"  # Tue 10:00 EST
    clock.set(st.due_at)
    run(workspace)
    assert state(workspace, eid).due_at.isoformat() == "2026-03-05T05:00:00+00:00"  # midnight EST


def test_reentry_never_and_after_exit(workspace: Workspace, clock: VirtualClock) -> None:
    quick = {"name": "q", "reentry": "after_exit", "steps": [{"id": "w", "wait": {"duration": "1h"}}]}
    now = clock.now()
    with tx(workspace) as conn:
        publish(conn, quick, now)
        publish(conn, {**quick, "name": "once", "reentry": "never"}, now)
        publish(conn, {**quick, "name": "any", "reentry": "anytime"}, now)
        (lead,) = make_leads(conn, 1, now)
        assert enroll_lead(conn, lead, "q", now) is not None
        assert enroll_lead(conn, lead, "q", now) is None  # still in flight
        assert enroll_lead(conn, lead, "once", now) is not None
        assert enroll_lead(conn, lead, "any", now) is not None
        assert enroll_lead(conn, lead, "any", now) is not None  # anytime: even while in flight
        assert enroll_lead(conn, lead, "q", now, dedupe_key="k1") is None
    run(workspace)
    clock.advance(timedelta(hours=1))
    run(workspace)
    with tx(workspace) as conn:
        assert enroll_lead(conn, lead, "q", clock.now()) is not None
        assert enroll_lead(conn, lead, "once", clock.now()) is None


def test_opted_out_leads_are_not_enrolled(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    with tx(workspace) as conn:
        publish(conn, {"name": "q", "steps": [{"id": "w", "wait": {"duration": "1h"}}]}, now)
        (lead,) = make_leads(conn, 1, now, opted_out=True)
        assert enroll_lead(conn, lead, "q", now) is None
