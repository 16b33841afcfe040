"""Group-commit ingest of opens and clicks (issue 21).

The request handler verifies the token in memory (HMAC; a bad one is a 400 that never reaches the
database) and hands the hit to this process's `HitWriter`. One writer thread drains everything queued
since its last commit into **one** transaction: it looks up the hits' messages in one query, flags bots,
and runs `engine.events.record_events` on the whole batch — events-API requests (page views, forms) join
the same batch, each all or nothing — then commits and resolves each hit's future. The response is sent
only after that commit: an acknowledged hit is durable (a crash, even SIGKILL, loses only hits that were
never answered). Under load batches grow by themselves (whatever arrived while the previous commit ran),
so the cost of a transaction is shared by every hit in it; when idle a hit commits alone, at once.

With `mail.tracking_effects = "deferred"` (what `"auto"`, the default, picks on PostgreSQL) that transaction
holds only what the answer promises: the activity rows, each non-bot one listed in `activity_pending`. The
process's applier thread, woken by the commit, applies their effects (`engine.events.apply_pending`: scores,
segments, `wait_for` wake-ups, goal / exit rules, entry) in a second transaction moments later, oldest first
and in bigger batches, one applier at a time across processes; the scheduler also applies whatever is
pending before each engine run. Effects are a dozen statements a batch — round trips to a PostgreSQL server,
most of a small batch's CPU on SQLite — so taking them off the answer's path keeps a click's answer in
milliseconds, and bigger batches make them cheaper per hit. A crash between the two leaves the rows listed,
and the next writer applies them when it starts. `"inline"` (what `"auto"` picks on SQLite, where it
measured faster: see DEFER_EFFECTS) runs both in the one transaction.

A hit whose token names no message of its lead is refused in the batch (the handler answers 400), as
before. If a batch fails as a whole (a deadlock between two worker processes on PostgreSQL, a database
that stayed busy), it is retried once, then each hit is committed on its own so one bad hit fails only
its own request (500). Each worker process has its own writer; a hit is one request, recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..activity import ActivityEvent
from ..engine.events import apply_pending, record_events, unlist_oldest_pending
from ..errors import NurtureError, ValidationError
from ..mail.tokens import TokenData
from ..store.engine import write_tx
from ..store.tables import enrollment, outbox
from ..workspace import Workspace
from .bots import bot_reason
from .events_api import ApiEvent, lookup, to_activities

log = logging.getLogger("nurture.web.ingest")

#: Most hits in one transaction (a bigger backlog is committed in several).
MAX_BATCH = 1000
#: How long the writer keeps collecting after the first hit of a batch (while more keep coming). A
#: transaction has a fixed cost of a few ms; waiting this long for company halves it per hit under load
#: and adds at most this much to an idle hit's answer.
LINGER_SECONDS = 0.002
#: Longest the writer waits for company after a slow commit, and the longest gap between two hits it waits.
MAX_LINGER = 0.025
QUIET = 0.003
#: Writer threads per process. One on both backends: SQLite has one writer at a time anyway, and on
#: PostgreSQL, although a batch mostly waits for round trips, batches side by side contend for the same
#: rows (the rollups' per-message and per-day counters, the lead rows of a burst): 4 writers measured
#: 46 requests/s against 690 for one (bench tracking, 2026-12-06).
WRITERS = {"sqlite": 1, "postgresql": 1}
#: Where `mail.tracking_effects = "auto"` defers effects. Measured on the quiet VM (bench tracking, 15 s):
#: SQLite inline 1,897 requests/s (p99 60 ms) against deferred 1,420 (p99 80 ms) — the applier thread's
#: Python work competes with the event loop for the GIL, and SQLite statements are cheap; PostgreSQL
#: deferred 1,369 (p99 81 ms) against inline 1,274 (p99 82 ms) — its statements are round trips.
DEFER_EFFECTS = {"sqlite": False, "postgresql": True}
#: Most pending activities one applier transaction takes (on SQLite the writer waits for it, so it stays
#: short), and how often the applier looks for rows left by another process (it is woken at once after each
#: of its own writer's commits).
APPLY_BATCH = {"sqlite": 250, "postgresql": 2000}
APPLY_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Hit:
    """One request's facts that matter for bot detection and the activity's meta."""

    user_agent: str | None
    ip: str | None
    method: str = "GET"


@dataclass(slots=True)
class Pending:
    """A verified hit (or one events-API request: `api`) waiting for its group commit."""

    data: TokenData | None
    kind: str
    hit: Hit | None
    now: datetime
    api: list[ApiEvent] | None = None
    done: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None
    result: Any = None
    error: BaseException | None = field(default=None)

    def settle(self) -> None:
        if self.future is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(_resolve, self.future, self.result, self.error)
        if self.done is not None:
            self.done.set()


def _resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # the request went away (client disconnect); the hit is recorded all the same
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class HitWriter:
    """The process's group-commit writer: `await writer.record(data, kind, hit, now)` → activity id (or
    None if nothing was stored), after the commit that holds it."""

    def __init__(self, ws: Workspace, max_batch: int = MAX_BATCH, linger: float = LINGER_SECONDS) -> None:
        self.ws = ws
        self.max_batch = max_batch
        self.linger = linger
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._last_write = 0.0
        self.batches = 0
        self.hits = 0
        mode = ws.settings.mail.tracking_effects
        self.defer = DEFER_EFFECTS.get(ws.engine.dialect.name, False) if mode == "auto" else mode == "deferred"
        self.apply_batch = APPLY_BATCH.get(ws.engine.dialect.name, 250)
        self.applied = 0
        self._apply_wake = threading.Event()
        self._applier: threading.Thread | None = None
        if self.defer:  # at once: rows a crashed process left pending are applied without waiting for a hit
            self._applier = threading.Thread(target=self._apply_run, name="nurture-hit-applier", daemon=True)
            self._applier.start()

    async def record(self, data: TokenData, kind: str, hit: Hit, now: datetime) -> int | None:
        loop = asyncio.get_running_loop()
        pending = Pending(data, kind, hit, now, loop=loop, future=loop.create_future())
        self.submit(pending)
        assert pending.future is not None
        result: int | None = await pending.future
        return result

    async def record_api(self, events: list[ApiEvent], now: datetime) -> list[int]:
        """One events-API request, all or nothing (ValidationError names its first unknown lead)."""
        loop = asyncio.get_running_loop()
        pending = Pending(None, "api", None, now, api=events, loop=loop, future=loop.create_future())
        self.submit(pending)
        assert pending.future is not None
        ids: list[int] = await pending.future
        return ids

    def record_sync(self, data: TokenData, kind: str, hit: Hit, now: datetime) -> int | None:
        """The same from a thread (tests, tools)."""
        pending = Pending(data, kind, hit, now, done=threading.Event())
        self.submit(pending)
        assert pending.done is not None
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def submit(self, pending: Pending) -> None:
        with self._lock:
            if self._closed:
                raise NurtureError("tracking writer is shut down")
            if not self._threads:
                for i in range(WRITERS.get(self.ws.engine.dialect.name, 1)):
                    thread = threading.Thread(target=self._run, name=f"nurture-hit-writer-{i}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
            self._queue.put(pending)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued and apply its effects, then stop the threads."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            for _ in threads:
                self._queue.put(None)
        for thread in threads:
            thread.join(timeout)
        if self._applier is not None:
            self._apply_wake.set()
            self._applier.join(timeout)
        if threads:
            log.info("tracking writer closed", extra={"hits": self.hits, "batches": self.batches,
                                                      "mean_batch": round(self.hits / max(1, self.batches), 1)})

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            started = time.monotonic()  # clock-ok: a real-time batching window
            # a slow commit (PostgreSQL round trips) is worth waiting a little longer for company, as
            # long as hits keep coming: up to a quarter of the last write, never a gap over QUIET
            until = started + max(self.linger, min(MAX_LINGER, self._last_write / 4))
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    left = until - time.monotonic()  # clock-ok
                    if left <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=min(left, max(self.linger, QUIET)))
                    except queue.Empty:
                        break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            t0 = time.monotonic()  # clock-ok
            self._commit(batch)
            self._last_write = time.monotonic() - t0  # clock-ok

    def _commit(self, batch: list[Pending]) -> None:
        for attempt in (1, 2):
            try:
                self._write(batch)
                break
            except Exception as exc:  # retried, then isolated per hit below
                if attempt == 1:
                    log.warning("tracking batch failed, retrying", extra={"hits": len(batch), "error": str(exc)})
                    continue
                if len(batch) == 1:
                    log.error("tracking hit not recorded", extra={"error": str(exc)})
                    batch[0].error = exc
                else:
                    for one in batch:
                        one.error = None
                        self._commit([one])
                    return
        with self._lock:
            self.batches += 1
            self.hits += len(batch)
        for p in batch:
            p.settle()
        if self.defer:
            self._apply_wake.set()

    def _apply_run(self) -> None:
        """The applier thread: after each commit of this process's writer (or every APPLY_POLL_SECONDS),
        apply pending effects until none are left; when closed, finish them and stop."""
        while True:
            self._apply_wake.wait(APPLY_POLL_SECONDS)
            self._apply_wake.clear()
            closing = self._closed
            while self._apply_some(self.apply_batch) == self.apply_batch:
                pass
            if closing:
                return

    def _apply_some(self, limit: int) -> int:
        """One applier transaction; a failing batch is retried one activity at a time, and an activity whose
        effects fail alone is unlisted (logged with its id: the row itself stays recorded)."""
        try:
            with write_tx(self.ws.engine) as conn:
                n = apply_pending(conn, self.ws.clock.now(), self.ws.settings, limit)
        except Exception as exc:
            if limit > 1:
                log.warning("applying tracking effects failed, retrying one by one", extra={"error": str(exc)})
                done = 0
                while done < limit and self._apply_some(1):
                    done += 1
                return done
            with write_tx(self.ws.engine) as conn:
                dropped = unlist_oldest_pending(conn)
            log.error("tracking hit's effects not applied", extra={"activity_id": dropped, "error": str(exc)})
            return 1 if dropped is not None else 0
        self.applied += n
        return n

    def _write(self, batch: list[Pending]) -> None:
        settings = self.ws.settings
        with write_tx(self.ws.engine) as conn:
            hits = [p for p in batch if p.data is not None]
            calls = [p for p in batch if p.api is not None]
            msgs = _messages(conn, sorted({p.data.message_ref for p in hits if p.data is not None}))
            by_email, known = lookup(conn, [p.api for p in calls if p.api is not None]) if calls else ({}, set())
            events: list[ActivityEvent] = []
            owners: list[tuple[Pending, int]] = []
            for p in batch:
                p.error, p.result = None, None
                if p.api is not None:
                    try:
                        acts = to_activities(p.api, by_email, known)
                    except ValidationError as exc:
                        p.error = exc
                        continue
                    events += acts
                    owners.append((p, len(acts)))
                    continue
                data, hit = p.data, p.hit
                assert data is not None and hit is not None
                msg = msgs.get(data.message_ref)
                if msg is None:
                    p.error = ValidationError("token", "unknown message")
                    continue
                if msg["lead_id"] != data.lead_id:
                    p.error = ValidationError("token", "does not match its message")
                    continue
                reason = bot_reason(hit.user_agent, msg["sent_at"], p.now,
                                    window_seconds=settings.mail.bot_open_seconds, method=hit.method,
                                    in_flight=msg["status"] in ("queued", "sending"))
                meta: dict[str, Any] = {"ua": (hit.user_agent or "")[:300], "ip": hit.ip}
                if reason:
                    meta["bot_reason"] = reason
                events.append(ActivityEvent(
                    data.lead_id, p.kind, p.now, sequence_id=msg["sequence_id"], version_id=msg["version_id"],
                    node_id=msg["node_id"], template_id=msg["template_id"], outbox_id=msg["id"],
                    url=data.url[:2048] or None, bot=reason is not None, meta=meta,
                ))
                owners.append((p, -1))
            if events:
                now = max(max(p.now for p, _ in owners), self.ws.clock.now())
                ids = record_events(conn, events, now, settings, defer_effects=self.defer)
                at = 0
                for p, n in owners:
                    if n < 0:
                        p.result, at = ids[at], at + 1
                    else:
                        p.result, at = ids[at:at + n], at + n


def _messages(conn: Connection, refs: list[str]) -> dict[str, dict[str, Any]]:
    """The outbox rows (plus enrollment version) of these message refs, in one query per 500."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(refs), 500):
        rows = conn.execute(
            select(outbox.c.id, outbox.c.lead_id, outbox.c.sequence_id, outbox.c.node_id, outbox.c.template_id,
                   outbox.c.status, outbox.c.sent_at, outbox.c.message_ref, enrollment.c.version_id)
            .select_from(outbox.outerjoin(enrollment, enrollment.c.id == outbox.c.enrollment_id))
            .where(outbox.c.message_ref.in_(refs[i:i + 500]))
        ).mappings()
        for row in rows:
            out[row["message_ref"]] = dict(row)
    return out
