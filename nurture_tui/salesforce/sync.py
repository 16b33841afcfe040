"""`run_sync`: one incremental (or full) two-way sync with an org, and the scheduler hook.

Order: log in, read `limits/` (budget), pull (parents before children, then deletes and merges), push, then
the Campaign Influence records the pipeline-influence report implies (salesforce/influence.py).
Pull first, so a push goes to the record as it is now (e.g. the Contact a lead was converted into).
Resumable by construction: pulls commit page by page with their watermark, pushes settle outbox rows call by
call, and everything sent is idempotent (updates by Id, upserts on external ids), so re-running after an
interruption neither loses nor duplicates anything. Failures end up in `sync_error`, never in a log only.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..config import Settings
from ..errors import NurtureError
from ..store.engine import write_tx
from ..store.tables import mql, sf_lead_sync, sf_outbox, sync_error, sync_state
from ..workspace import Workspace
from . import backoff, live
from .api import SfApi
from .influence import InfluenceReport, push_influence
from .pull import ObjectReport, Puller
from .push import Pusher, PushReport
from .retry import RetryPolicy

_RUNNING = threading.Lock()


class SyncBusy(NurtureError):
    """Another sync holds the lock (this process or another one)."""


@dataclass
class SyncReport:
    pulled: dict[str, ObjectReport] = field(default_factory=dict)
    pushed: PushReport | None = None
    influence: InfluenceReport | None = None  # the Campaign Influence push (salesforce/influence.py)
    events: int = 0
    api_calls: int = 0
    logins: int = 0
    retries: int = 0
    relogins: int = 0
    budget_used: int = 0
    budget_allowed: int = 0
    error: str | None = None
    open_errors: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def _error_sink(now: Any) -> Any:
    def record(conn: Connection, sobject: str, direction: str, record_id: str | None, code: str, message: str,
               payload: dict[str, Any]) -> None:
        conn.execute(insert(sync_error).values(
            sobject=sobject[:40], direction=direction, record_id=(record_id or None) and record_id[:18],
            sf_outbox_id=payload.get("sf_outbox_id"), lead_id=payload.get("lead_id"), code=code[:80],
            message=message, payload={k: v for k, v in payload.items() if k not in ("sf_outbox_id", "lead_id")},
            attempts=int(payload.get("attempts") or 1), created_at=now))

    return record


LOCK_KEY = "_sync_lock"
STALE_LOCK = timedelta(minutes=15)
#: `sync_state` row of the last two-way sync (pull and push): when it started (`last_run_at`, domain time;
#: `detail.at`, unix seconds for the scheduler), how it ended, so a restarted daemon keeps the schedule.
LAST_FULL_KEY = "_last_full_sync"


def _record_full_sync(ws: Workspace, started_wall: float, started: Any, report: SyncReport, full: bool) -> None:
    detail = {"at": started_wall, "full": full, "ok": report.ok, "error": report.error,
              "api_calls": report.api_calls, "ended_at": ws.clock.now().isoformat()}
    values = {"status": "ok" if report.ok else "error", "last_run_at": started, "detail": detail}
    with write_tx(ws.engine) as conn:
        if not conn.execute(update(sync_state).where(sync_state.c.sobject == LAST_FULL_KEY).values(**values)).rowcount:
            conn.execute(insert(sync_state).values(sobject=LAST_FULL_KEY, **values))


def last_full_sync(conn: Connection) -> dict[str, Any] | None:
    """The last two-way sync as recorded: {"started_at", "at" (unix s), "ok", "error", "full", …} or None."""
    row = conn.execute(select(sync_state.c.last_run_at, sync_state.c.detail)
                       .where(sync_state.c.sobject == LAST_FULL_KEY)).first()
    if row is None:
        return None
    return {"started_at": row.last_run_at, **(row.detail or {})}


def _acquire(ws: Workspace) -> None:
    """A row in sync_state marks a running sync, so a CLI sync and the daemon's job never overlap
    (a lock older than 15 minutes is taken to be from a crashed process)."""
    now = ws.clock.now()
    try:
        with write_tx(ws.engine) as conn:
            row = conn.execute(select(sync_state.c.status, sync_state.c.last_run_at)
                               .where(sync_state.c.sobject == LOCK_KEY).with_for_update()).first()
            if row is not None and row.status == "running" and row.last_run_at and now - row.last_run_at < STALE_LOCK:
                raise SyncBusy(f"another Salesforce sync is running (since {row.last_run_at:%Y-%m-%d %H:%M:%S} "
                                   "UTC); try again when it has finished")
            if row is None:
                conn.execute(insert(sync_state).values(sobject=LOCK_KEY, status="running", last_run_at=now,
                                                       detail={}))
            else:
                conn.execute(update(sync_state).where(sync_state.c.sobject == LOCK_KEY)
                             .values(status="running", last_run_at=now))
    except IntegrityError as exc:  # two first-ever syncs raced to create the row
        raise SyncBusy("another Salesforce sync is starting; try again in a moment") from exc


def _remember_api_usage(ws: Workspace, api: SfApi) -> None:
    """Keep the org's daily API usage as last seen on the lock row, for the Sync & audit screen (not when the
    sync never read `limits/`)."""
    budget = api.budget
    if budget.max_calls <= 0:
        return
    usage = {"api_used": budget.used, "api_max": budget.max_calls, "api_allowed": budget.allowed,
             "at": ws.clock.now().isoformat()}
    with write_tx(ws.engine) as conn:
        conn.execute(update(sync_state).where(sync_state.c.sobject == LOCK_KEY).values(detail=usage))


def _release(ws: Workspace) -> None:
    with write_tx(ws.engine) as conn:
        conn.execute(update(sync_state).where(sync_state.c.sobject == LOCK_KEY).values(status="idle"))


def run_sync(ws: Workspace, *, pull: bool = True, push: bool = True, full: bool = False,
             policy: RetryPolicy | None = None, objects: list[str] | None = None,
             api: SfApi | None = None) -> SyncReport:
    """Run one sync; returns a report (a failure mid-way is in `report.error`, with progress kept)."""
    if not _RUNNING.acquire(blocking=False):
        raise SyncBusy("a Salesforce sync is already running in this process")
    try:
        _acquire(ws)
    except BaseException:
        _RUNNING.release()
        raise
    report = SyncReport()
    started_wall, started = time.time(), ws.clock.now()  # clock-ok: the scheduler's schedule is wall time
    try:
        api = api or SfApi(ws.settings.salesforce, policy=policy)
        sink = _error_sink(ws.clock.now())
        try:
            api.limits()
            if pull:
                puller = Puller(ws, api, full=full, on_error=sink)
                try:
                    puller.run(objects)
                finally:
                    report.pulled = puller.report.objects
                    report.events = puller.report.events
            if push:
                if full:  # a full sync reads the org's describe again (fields, Lead Status values) and
                    with write_tx(ws.engine) as conn:  # re-checks every qualified lead's Status against it
                        conn.execute(delete(sync_state).where(sync_state.c.sobject == live.DESCRIBE_KEY))
                        qualified = [int(r[0]) for r in conn.execute(select(mql.c.lead_id).distinct())]
                        live.mark_dirty(conn, qualified, time.time())  # clock-ok: the capture triggers' clock
                pusher = Pusher(ws, api, on_error=sink)
                try:
                    pusher.run()
                finally:
                    report.pushed = pusher.report
                if not pusher.report.budget_stopped:
                    report.influence = push_influence(ws, api, sink)
        except NurtureError:
            raise
        except Exception as exc:  # network, limits, a failed job: progress so far is committed
            report.error = f"{type(exc).__name__}: {str(exc)[:500]}"
            with write_tx(ws.engine) as conn:
                sink(conn, "*", "pull" if pull and not report.pushed else "push", None, "SYNC_FAILED",
                     report.error, {})
        report.api_calls = api.calls.api_calls
        report.logins = api.calls.logins
        report.retries = api.stats.retries
        report.relogins = api.stats.relogins
        report.budget_used = api.budget.used
        report.budget_allowed = api.budget.allowed
        _remember_api_usage(ws, api)
        with ws.engine.connect() as conn:
            report.open_errors = len(conn.execute(select(sync_error.c.id).where(
                sync_error.c.resolved_at.is_(None))).all())
        if pull and push and objects is None:
            _record_full_sync(ws, started_wall, started, report, full)
        return report
    finally:
        try:
            _release(ws)
        finally:
            _RUNNING.release()


def retry_errors(ws: Workspace) -> int:
    """Put every failed outbox row and rejected lead back in the queue and end every backoff (attempts reset);
    their errors stay until the push succeeds."""
    with write_tx(ws.engine) as conn:
        n = conn.execute(update(sf_outbox).where(sf_outbox.c.status == "error").values(
            status="pending", attempts=0, retry_at=None)).rowcount
        # Leads whose create or field update Salesforce rejected: dirty again (live.py / create.py).
        s = sf_lead_sync.c
        n += conn.execute(update(sf_lead_sync).where(s.error_seq.is_not(None), s.dirty_since.is_(None))
                          .values(dirty_since=time.time(), error_seq=None, attempts=0,  # clock-ok: as the triggers
                                  retry_at=None)).rowcount
        # ... and leads and outbox rows waiting out a retry backoff go with the next push, with a fresh round
        n += backoff.end(conn)
        # Whole-sync / whole-job failures are acknowledged; per-record pull errors retry on every sync anyway.
        conn.execute(update(sync_error).where(sync_error.c.resolved_at.is_(None), sync_error.c.sf_outbox_id.is_(None),
                                              sync_error.c.code.in_(["SYNC_FAILED", "BULK_JOB_FAILED"])).values(
            resolved_at=ws.clock.now()))
    return int(n or 0)


#: How often the scheduler's sync job looks at the change capture (real seconds).
SYNC_TICK_SECONDS = 5.0
_LAST_PUSH_S: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()  # how long a push took


def sync_tick(settings: Settings) -> float:
    """The scheduler's sync job interval: the sync interval, or the tick when that is longer."""
    return float(min(settings.salesforce.sync_interval_seconds, SYNC_TICK_SECONDS))


