"""Issue 19: the `sf_outbox` rows other than field updates — a hand-off Task, a Campaign Member, an erasure
(anonymise / delete) — behave like the live Lead push when Salesforce refuses them: a record-level rejection
(validation rule, required field, duplicate rule) is kept in sync_error and Sync & audit without holding up the
rest of its batch, and sent again after a fix (`--retry-errors`); a transient per-record refusal is retried
with the capped backoff, then kept; a call that fails as a whole (REQUEST_LIMIT_EXCEEDED, 401, 503,
UNABLE_TO_LOCK_ROW, a lost connection — also after Salesforce applied it) keeps everything queued without
counting an attempt, and nothing is pushed twice. Emulator over HTTPS, unchanged simple-salesforce, SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, select

from nurture_tui.console.sync import sync_overview
from nurture_tui.salesforce import outbox
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.salesforce.error_retry import retry_error
from nurture_tui.salesforce.live import push_due
from nurture_tui.salesforce.sync import SyncReport, retry_errors
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead, sf_outbox, sync_error
from nurture_tui.workspace import Workspace

from .sf_support import new_lead, sync

CAMPAIGN = "Webinar"


@dataclass(frozen=True)
class Kind:
    """One outbox kind: how to queue it for a lead, how to make Salesforce refuse it, how to see it arrived."""

    name: str
    enqueue: Callable[[Connection, int, Workspace], int]
    target: Callable[[str], dict[str, Any]]  # the stuck lead's Salesforce id → record_error fault matchers
    call: dict[str, str]  # method/path of its API call (request faults)
    arrived: Callable[[Emulator, str], int]  # how many times it is in the org (1 = done, exactly once)


def _task(conn: Connection, lead_id: int, ws: Workspace) -> int:
    return outbox.enqueue_task(conn, lead_id, f"Hand-off {lead_id}", "why it qualified", None, ws.clock.now())


def _tasks(emu: Emulator, sf_id: str) -> int:
    return sum(1 for t in emu.org.records["Task"].values() if t["WhoId"] == sf_id and not t["IsDeleted"])


def _member(conn: Connection, lead_id: int, ws: Workspace) -> int:
    return outbox.enqueue_campaign_member(conn, lead_id, CAMPAIGN, "Responded", ws.clock.now())


def _members(emu: Emulator, sf_id: str) -> int:
    return sum(1 for m in emu.org.records["CampaignMember"].values()
               if m.get("LeadId") == sf_id and m["Status"] == "Responded" and not m["IsDeleted"])


def _anonymise(conn: Connection, lead_id: int, ws: Workspace) -> int:
    return outbox.enqueue_erasure(conn, lead_id, "anonymise", ws.clock.now())


def _delete(conn: Connection, lead_id: int, ws: Workspace) -> int:
    return outbox.enqueue_erasure(conn, lead_id, "delete", ws.clock.now())


KINDS = {
    "task": Kind("task", _task, lambda sf_id: {"sobject": "Task", "fields": {"WhoId": sf_id}},
                 {"method": "PATCH", "path": "/composite/sobjects/Task/"}, _tasks),
    "member": Kind("member", _member, lambda sf_id: {"sobject": "CampaignMember", "fields": {"LeadId": sf_id}},
                   {"method": "PATCH", "path": "/composite/sobjects/CampaignMember/"}, _members),
    "anonymise": Kind("anonymise", _anonymise, lambda sf_id: {"sobject": "Lead", "record_ids": [sf_id]},
                      {"method": "PATCH", "path": "/composite/sobjects$"},
                      lambda emu, sf_id: int(emu.org.records["Lead"][sf_id]["LastName"] == "Erased")),
    "delete": Kind("delete", _delete, lambda sf_id: {"sobject": "Lead", "record_ids": [sf_id]},
                   {"method": "DELETE", "path": "/composite/sobjects"},
                   lambda emu, sf_id: int(bool(emu.org.records["Lead"][sf_id]["IsDeleted"]))),
}


@dataclass
class Setup:
    stuck: int  # local lead ids and their Salesforce ids
    fine: int
    stuck_sf: str
    fine_sf: str
    rows: dict[int, int]  # local lead id → its outbox row


def setup(ws: Workspace, emu: Emulator, kind: Kind) -> Setup:
    """Two linked leads (and a campaign), and one row of `kind` queued for each."""
    stuck_sf, fine_sf = new_lead(emu, "stuck@example.com"), new_lead(emu, "fine@example.com")
    emu.org.create("Campaign", {"Name": CAMPAIGN, "IsActive": True})
    assert sync(ws).ok
    with ws.engine.connect() as conn:
        ids = {r.sf_id: r.id for r in conn.execute(select(lead.c.id, lead.c.sf_id))}
    with write_tx(ws.engine) as conn:
        rows = {ids[s]: kind.enqueue(conn, ids[s], ws) for s in (stuck_sf, fine_sf)}
    return Setup(ids[stuck_sf], ids[fine_sf], stuck_sf, fine_sf, rows)


def row(ws: Workspace, row_id: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(sf_outbox).where(sf_outbox.c.id == row_id)).mappings().one()


def open_errors(ws: Workspace) -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(sync_error).where(sync_error.c.resolved_at.is_(None))).mappings())


def push(ws: Workspace) -> SyncReport:
    report = sync(ws, pull=False)
    assert report.pushed is not None
    return report


def assert_nothing_left(ws: Workspace, emu: Emulator, kind: Kind, s: Setup) -> None:
    """Both arrived exactly once, every row is sent, no error is open, and another sync sends nothing."""
    assert (kind.arrived(emu, s.stuck_sf), kind.arrived(emu, s.fine_sf)) == (1, 1)
    assert {row(ws, r)["status"] for r in s.rows.values()} == {"sent"}
    assert open_errors(ws) == []
    again = push(ws)
    assert again.ok and again.pushed is not None and again.pushed.records == 0
    assert (kind.arrived(emu, s.stuck_sf), kind.arrived(emu, s.fine_sf)) == (1, 1)


REJECTIONS = [("task", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "A hand-off Task needs a due date"),
              ("member", "DUPLICATES_DETECTED", "Use one of these records?"),
              ("anonymise", "REQUIRED_FIELD_MISSING", "Required fields are missing: [Industry]"),
              ("delete", "DELETE_FAILED", "Your attempt to delete this lead could not be completed")]


@pytest.mark.parametrize(("name", "code", "message"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_a_rejected_record_is_kept_and_sent_after_a_fix(sf_ws: Workspace, emulator: Emulator, name: str,
                                                        code: str, message: str) -> None:
    kind = KINDS[name]
    s = setup(sf_ws, emulator, kind)
    emulator.faults.add("record_error", times=-1, code=code, message=message, **kind.target(s.stuck_sf))
    report = push(sf_ws)
    assert report.ok and report.pushed is not None
    assert (report.pushed.sent, report.pushed.failed, report.pushed.retry_later) == (1, 1, 0)
    assert (kind.arrived(emulator, s.stuck_sf), kind.arrived(emulator, s.fine_sf)) == (0, 1)  # not held up
    stuck = row(sf_ws, s.rows[s.stuck])
    assert stuck["status"] == "error" and stuck["last_error"] == f"{code}: {message}" and stuck["retry_at"] is None
    (err,) = open_errors(sf_ws)
    assert (err["code"], err["message"], err["sf_outbox_id"]) == (code, message, s.rows[s.stuck])
    with sf_ws.engine.connect() as conn:  # shown in Sync & audit
        (shown,) = sync_overview(conn).errors
    assert shown.code == code
    report = push(sf_ws)  # kept, not sent again until a fix
    assert report.pushed is not None and report.pushed.records == 0
    emulator.faults.clear()  # the rule is fixed in Salesforce; the operator retries
    assert retry_errors(sf_ws) == 1
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 1
    assert_nothing_left(sf_ws, emulator, kind, s)


@pytest.mark.parametrize("name", list(KINDS))
def test_a_transient_refusal_backs_off_then_waits_for_retry_errors(sf_ws: Workspace, emulator: Emulator,
                                                                   name: str) -> None:
    cfg = sf_ws.settings.salesforce
    cfg.max_attempts, cfg.retry_backoff_seconds, cfg.retry_backoff_max_seconds = 3, 0.2, 0.3
    kind = KINDS[name]
    s = setup(sf_ws, emulator, kind)
    emulator.faults.add("record_error", times=-1, code="UNABLE_TO_LOCK_ROW",
                        message="unable to obtain exclusive access to this record", **kind.target(s.stuck_sf))
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and (report.pushed.sent, report.pushed.retry_later) == (1, 1)
    stuck = row(sf_ws, s.rows[s.stuck])
    assert stuck["status"] == "pending" and stuck["attempts"] == 1 and stuck["retry_at"] > time.time()  # clock-ok
    with sf_ws.engine.connect() as conn:  # in backoff: makes no push due (the scheduler's tick) until its time
        assert not push_due(conn, 3600.0, time.time())  # clock-ok
        assert push_due(conn, 3600.0, stuck["retry_at"] + 0.01)
    report = push(sf_ws)
    assert report.pushed is not None and (report.pushed.records, report.pushed.backing_off) == (0, 1)
    for attempt in (2, 3):
        time.sleep(0.35)
        report = push(sf_ws)
        assert report.ok and report.pushed is not None and report.pushed.sent == 0
        assert row(sf_ws, s.rows[s.stuck])["attempts"] == attempt
    stuck = row(sf_ws, s.rows[s.stuck])  # given up after max_attempts: kept until a fix
    assert stuck["status"] == "error" and stuck["retry_at"] is None
    (err,) = open_errors(sf_ws)
    assert err["code"] == "UNABLE_TO_LOCK_ROW" and err["attempts"] == 3
    assert "given up after 3 attempts" in err["message"] and "--retry-errors" in err["message"]
    time.sleep(0.35)
    report = push(sf_ws)
    assert report.pushed is not None and report.pushed.records == 0
    with sf_ws.engine.connect() as conn:
        assert not push_due(conn, 3600.0, time.time() + 3600)  # clock-ok
    emulator.faults.clear()
    assert retry_errors(sf_ws) == 1
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 1
    assert row(sf_ws, s.rows[s.stuck])["attempts"] == 1  # a fresh round (reset by --retry-errors)
    assert_nothing_left(sf_ws, emulator, kind, s)


def test_retry_errors_ends_a_backoff_and_a_later_status_never_overtakes(sf_ws: Workspace,
                                                                        emulator: Emulator) -> None:
    """A member status refused for a moment holds back the lead's later rows, so the latest status wins."""
    kind = KINDS["member"]
    s = setup(sf_ws, emulator, kind)
    emulator.faults.add("record_error", code="UNABLE_TO_LOCK_ROW", message="locked", **kind.target(s.stuck_sf))
    assert push(sf_ws).ok
    with write_tx(sf_ws.engine) as conn:
        later = outbox.enqueue_campaign_member(conn, s.stuck, CAMPAIGN, "Registered", sf_ws.clock.now())
        task = outbox.enqueue_task(conn, s.stuck, "Call back", "", None, sf_ws.clock.now())
    report = push(sf_ws)  # the lead's rows all wait out the first one's backoff (60 s)
    assert report.pushed is not None and (report.pushed.records, report.pushed.backing_off) == (0, 3)
    assert retry_errors(sf_ws) == 1  # ends the backoff
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 2  # one member record, one Task
    (member,) = [m for m in emulator.org.records["CampaignMember"].values() if m.get("LeadId") == s.stuck_sf]
    assert member["Status"] == "Registered"
    assert {row(sf_ws, r)["status"] for r in (s.rows[s.stuck], later, task)} == {"sent"}
    assert open_errors(sf_ws) == []


