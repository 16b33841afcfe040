"""Faults survived with nothing lost: expired sessions, limits, 503, row locks, per-record errors, failed bulk
jobs, an exhausted API budget, and a sync interrupted half-way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from nurture_tui.salesforce import outbox
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.salesforce.emulator.soql import format_datetime
from nurture_tui.salesforce.sync import retry_errors
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead, sf_outbox, sync_error
from nurture_tui.workspace import Workspace

from .sf_support import count, local_lead, sync


def leads(emu: Emulator, n: int, prefix: str = "f", spread: bool = False) -> list[str]:
    """`n` leads; with `spread`, last modified one per hour up to now (oldest first)."""
    now = emu.org.clock()
    return emu.org.insert_trusted("Lead", [
        {"LastName": f"{prefix}{i}", "Company": "C", "Email": f"{prefix}{i}@example.com",
         **({"SystemModstamp": format_datetime(now - timedelta(hours=n - i))} if spread else {})}
        for i in range(n)])


def enqueue_scores(ws: Workspace, score: float = 5.0) -> list[int]:
    now = ws.clock.now()
    with ws.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(lead.c.id).order_by(lead.c.id))]
    with write_tx(ws.engine) as conn:
        for i in ids:
            outbox.enqueue_field_update(conn, i, {"score": score}, now)
    return ids


def open_errors(ws: Workspace) -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(sync_error).where(sync_error.c.resolved_at.is_(None))).mappings())


def test_expired_session_once_on_rest_and_on_bulk(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 120)
    sf_ws.settings.salesforce.bulk_threshold = 50
    emulator.faults.add("expired_session", path="/query/")  # simple-salesforce re-logs in by itself
    emulator.faults.add("expired_session", path="/jobs/query$")  # Bulk 2.0 does not: our re-login
    report = sync(sf_ws)
    assert report.ok, report.error
    assert report.pulled["Lead"].via == "bulk" and report.relogins == 1 and report.logins >= 3
    assert count(sf_ws, lead) == 120
    enqueue_scores(sf_ws, 9.0)
    emulator.faults.add("expired_session", path="/jobs/ingest/[^/]+/batches$")  # mid-job, on the upload
    report = sync(sf_ws, pull=False)
    assert report.ok and report.relogins == 1 and report.pushed is not None and report.pushed.sent == 120
    assert all(r["Nurture_Score__c"] == 9.0 for r in emulator.org.records["Lead"].values())


def test_expired_session_repeatedly_fails_cleanly_then_recovers(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 30)
    sync(sf_ws)
    enqueue_scores(sf_ws)
    emulator.faults.add("expired_session", times=-1, path="/composite/")
    report = sync(sf_ws)
    assert not report.ok and "Expired session" in (report.error or "")
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "pending") == 30
    assert any(e["code"] == "SYNC_FAILED" for e in open_errors(sf_ws))
    emulator.faults.clear()
    report = sync(sf_ws)
    assert report.ok and count(sf_ws, sf_outbox, sf_outbox.c.status == "sent") == 30


def test_limits_503_and_row_locks_are_retried(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 20)
    emulator.faults.add("request_limit", times=1, path="/query/")
    emulator.faults.add("unavailable", times=1, path="/query/")
    emulator.faults.add("method_failure", times=1, path="/query/")
    report = sync(sf_ws)  # three failures in a row on one call: the fourth try (of four) succeeds
    assert report.ok, report.error
    assert report.retries == 3 and count(sf_ws, lead) == 20
    enqueue_scores(sf_ws)
    emulator.faults.add("lock_row", times=1, path="/composite/sobjects")
    report = sync(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 20


def test_per_record_errors_are_kept_and_retryable(sf_ws: Workspace, emulator: Emulator) -> None:
    ids = leads(emulator, 10)
    sync(sf_ws)
    enqueue_scores(sf_ws)
    emulator.faults.add("record_error", sobject="Lead", record_ids=[ids[0]], code="UNABLE_TO_LOCK_ROW",
                        message="unable to obtain exclusive access to this record")
    emulator.faults.add("record_error", sobject="Lead", record_ids=[ids[1]], times=-1,
                        message="Score must be below 100")
    report = sync(sf_ws)
    assert report.pushed is not None
    assert (report.pushed.sent, report.pushed.retry_later, report.pushed.failed) == (8, 1, 1)
    errors = {e["code"]: e for e in open_errors(sf_ws)}
    assert errors["UNABLE_TO_LOCK_ROW"]["message"] == "unable to obtain exclusive access to this record"
    assert errors["FIELD_CUSTOM_VALIDATION_EXCEPTION"]["message"] == "Score must be below 100"
    assert errors["FIELD_CUSTOM_VALIDATION_EXCEPTION"]["record_id"] == ids[1]
    report = sync(sf_ws)  # the transient one waits out its backoff (60 s), the invalid one stays failed
    assert report.pushed is not None and (report.pushed.sent, report.pushed.backing_off) == (0, 1)
    with write_tx(sf_ws.engine) as conn:  # its time has come: the lock is gone, it goes through
        conn.execute(update(sf_outbox).where(sf_outbox.c.retry_at.is_not(None)).values(retry_at=0.0))
    report = sync(sf_ws)
    assert report.pushed is not None and report.pushed.sent == 1
    assert [e["code"] for e in open_errors(sf_ws)] == ["FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    emulator.faults.clear()  # someone fixed the validation rule
    assert retry_errors(sf_ws) == 1
    report = sync(sf_ws)
    assert report.pushed is not None and report.pushed.sent == 1 and open_errors(sf_ws) == []
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "sent") == 10


def test_failed_bulk_jobs(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 80)
    sf_ws.settings.salesforce.bulk_threshold = 50
    emulator.faults.add("bulk_job_fail", sobject="Lead")
    report = sync(sf_ws)
    assert report.ok and report.pulled["Lead"].via == "rest" and count(sf_ws, lead) == 80
    assert [e["code"] for e in open_errors(sf_ws)] == ["BULK_JOB_FAILED"]
    enqueue_scores(sf_ws)
    emulator.faults.add("bulk_job_fail", sobject="Lead", message="InvalidBatch : Field name not found")
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.retry_later == 80
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "pending") == 80
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.sent == 80


def test_api_budget_stops_pushing(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 600)
    sync(sf_ws)
    enqueue_scores(sf_ws)
    emulator.daily_api_limit = emulator.api_used + 40
    # room for the limits/ call and one Collections call, then the budget is spent
    sf_ws.settings.salesforce.api_budget_share = (emulator.api_used + 2.5) / emulator.daily_api_limit
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.budget_stopped
    sent = count(sf_ws, sf_outbox, sf_outbox.c.status == "sent")
    assert sent == 200 and count(sf_ws, sf_outbox, sf_outbox.c.status == "pending") == 600 - sent
    assert emulator.api_used <= report.budget_allowed


def test_interrupted_pull_resumes_without_loss_or_duplicates(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 1000, spread=True)
    emulator.rest.batch_size = 200
    emulator.faults.add("unavailable", skip=2, times=-1, path=r"/query/01g")
    report = sync(sf_ws, push=False)
    assert not report.ok
    half = count(sf_ws, lead)
    assert 0 < half < 1000
    emulator.faults.clear()
    emulator.stats.reset()
    report = sync(sf_ws, push=False)
    assert report.ok and count(sf_ws, lead) == 1000
    with sf_ws.engine.connect() as conn:
        dupes = conn.execute(select(lead.c.sf_id).group_by(lead.c.sf_id).having(func.count() > 1)).all()
    assert dupes == []
    # resumed from the committed watermark (minus the overlap), not from scratch
    assert report.pulled["Lead"].inserted == 1000 - half and report.pulled["Lead"].fetched < 1000


def test_interrupted_push_with_lost_responses_creates_no_duplicates(sf_ws: Workspace, emulator: Emulator) -> None:
    leads(emulator, 3)
    sync(sf_ws)
    now = sf_ws.clock.now()
    with sf_ws.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(lead.c.id))]
    with write_tx(sf_ws.engine) as conn:
        for n in range(100):
            outbox.enqueue_task(conn, ids[n % 3], f"Task {n}", "body", None, now)
    # Salesforce applies the second call, but the answer never arrives (and every retry meets the same fate).
    emulator.faults.add("unavailable", skip=1, times=-1, after=True, path="/composite/sobjects/Task")
    sf_ws.settings.salesforce.bulk_threshold = 5000
    from nurture_tui.salesforce import push as push_mod

    size = push_mod.COLLECTION_SIZE
    push_mod.COLLECTION_SIZE = 40
    try:
        report = sync(sf_ws)
        assert not report.ok
        assert count(sf_ws, sf_outbox, sf_outbox.c.status == "sent") == 40
        emulator.faults.clear()
        report = sync(sf_ws)
    finally:
        push_mod.COLLECTION_SIZE = size
    assert report.ok and count(sf_ws, sf_outbox, sf_outbox.c.status == "sent") == 100
    subjects = [t["Subject"] for t in emulator.org.records["Task"].values()]
    assert len(subjects) == 100 and len(set(subjects)) == 100
    assert local_lead is not None
