"""Issue 19: a lead whose live push keeps failing with a transient per-record error is retried with a backoff,
not at every tick, and given up after `salesforce.max_attempts` failures in a row — kept in sync_error (Sync &
audit, `nurture salesforce errors`) and pushed again after a change or `nurture sync --retry-errors`; nothing
lost, nothing pushed twice — emulator over HTTPS with unchanged simple-salesforce, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update

from nurture_tui.console.sync import sync_overview
from nurture_tui.salesforce.backoff import backoff_seconds
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.salesforce.live import push_due
from nurture_tui.salesforce.sync import retry_errors
from nurture_tui.scoring import service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead, sf_lead_sync, sync_error
from nurture_tui.workspace import Workspace

from .sf_support import new_lead, sync


def sync_row(ws: Workspace, lead_id: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(sf_lead_sync).where(sf_lead_sync.c.lead_id == lead_id)).mappings().one()


def writes(emu: Emulator) -> int:
    return sum(v for k, v in emu.stats.snapshot()["by_route"].items() if k.startswith("PATCH") and "/composite" in k)


def test_backoff_doubles_up_to_its_cap(sf_ws: Workspace) -> None:
    cfg = sf_ws.settings.salesforce
    assert (cfg.max_attempts, cfg.retry_backoff_seconds, cfg.retry_backoff_max_seconds) == (5, 60.0, 3600.0)
    assert [backoff_seconds(cfg, n) for n in (1, 2, 3, 4, 7, 20)] == [60, 120, 240, 480, 3600, 3600]


def test_a_lead_that_keeps_failing_is_retried_with_backoff_then_kept_in_sync_errors(
        sf_ws: Workspace, emulator: Emulator) -> None:
    cfg = sf_ws.settings.salesforce
    cfg.max_attempts, cfg.retry_backoff_seconds, cfg.retry_backoff_max_seconds = 3, 0.2, 0.3
    stuck_sf = new_lead(emulator, "stuck@example.com")
    ok_sf = new_lead(emulator, "fine@example.com")
    assert sync(sf_ws).ok
    with sf_ws.engine.connect() as conn:
        ids = {r.email: r.id for r in conn.execute(select(lead.c.id, lead.c.email))}
    stuck, fine = ids["stuck@example.com"], ids["fine@example.com"]
    with write_tx(sf_ws.engine) as conn:
        service.adjust_score(conn, stuck, 11, "visit", sf_ws.clock.now(), sf_ws.settings)
        service.adjust_score(conn, fine, 7, "visit", sf_ws.clock.now(), sf_ws.settings)
    emulator.faults.add("record_error", times=-1, sobject="Lead", record_ids=[stuck_sf], code="UNABLE_TO_LOCK_ROW",
                        message="unable to obtain exclusive access to this record")
    emulator.stats.reset()
    first = sync(sf_ws, pull=False)
    assert first.ok and first.pushed is not None and (first.pushed.sent, first.pushed.retry_later) == (1, 1)
    assert emulator.org.records["Lead"][ok_sf]["Nurture_Score__c"] == 7
    row = sync_row(sf_ws, stuck)
    assert row["attempts"] == 1 and row["dirty_since"] is not None and row["retry_at"] > time.time()  # clock-ok
    with sf_ws.engine.connect() as conn:  # a lead in backoff makes no push due (the scheduler's tick) ...
        assert not push_due(conn, 0.0, time.time())  # clock-ok
        assert push_due(conn, 0.0, row["retry_at"] + 0.01)  # ... until its retry time
    before = writes(emulator)
    assert sync(sf_ws, pull=False).ok and writes(emulator) == before  # in backoff: not sent
    for attempt in (2, 3):
        time.sleep(0.35)
        report = sync(sf_ws, pull=False)
        assert report.ok and report.pushed is not None and report.pushed.sent == 0
        assert writes(emulator) == before + attempt - 1
    row = sync_row(sf_ws, stuck)  # given up after max_attempts: no more automatic retries
    assert row["dirty_since"] is None and row["retry_at"] is None and "UNABLE_TO_LOCK_ROW" in row["error"]
    with sf_ws.engine.connect() as conn:
        errors = list(conn.execute(select(sync_error).where(sync_error.c.resolved_at.is_(None))).mappings())
        assert not push_due(conn, 0.0, time.time() + 3600)  # clock-ok
    (err,) = errors
    assert err["code"] == "UNABLE_TO_LOCK_ROW" and err["lead_id"] == stuck and err["attempts"] == 3
    assert "given up after 3 attempts" in err["message"]
    with sf_ws.engine.connect() as conn:  # shown in Sync & audit with its lead
        (shown,) = sync_overview(conn).errors
    assert shown.code == "UNABLE_TO_LOCK_ROW" and shown.lead_id == stuck
    time.sleep(0.35)
    assert sync(sf_ws, pull=False).ok and writes(emulator) == before + 2  # kept, not retried
    emulator.faults.clear()  # the lock is gone; the operator retries
    assert retry_errors(sf_ws) >= 1
    final = sync(sf_ws, pull=False)
    assert final.ok and final.pushed is not None and final.pushed.sent == 1
    assert emulator.org.records["Lead"][stuck_sf]["Nurture_Score__c"] == 11
    assert emulator.org.records["Lead"][ok_sf]["Nurture_Score__c"] == 7
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(sync_error.c.id).where(sync_error.c.resolved_at.is_(None))).all() == []
    row = sync_row(sf_ws, stuck)
    assert row["attempts"] == 0 and row["dirty_since"] is None and row["error"] is None
    emulator.stats.reset()
    assert sync(sf_ws, pull=False).ok and writes(emulator) == 0  # nothing pushed twice


def test_a_change_after_giving_up_is_pushed_with_a_fresh_round(sf_ws: Workspace, emulator: Emulator) -> None:
    cfg = sf_ws.settings.salesforce
    cfg.max_attempts, cfg.retry_backoff_seconds = 1, 0.1
    sf_id = new_lead(emulator, "x@example.com")
    assert sync(sf_ws).ok
    with sf_ws.engine.connect() as conn:
        lid = conn.execute(select(lead.c.id).where(lead.c.email == "x@example.com")).scalar_one()
    with write_tx(sf_ws.engine) as conn:
        service.adjust_score(conn, lid, 4, "visit", sf_ws.clock.now(), sf_ws.settings)
    emulator.faults.add("record_error", sobject="Lead", record_ids=[sf_id], code="UNABLE_TO_LOCK_ROW", message="lk")
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.failed == 1  # max_attempts 1: given up at once
    assert sync_row(sf_ws, lid)["dirty_since"] is None
    with write_tx(sf_ws.engine) as conn:  # the lead changes: the capture trigger marks it dirty again
        conn.execute(update(lead).where(lead.c.id == lid).values(score=lead.c.score + 1))
    report = sync(sf_ws, pull=False)
    assert report.ok and report.pushed is not None and report.pushed.sent == 1
    assert emulator.org.records["Lead"][sf_id]["Nurture_Score__c"] == 5
