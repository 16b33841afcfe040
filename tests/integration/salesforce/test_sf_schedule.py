"""Issue 19: the scheduler's last full sync is persisted (`sync_state` row `_last_full_sync`), so a restarted
daemon neither runs a full sync at once nor loses the schedule — emulator over HTTPS, SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import update

from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.salesforce.sync import LAST_FULL_KEY, last_full_sync, scheduler_hook
from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.tables import sync_state
from nurture_tui.workspace import Workspace

from .sf_support import new_lead


def restarted(ws: Workspace) -> Workspace:
    """The same database through a new engine, as a new daemon process would open it."""
    return Workspace(settings=ws.settings, engine=make_engine(ws.settings.db_url), clock=ws.clock)


def test_a_restarted_daemon_keeps_the_full_sync_schedule(sf_ws: Workspace, emulator: Emulator) -> None:
    cfg = sf_ws.settings.salesforce
    cfg.enabled, cfg.sync_interval_seconds = True, 120.0
    new_lead(emulator, "a@example.com")
    first = scheduler_hook(sf_ws)
    assert first is not None and first.ok and first.pulled  # never synced: a full sync now
    with sf_ws.engine.connect() as conn:
        last = last_full_sync(conn)
    assert last is not None and last["ok"] is True and abs(float(last["at"]) - time.time()) < 60  # clock-ok
    assert last["started_at"] is not None
    again = restarted(sf_ws)
    try:
        emulator.stats.reset()
        assert scheduler_hook(again) is None  # within the interval: no full sync after the restart
        assert emulator.stats.snapshot()["api_calls"] == 0
        with write_tx(again.engine) as conn:  # ... and when the interval has passed since the recorded one
            conn.execute(update(sync_state).where(sync_state.c.sobject == LAST_FULL_KEY).values(
                detail={**(last or {}), "started_at": None, "at": time.time() - 121}))  # clock-ok
        due = scheduler_hook(restarted(again))
        assert due is not None and due.ok and due.pulled
        with again.engine.connect() as conn:
            now_last = last_full_sync(conn)
        assert now_last is not None and float(now_last["at"]) > time.time() - 60  # clock-ok
    finally:
        again.engine.dispose()


def test_a_push_alone_does_not_count_as_a_full_sync(sf_ws: Workspace, emulator: Emulator) -> None:
    from nurture_tui.salesforce.sync import run_sync

    assert run_sync(sf_ws, pull=False).ok
    with sf_ws.engine.connect() as conn:
        assert last_full_sync(conn) is None
    assert run_sync(sf_ws, full=True).ok
    with sf_ws.engine.connect() as conn:
        last = last_full_sync(conn)
    assert last is not None and last["full"] is True