def scheduler_hook(ws: Workspace) -> SyncReport | None:
    """The engine scheduler's fixed "sync" job, run every `sync_tick` seconds: a full two-way sync every
    `salesforce.sync_interval_seconds` (counted from the last one recorded in `sync_state`, so a restart neither
    runs one at once nor loses the schedule), and in between a push alone as soon as the oldest unpushed change is
    about to be `push_interval_seconds` old (live.push_due) — so a score change reaches Salesforce within one
    push interval however the changes arrive, and a quiet workspace costs no API call."""
    cfg = ws.settings.salesforce
    if not cfg.enabled:
        return None
    try:
        with ws.engine.connect() as conn:  # persisted: a restarted daemon keeps the schedule
            last = last_full_sync(conn)
        wall = time.time()  # clock-ok: the schedule is wall time (recorded by run_sync)
        last_at = float(last["at"]) if last and last.get("at") is not None else None
        if last_at is None or last_at > wall or wall - last_at >= cfg.sync_interval_seconds - SYNC_TICK_SECONDS / 2:
            return run_sync(ws)  # (a busy lock raises before: the next tick tries again)
        with ws.engine.connect() as conn:
            wall = time.time()  # clock-ok: dirty_since is stamped by the capture triggers from the db's clock
            due = live.push_due(conn, cfg.push_interval_seconds or cfg.sync_interval_seconds, wall,
                                _LAST_PUSH_S.get(ws.engine, 0.0))
        if not due:
            return None
        start = time.monotonic()
        report = run_sync(ws, pull=False)
        _LAST_PUSH_S[ws.engine] = time.monotonic() - start
        return report
    except SyncBusy:
        return None  # a manual `nurture sync` is running; the next tick will catch up