CALL_FAULTS = [("task", "request_limit", False), ("task", "drop_connection", True),
               ("member", "expired_session", False), ("member", "unavailable", True),
               ("anonymise", "lock_row", False), ("anonymise", "drop_connection", True),
               ("delete", "drop_connection", False), ("delete", "unavailable", True)]


@pytest.mark.parametrize(("name", "fault", "after"), CALL_FAULTS,
                         ids=[f"{n}-{f}{'-lost-response' if a else ''}" for n, f, a in CALL_FAULTS])
def test_a_failed_call_keeps_everything_queued_and_nothing_is_pushed_twice(
        sf_ws: Workspace, emulator: Emulator, name: str, fault: str, after: bool) -> None:
    kind = KINDS[name]
    s = setup(sf_ws, emulator, kind)
    # every try of the call fails (retry.py's own retries included); with `after` Salesforce applies it each time
    emulator.faults.add(fault, times=-1, after=after, **kind.call)
    report = push(sf_ws)
    assert not report.ok and report.error
    assert [e["code"] for e in open_errors(sf_ws)] == ["SYNC_FAILED"]
    for r in s.rows.values():  # still queued, no attempt counted, no backoff
        assert (row(sf_ws, r)["status"], row(sf_ws, r)["attempts"], row(sf_ws, r)["retry_at"]) == ("pending", 0, None)
    expected = 1 if after else 0
    assert (kind.arrived(emulator, s.stuck_sf), kind.arrived(emulator, s.fine_sf)) == (expected, expected)
    emulator.faults.clear()
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 2
    retry_errors(sf_ws)  # acknowledges the whole-sync failure
    assert_nothing_left(sf_ws, emulator, kind, s)


