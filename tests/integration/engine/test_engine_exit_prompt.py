"""Issue 20 item 9: with the scheduler running, a data change (an import, an edit) or an event that meets an
`exit_when` rule (or the goal) ends the enrollment within 2 s, not at the lead's next step days later."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from nurture_tui.activity import ActivityEvent
from nurture_tui.clock import VirtualClock
from nurture_tui.engine.advance import run_due
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.events import record_events
from nurture_tui.engine.scheduler import NurtureScheduler
from nurture_tui.engine.seeding import make_leads, publish_definition
from nurture_tui.leads.importer import import_csv
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import enrollment, lead
from nurture_tui.wiring import build_scheduler
from nurture_tui.workspace import Workspace

PROGRAM = {"name": "slow-drip",
           "goal": {"field": "stage", "op": "eq", "value": "decision"},
           "exit_when": [{"field": "industry", "op": "eq", "value": "Banned"},
                         {"activity": "form", "within": "30d"}],
           "steps": [{"id": "w", "wait": {"duration": "7d"}}, {"id": "w2", "wait": {"duration": "7d"}}]}
BOUND = 2.0
SPARES = 2  # leads 5 and 6: a second try when the shared machine stalled the first (see `_prompt`)


@pytest.fixture
def running(workspace: Workspace, clock: VirtualClock) -> Iterator[tuple[NurtureScheduler, dict[str, int]]]:
    ws = workspace
    now = clock.now()
    with write_tx(ws.engine) as conn:
        publish_definition(conn, PROGRAM, now)
        ids = make_leads(conn, 5 + SPARES, now, industry="Software")
        eids = {f"l{i}": enroll_lead(conn, lid, "slow-drip", now) for i, lid in enumerate(ids)}
    run_due(ws.engine, ws.clock.now, ws.settings)
    sched = build_scheduler(ws)
    sched.start()
    try:
        deadline = time.monotonic() + 10
        while sched.role != "leader" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sched.role == "leader"
        yield sched, {**{k: int(v) for k, v in eids.items() if v is not None},
                      **{f"lead{i}": lid for i, lid in enumerate(ids)}}
    finally:
        sched.stop()


def _status(ws: Workspace, eid: int) -> tuple[str, str | None]:
    with ws.engine.connect() as conn:
        row = conn.execute(select(enrollment.c.status, enrollment.c.exit_reason).where(enrollment.c.id == eid)).one()
    return row.status, row.exit_reason


def _seconds_until(cond: Callable[[], bool], limit: float = 10.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > limit:
            return float("inf")
        time.sleep(0.02)
    return time.monotonic() - start


def _ended(ws: Workspace, eid: int) -> bool:
    return _status(ws, eid)[0] != "waiting"


def _prompt(ws: Workspace, clock: VirtualClock, change: Callable[[int], None], leads: list[tuple[int, int]],
            expected: tuple[str, str]) -> float:
    """Make `change` to a lead and return how long its enrollment took to end with `expected`. The bound is on
    the engine, but the wall clock also counts the host: on a shared CI machine a commit can stall for seconds
    behind another test's writes. So a try over the bound is made once more on a spare lead; a watcher that
    is really slow (or never looks) fails both."""
    took = float("inf")
    for lid, eid in leads:
        clock.advance(timedelta(seconds=1))  # time passes between changes, as it does
        change(lid)
        took = _seconds_until(partial(_ended, ws, eid))
        assert _status(ws, eid) == expected, (expected, took)
        if took <= BOUND:
            return took
        print(f"over the bound once ({took:.2f} s); trying a spare lead")
    return took


def test_data_changes_and_events_end_enrollments_within_two_seconds(
        workspace: Workspace, clock: VirtualClock, running: tuple[NurtureScheduler, dict[str, int]],
        tmp_path: Path) -> None:
    ws = workspace
    _sched, ids = running
    assert all(_status(ws, ids[f"l{i}"]) == ("waiting", None) for i in range(5 + SPARES))
    with ws.engine.connect() as conn:
        emails = dict(conn.execute(select(lead.c.id, lead.c.email)).all())

    spares = [(ids[f"lead{i}"], ids[f"l{i}"]) for i in range(5, 5 + SPARES)]

    # 1. an import changes a field an exit rule looks at
    def import_banned(lid: int) -> None:
        csv = tmp_path / "update.csv"
        csv.write_text(f"email,industry\n{emails[lid]},Banned\n")
        result = import_csv(ws, csv)
        assert result.updated == 1, result

    took = _prompt(ws, clock, import_banned, [(ids["lead0"], ids["l0"]), spares[0]], ("exited", "exit_when[0]"))
    print(f"import → exit in {took:.2f} s")
    assert took <= BOUND, took

    # 2. a direct edit (as the lead screens and the Salesforce pull make them: they stamp updated_at)
    def edit_stage(lid: int) -> None:
        with write_tx(ws.engine) as conn:
            conn.execute(lead.update().where(lead.c.id == lid).values(stage="decision", updated_at=clock.now()))

    took = _prompt(ws, clock, edit_stage, [(ids["lead1"], ids["l1"]), spares[1]], ("goal", "goal met"))
    print(f"edit → goal in {took:.2f} s")
    assert took <= BOUND, took

    # 3. an event (the events API, tracking): checked in the transaction that records it
    with write_tx(ws.engine) as conn:
        record_events(conn, [ActivityEvent(ids["lead2"], "form", clock.now(), url="https://x.test/demo")],
                      clock.now(), ws.settings)
    assert _status(ws, ids["l2"]) == ("exited", "exit_when[1]")

    clock.advance(timedelta(seconds=1))
    # an unrelated change leaves the others alone; nothing else moved
    with write_tx(ws.engine) as conn:
        conn.execute(lead.update().where(lead.c.id == ids["lead3"]).values(city="Berlin", updated_at=clock.now()))
    time.sleep(1.5)
    assert _status(ws, ids["l3"]) == ("waiting", None) and _status(ws, ids["l4"]) == ("waiting", None)


def test_without_the_watcher_a_data_change_waits_for_the_next_step(workspace: Workspace, clock: VirtualClock) -> None:
    """The regression the watcher fixes: nothing else re-checks a data change before the next step."""
    ws = workspace
    now = clock.now()
    with write_tx(ws.engine) as conn:
        publish_definition(conn, PROGRAM, now)
        lid = make_leads(conn, 1, now)[0]
        eid = enroll_lead(conn, lid, "slow-drip", now)
    assert eid is not None
    run_due(ws.engine, ws.clock.now, ws.settings)
    with write_tx(ws.engine) as conn:
        conn.execute(lead.update().where(lead.c.id == lid).values(industry="Banned", updated_at=clock.now()))
    run_due(ws.engine, ws.clock.now, ws.settings)
    assert _status(ws, eid) == ("waiting", None)
    from nurture_tui.engine.recheck import ChangeWatcher

    watcher = ChangeWatcher()
    with ws.engine.connect() as conn:
        watcher.start_at_latest(conn, ws.clock)
    assert watcher.run(ws) == 0  # it starts at the newest change
    clock.advance(timedelta(milliseconds=1))
    with write_tx(ws.engine) as conn:
        conn.execute(lead.update().where(lead.c.id == lid).values(title="x", updated_at=clock.now()))
    assert watcher.run(ws) == 1 and _status(ws, eid) == ("exited", "exit_when[0]")
    assert watcher.run(ws) == 0 and watcher.checked == 1
    # a change stamped before the newest one seen but committed after it (writers stamp before they get the
    # write lock) is still seen, within the overlap
    with write_tx(ws.engine) as conn:
        late = make_leads(conn, 1, clock.now())[0]
        eid2 = enroll_lead(conn, late, "slow-drip", clock.now())
    run_due(ws.engine, ws.clock.now, ws.settings)
    clock.advance(timedelta(seconds=1))
    stamped = clock.now()
    clock.advance(timedelta(seconds=2))
    with write_tx(ws.engine) as conn:
        conn.execute(lead.update().where(lead.c.id == lid).values(title="y", updated_at=clock.now()))
    watcher.run(ws)
    with write_tx(ws.engine) as conn:
        conn.execute(lead.update().where(lead.c.id == late).values(stage="decision", updated_at=stamped))
    assert watcher.run(ws) == 1 and eid2 is not None and _status(ws, eid2) == ("goal", "goal met")