def test_retrying_one_error_in_sync_and_audit_ends_its_backoff(sf_ws: Workspace, emulator: Emulator) -> None:
    kind = KINDS["task"]
    s = setup(sf_ws, emulator, kind)
    emulator.faults.add("record_error", code="UNABLE_TO_LOCK_ROW", message="locked", **kind.target(s.stuck_sf))
    assert push(sf_ws).ok and row(sf_ws, s.rows[s.stuck])["retry_at"] is not None
    (err,) = open_errors(sf_ws)
    with write_tx(sf_ws.engine) as conn:  # the Sync & audit screen's `t`
        assert retry_error(conn, err["id"], now=sf_ws.clock.now(), user="ops").startswith("queued")
    assert (row(sf_ws, s.rows[s.stuck])["retry_at"], row(sf_ws, s.rows[s.stuck])["attempts"]) == (None, 0)
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 1
    assert_nothing_left(sf_ws, emulator, kind, s)


@pytest.mark.parametrize("name", ["task", "member"])
def test_a_refusal_in_a_bulk_job_backs_off_the_same_way(sf_ws: Workspace, emulator: Emulator, name: str) -> None:
    sf_ws.settings.salesforce.bulk_threshold = 1  # the two rows go in one Bulk 2.0 upsert job
    kind = KINDS[name]
    s = setup(sf_ws, emulator, kind)
    emulator.faults.add("record_error", code="UNABLE_TO_LOCK_ROW", message="locked", **kind.target(s.stuck_sf))
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.bulk_jobs == 1
    assert (report.pushed.sent, report.pushed.retry_later) == (1, 1)
    stuck = row(sf_ws, s.rows[s.stuck])
    assert stuck["status"] == "pending" and stuck["attempts"] == 1 and stuck["retry_at"] > time.time()  # clock-ok
    assert (kind.arrived(emulator, s.stuck_sf), kind.arrived(emulator, s.fine_sf)) == (0, 1)
    assert retry_errors(sf_ws) == 1  # ends the backoff
    report = push(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.sent == 1
    assert_nothing_left(sf_ws, emulator, kind, s)
