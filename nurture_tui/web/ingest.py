"""The database writer for tracking hits (issue 21).

The request handler verifies the token in memory (HMAC; a bad one is a 400 that never reaches the
database). With `mail.tracking_ack = "journal"` (the default) an open, click or page-view beacon is appended
to the process's journal (`journal.py`) and answered once that is on disk; the journal's flusher hands the
hits to this writer, whose journal thread commits them in batches — one query finds the hits' messages,
bots are flagged, `engine.events.record_events` runs on the whole batch — together with the segment's
checkpoint, so a hit is in the database exactly once; a new writer replays what a dead process answered
and did not commit. Under `nurture daemon --http` that writer is a child process (`writer_process.py`,
`mail.tracking_writer`): the web process sends it each flush's lines and it acknowledges each segment's
last committed sequence number. From PACE_FROM_SECONDS of lag answers are paced to the writer's commits;
the journal runs at most LAG_LIMIT_SECONDS ahead of the database: beyond that, answers
wait for their commit. Requests that must wait for their commit (the events API, `tracking_ack =
"commit"`, `record_sync`) have a writer thread of their own on PostgreSQL and ride in the journal thread's
next batch on SQLite (with a writer process, they keep a thread of the web process on both).

With `mail.tracking_effects = "deferred"` (what `"auto"`, the default, picks on PostgreSQL) the writer's
transaction holds only the activity rows, each non-bot one listed in `activity_pending`; the process's
applier thread, woken by the commit, applies their effects (`engine.events.apply_pending`: scores,
segments, `wait_for` wake-ups, goal / exit rules, entry) in a second transaction moments later, one applier
at a time across processes; the scheduler also applies whatever is pending before each engine run. A crash
between the two leaves the rows listed, and the next writer applies them when it starts. `"inline"` (what
`"auto"` picks on SQLite) runs both in the one transaction.

A hit whose token names no message of its lead is dropped with a log line (answered from its token under
the journal; refused 400 with `"commit"`). A batch that fails as a whole is retried — answered hits until the
database is back, others once — then each hit is committed on its own, so one bad hit fails only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from ..activity import ActivityEvent
from ..config import Settings
from ..engine.events import apply_pending, record_events, unlist_oldest_pending
from ..errors import NurtureError, ValidationError
from ..logs import configure_logging
from ..mail.tokens import TokenData
from ..store.engine import write_tx
from ..store.tables import activity_pending, enrollment, outbox
from ..workspace import Workspace
from .bots import bot_reason
from .events_api import ApiEvent, lookup, to_activities
from .journal import Entry, Journal, encode, forget, journal_dir, orphans, read_entries, resolve_all, store_checkpoints
from .journal import checkpoint as journal_checkpoint
from .journal import decode as journal_decode
from .writer_process import RETIRED as SEGMENT_RETIRED
from .writer_process import STOP, WriterProcess, share_lock

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
#: In a writer process, where each applier transaction acknowledges hits (and so moves the web process's
#: lag and pacing): smaller, for a smoother pace.
PROCESS_APPLY_BATCH = 1000
APPLY_POLL_SECONDS = 1.0
#: With `mail.tracking_ack = "journal"`: once the oldest answered hit still waiting for the writer is this
#: old (or this many are waiting), a new hit's answer waits for its commit instead of its journal flush —
#: so the database (and the engine, scoring and triggers) is never more than about this far behind what was
#: answered (the issue's bound is the scheduler's ≤ 2 s), whatever the load. The pacing below keeps the lag
#: under PACE_STOP_SECONDS; this is the safety net.
LAG_LIMIT_SECONDS = 1.5
BACKLOG_LIMIT = 20_000
#: From this lag on, answers are paced instead: a flushed hit's answer is held, and the held answers are
#: released oldest first at the rate the writer commits (measured over the last PACE_WINDOW) — which keeps the
#: backlog where it is, however lumpy the commits — slowing from PACE_EASE_SECONDS to none at
#: PACE_STOP_SECONDS should the lag still grow. Under a load the writer cannot keep up with, every answer then
#: waits a little (the clients' share of the writer's pace) instead of most waiting for nothing and a few
#: for a whole commit behind a second of backlog — the difference between a p99 of ~30 ms and ~1 s.
PACE_FROM_SECONDS = 0.5
PACE_EASE_SECONDS = 1.0
PACE_STOP_SECONDS = 1.4
PACE_WINDOW = 1.0
PACE_TICK = 0.002
#: Longest pause between retries of a batch of journaled (already answered) hits while the database is
#: unavailable; they are retried until it is back, or replayed from the journal by the next writer.
OUTAGE_RETRY_MAX = 2.0
#: On SQLite, journaled hits are committed in batches that take about this long (sized from the last
#: batches' time per hit, or a quarter of the backlog if more): a commit-waiting request (a page view from
#: the events API) rides in the next one. At least BULK_MIN hits a batch, gathered for up to BULK_LINGER.
BULK_SECONDS = 0.02
#: In a writer process (nothing rides along) batches are sized to take about this long: short enough that
#: the web process's pacing, which follows the acknowledged commits, moves smoothly.
PROCESS_BULK_SECONDS = 0.05
BULK_MIN = 32
BULK_LINGER = 0.005


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
    #: a journaled hit: its segment and sequence number, and when it was flushed (perf_counter)
    segment: str | None = None
    seq: int = 0
    flushed_at: float = 0.0

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

    def __init__(self, ws: Workspace, max_batch: int = MAX_BATCH, linger: float = LINGER_SECONDS, *,
                 deployed: bool = False, on_commit: Callable[[dict[str, int]], None] | None = None) -> None:
        """`deployed`: served by `nurture daemon --http` (`tracking_writer = "auto"` then commits in a writer
        process); `on_commit`: this is that writer process, told each segment's last committed seq."""
        self.ws = ws
        self.on_commit = on_commit
        setting = ws.settings.mail.tracking_writer
        in_process = ws.settings.mail.tracking_ack == "journal" and on_commit is None and (
            setting == "process" or (setting == "auto" and deployed))
        self.max_batch = max_batch
        self.linger = linger
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._bulk: deque[Pending] = deque()  # journaled hits, answered, waiting for their commit
        self._bulk_ready = threading.Event()
        self._bulk_stop = False
        #: commit-waiting requests ride in the journal writer's batches (SQLite with the journal)
        self.merged = ws.settings.mail.tracking_ack == "journal" and ws.engine.dialect.name == "sqlite" \
            and not in_process
        self._per_hit = 0.0  # seconds per journaled hit in the last bulk commits (moving average)
        self._inflight_since = 0.0  # flush time of the oldest hit in the batch being committed (0: none)
        self._messages = MessageCache()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._last_write = 0.0
        self.batches = 0
        self.hits = 0
        mode = ws.settings.mail.tracking_effects
        self.defer = DEFER_EFFECTS.get(ws.engine.dialect.name, False) if mode == "auto" else mode == "deferred"
        self.apply_batch = PROCESS_APPLY_BATCH if on_commit else APPLY_BATCH.get(ws.engine.dialect.name, 250)
        self.applied = 0
        self._apply_wake = threading.Event()
        self._applier: threading.Thread | None = None
        self.ack = ws.settings.mail.tracking_ack
        self.journal_dir = journal_dir(ws.settings.data_dir, ws.engine)
        self._journal: Journal | None = None
        self._backlog = 0  # journaled hits handed to the writer, not yet committed
        self._committed_count = 0  # journaled hits committed (or dropped) by this writer since it started
        self._committed: dict[str, int] = {}  # segment → last committed seq
        self._forget: list[str] = []  # segments removed, whose checkpoint rows go with the next commit
        self._stuck = False  # journaled hits left uncommitted (database unavailable at shutdown)
        self.lags: deque[float] = deque(maxlen=200_000)  # journal flush → commit, seconds
        self._held: deque[asyncio.Future[Any]] = deque()  # flushed answers the pacer releases
        self._pace_wake = threading.Event()
        self._commits: deque[tuple[float, int]] = deque(maxlen=256)  # (perf_counter, _committed_count)
        self.paced = 0  # answers the pacer held
        #: with a writer process: each flush not yet all committed (flush time, segment, last seq, hits), and
        #: the commit-waiting hits over the lag bound (answered when their seq is acknowledged)
        self._flights: deque[tuple[float, str, int, int]] = deque()
        self._late: deque[Pending] = deque()
        self._process: WriterProcess | None = None
        #: in a writer process with deferred effects: committed batches (newest activity id, segment seqs)
        #: acknowledged once their effects are applied
        self._unapplied: deque[tuple[int, dict[str, int]]] = deque()
        self.recovered = self._replay_orphans()
        if in_process:
            self._process = WriterProcess(ws.settings, self.journal_dir, target=serve_writer_process,
                                          acked=self.acked, live_segments=self.live_segments)
        elif self.defer:  # at once: rows a crashed process left pending are applied without waiting for a hit
            self._applier = threading.Thread(target=self._apply_run, name="nurture-hit-applier", daemon=True)
            self._applier.start()

    async def record(self, data: TokenData, kind: str, hit: Hit, now: datetime) -> int | None:
        """Record an open or click; returns once it is durable: with `tracking_ack = "journal"` after its
        journal flush (None: the activity id comes with the commit just after), otherwise after its
        commit (the activity id, or None if nothing was stored)."""
        loop = asyncio.get_running_loop()
        if self.ack == "journal" and not self._behind():
            answer: asyncio.Future[Any] = loop.create_future()
            journal = self._journal or self._open_journal()

            def make(segment: str, seq: int) -> tuple[bytes, tuple[Pending, asyncio.Future[Any]]]:
                p = Pending(data, kind, hit, now, segment=segment, seq=seq)
                return encode(seq, data, hit.user_agent, hit.ip, hit.method, now), (p, answer)

            journal.append(make)
            await answer
            return None
        pending = Pending(data, kind, hit, now, loop=loop, future=loop.create_future())
        if self.ack == "journal":  # over the backlog: through the journal all the same, answered at commit
            journal = self._journal or self._open_journal()

            def make_late(segment: str, seq: int) -> tuple[bytes, tuple[Pending, None]]:
                pending.segment, pending.seq = segment, seq
                return encode(seq, data, hit.user_agent, hit.ip, hit.method, now), (pending, None)

            journal.append(make_late)
        else:
            self.submit(pending)
        assert pending.future is not None
        result: int | None = await pending.future
        return result

    def _behind(self) -> bool:
        """The writer is as far behind the journal as an answer may run ahead (LAG_LIMIT_SECONDS)."""
        return self._backlog >= BACKLOG_LIMIT or self._lag() > LAG_LIMIT_SECONDS

    def _lag(self) -> float:
        """Age of the oldest answered hit not yet committed (in the batch being committed, else queued; with
        a writer process, in the oldest flush not yet acknowledged)."""
        if self._process is not None:
            try:
                return time.perf_counter() - self._flights[0][0]
            except IndexError:
                return 0.0
        oldest = self._inflight_since
        if not oldest:
            try:
                oldest = self._bulk[0].flushed_at
            except IndexError:
                return 0.0
        return time.perf_counter() - oldest

    def _commit_rate(self) -> float:
        """Journaled hits committed per second over about the last PACE_WINDOW."""
        commits = list(self._commits)
        if len(commits) < 2:
            return 1 / self._per_hit if self._per_hit else 0.0
        end_t, end_n = commits[-1]
        start_t, start_n = next(((t, n) for t, n in commits if end_t - t <= PACE_WINDOW), commits[-2])
        if end_t <= start_t:
            return 1 / self._per_hit if self._per_hit else 0.0
        return (end_n - start_n) / (end_t - start_t)

    def _pace_run(self) -> None:
        """The pacer thread: while answers are held, release them at the writer's pace (see
        PACE_FROM_SECONDS); all of them once the lag is back under it, or at shutdown."""
        credit = 0.0
        while True:
            self._pace_wake.wait()
            self._pace_wake.clear()
            last = time.perf_counter()
            while self._held:
                time.sleep(PACE_TICK)
                now = time.perf_counter()
                lag = self._lag()
                if lag <= PACE_FROM_SECONDS or self._closed:
                    n = len(self._held)
                else:  # the writer's pace, easing off should the lag keep growing
                    room = (PACE_STOP_SECONDS - lag) / (PACE_STOP_SECONDS - PACE_EASE_SECONDS)
                    credit += self._commit_rate() * min(1.0, max(0.0, room)) * (now - last)
                    n, credit = int(credit), credit - int(credit)
                last = now
                if n:
                    with self._lock:
                        released = [self._held.popleft() for _ in range(min(n, len(self._held)))]
                    _answer(released)
            credit = 0.0
            if self._closed:
                return

    def wait_committed(self, timeout: float = 60.0) -> bool:
        """Wait until every hit answered from the journal so far is committed (tests, tools, shutdown
        hooks); False on timeout."""
        journal = self._journal
        target = journal.appended if journal is not None else 0
        deadline = time.monotonic() + timeout  # clock-ok: a real-time bound
        while journal is not None and self._committed_count < target:
            if time.monotonic() > deadline:  # clock-ok
                return False
            time.sleep(0.005)
        return True

    def _open_journal(self) -> Journal:
        with self._lock:
            if self._closed:
                raise NurtureError("tracking writer is shut down")
            if self._journal is None:
                self._journal = Journal(self.journal_dir, fsync=self.ws.settings.mail.tracking_journal_fsync,
                                        flushed=self._flushed)
            return self._journal

    def _flushed(self, items: list[tuple[Pending, asyncio.Future[Any] | None]], lines: bytes, segment: str) -> None:
        """On the journal's flusher thread, in sequence order: answer the requests (one wake-up per event
        loop) and hand the hits to the database writer (its thread, or its process: the lines)."""
        at = time.perf_counter()
        answers = []
        for p, answer in items:
            p.flushed_at = at
            if answer is not None:
                answers.append(answer)
        # behind the pace (or behind answers already held, which must not be overtaken): held for the pacer
        pace = bool(answers) and (bool(self._held) or self._lag() > PACE_FROM_SECONDS)
        if not pace:
            _answer(answers)
        with self._lock:
            self._backlog += len(items)
            self._start_writers()
            if self._process is not None:
                self._flights.append((at, segment, items[-1][0].seq, len(items)))
                self._late.extend(p for p, answer in items if answer is None)
            else:
                self._bulk.extend(p for p, _ in items)
            if pace:
                self._held.extend(answers)
                self.paced += len(answers)
        if pace:
            self._pace_wake.set()
        if self._process is not None:
            self._process.send(segment, lines)
        else:
            self._bulk_ready.set()

    def take(self, entries: list[Entry]) -> None:
        """In the writer process: journaled hits the web process sent, to commit."""
        at = time.perf_counter()
        batch = [_pending(e) for e in entries]
        for p in batch:
            p.flushed_at = at
        with self._lock:
            self._backlog += len(batch)
            self._start_writers()
            self._bulk.extend(batch)
        self._bulk_ready.set()

    def acked(self, seqs: dict[str, int]) -> None:
        """With a writer process (its acknowledgement thread): these segments are committed up to these
        sequence numbers."""
        now = time.perf_counter()
        done: list[Pending] = []
        with self._lock:
            for segment, seq in seqs.items():
                if seq > self._committed.get(segment, 0):
                    self._committed[segment] = seq
            n = 0
            while self._flights and self._committed.get(self._flights[0][1], 0) >= self._flights[0][2]:
                at, _, _, count = self._flights.popleft()
                n += count
                self.lags.append(now - at)
            while self._late and self._committed.get(self._late[0].segment or "", 0) >= self._late[0].seq:
                done.append(self._late.popleft())
            if n:
                self._backlog -= n
                self._committed_count += n
                self._commits.append((now, self._committed_count))
        for p in done:
            p.settle()
        journal = self._journal
        if journal is not None and journal.retired:
            self._retire_committed(journal)

    def live_segments(self) -> list[str]:
        """This process's journal segments not yet removed, oldest first."""
        journal = self._journal
        if journal is None:
            return []
        return [name for name, _, _ in list(journal.retired)] + [journal.segment]

    @property
    def process_pid(self) -> int | None:
        """The writer process's pid, when hits are committed by one (`mail.tracking_writer`)."""
        return self._process.pid if self._process is not None else None

    @property
    def stuck(self) -> bool:
        """Journaled hits were left uncommitted (the database was unavailable at shutdown)."""
        return self._stuck

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
            self._start_writers()
            self._queue.put(pending)
        if self.merged:
            self._bulk_ready.set()

    def _start_writers(self) -> None:
        """Under self._lock: the writer threads, at the first hit. With the journal, one thread commits the
        journaled hits (one: a segment's hits commit in sequence order), in batches of about BULK_SECONDS.
        A commit-waiting request (a page view) never queues behind the journal's backlog: on PostgreSQL it
        has a thread of its own (transactions side by side); on SQLite, where a second writer would only
        wait for the lock — and its many small transactions measured a quarter of the journal writer's
        time spent waiting — it joins the next journal batch (`merged`)."""
        if not self._threads:
            waiting = 0 if self.merged or self.on_commit else WRITERS.get(self.ws.engine.dialect.name, 1)
            targets = [(self._run, f"nurture-hit-writer-{i}") for i in range(waiting)]
            if self.ack == "journal" and self._process is None:
                targets.append((self._run_bulk, "nurture-hit-journal-writer"))
            if self.ack == "journal" and self.on_commit is None:
                targets.append((self._pace_run, "nurture-hit-pacer"))
            for target, name in targets:
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def close(self, timeout: float = 30.0) -> None:
        """Flush the journal, commit what is queued and apply its effects, then stop the threads."""
        with self._lock:
            self._closed = True
            journal = self._journal
        if journal is not None:
            journal.close()  # its last flush queues its hits ahead of the writers' stop marks below
        if self._process is not None:
            final = self._process.stop(timeout)
            self._stuck = bool(final.get("stuck", True))
            self.hits, self.batches = int(final.get("hits", 0)), int(final.get("batches", 0))
            with self._lock:
                late, self._late = list(self._late), deque()
            for p in late:
                p.error = NurtureError("tracking writer stopped: the database is unavailable")
                p.settle()
        with self._lock:
            threads = list(self._threads)
            for thread in threads:
                if thread.name.startswith("nurture-hit-writer-"):
                    self._queue.put(None)
            self._bulk_stop = True
            self._bulk_ready.set()
            self._pace_wake.set()
        for thread in threads:
            thread.join(timeout)
        if journal is not None:
            self._retire_committed(journal, final=not self._stuck)
        if self._applier is not None:
            self._apply_wake.set()
            self._applier.join(timeout)
        if threads:
            lags = sorted(self.lags)
            log.info("tracking writer closed" if self.on_commit is None else "tracking writer process closed", extra={
                "hits": self.hits, "batches": self.batches, "mean_batch": round(self.hits / max(1, self.batches), 1),
                "journal_flushes": journal.flushes if journal else 0, "answers_paced": self.paced,
                "lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1) if lags else None,
                "lag_max_ms": round(lags[-1] * 1000, 1) if lags else None})

    def _retire_committed(self, journal: Journal, *, final: bool = False) -> None:
        """Remove the journal segments whose hits are all committed (the current one too when `final`)."""
        for item in list(journal.retired):
            name, last, fd = item
            if self._committed.get(name, 0) >= last:
                journal.retired.remove(item)
                journal.release(name, fd)
                self._forget.append(name)
                if self._process is not None:
                    self._process.retired(name)
        if final or (self._process is not None and self._forget):  # no commit here to take the rows along
            with write_tx(self.ws.engine) as conn:
                for name in self._forget:
                    forget(conn, name)
            self._forget.clear()
        if final:
            name = journal.finish()
            with write_tx(self.ws.engine) as conn:
                forget(conn, name)

    def _replay_orphans(self) -> int:
        """Commit the journaled hits that a process which is gone (crashed, killed) answered but did not
        commit, then remove its segments. Returns how many hits were committed."""
        replayed = 0
        for name, fd in orphans(self.journal_dir):
            try:
                with self.ws.engine.connect() as conn:
                    after = journal_checkpoint(conn, name)
                entries = read_entries(fd, name, after)
                for i in range(0, len(entries), self.max_batch):
                    batch = [_pending(e) for e in entries[i:i + self.max_batch]]
                    self._commit(batch, patient=False)
                    replayed += len(batch)
                with write_tx(self.ws.engine) as conn:
                    forget(conn, name)
                (self.journal_dir / name).unlink(missing_ok=True)
            finally:
                os.close(fd)
            if entries:
                log.info("tracking journal replayed", extra={"segment": name, "hits": len(entries)})
        return replayed

    def _run(self) -> None:
        """Commit-waiting requests (events API, `tracking_ack = "commit"`, `record_sync`), in batches
        gathered over a short linger."""
        while True:
            first = self._queue.get()
            if first is None or (isinstance(first, Pending) and self._commit_waiting(first)):
                return

    def _run_bulk(self) -> None:
        """Journaled hits (already answered), oldest first, up to MAX_BATCH a transaction; when `merged`
        with the commit-waiting requests queued meanwhile, in batches sized to take about BULK_SECONDS
        (or a quarter of the backlog, if more)."""
        while True:
            self._bulk_ready.wait()
            self._bulk_ready.clear()
            while self._bulk or (self.merged and not self._queue.empty()):
                stop = self._bulk_stop
                if len(self._bulk) < BULK_MIN and not stop and self._queue.empty() and self._bulk and \
                        time.perf_counter() - self._bulk[0].flushed_at < BULK_LINGER:
                    self._bulk_ready.wait(BULK_LINGER)  # a little more company for a small batch
                    self._bulk_ready.clear()
                waiting: list[Pending] = []
                while self.merged:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        waiting.append(item)
                limit = self.max_batch
                budget = BULK_SECONDS if self.merged else PROCESS_BULK_SECONDS if self.on_commit else 0.0
                if budget and not stop:  # page views ride in the next batch, or the pacing follows the
                    # commits: keep batches short, but never so short that the writer falls behind (a quarter
                    # of the backlog at least)
                    per_hit = self._per_hit or 0.0002
                    limit = min(self.max_batch, max(BULK_MIN, int(budget / per_hit), len(self._bulk) // 4))
                with self._lock:
                    journaled = [self._bulk.popleft() for _ in range(min(limit, len(self._bulk)))]
                    self._inflight_since = journaled[0].flushed_at if journaled else 0.0
                batch = waiting + journaled
                t0 = time.perf_counter()
                self._commit(batch)
                self._inflight_since = 0.0
                took = (time.perf_counter() - t0) / len(batch)
                self._per_hit = 0.7 * (self._per_hit or took) + 0.3 * took
            if self._bulk_stop and not self._bulk and (not self.merged or self._queue.empty()):
                return

    def _commit_waiting(self, first: Pending) -> bool:
        """One batch of commit-waiting requests, gathered over the linger; True when a stop mark came."""
        stop = False
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
            assert isinstance(item, Pending)
            batch.append(item)
        t0 = time.monotonic()  # clock-ok
        self._commit(batch)
        self._last_write = time.monotonic() - t0  # clock-ok
        return stop

    def _commit(self, batch: list[Pending], *, patient: bool = True) -> None:
        answered = any(p.segment for p in batch)
        if answered and self._stuck:  # behind hits left in the journal: these stay there too, in order
            for p in batch:
                p.error = NurtureError("tracking writer stopped: the database is unavailable")
                p.settle()
            return
        delay = 0.05
        attempt = 0
        while True:
            attempt += 1
            try:
                self._write(batch)
                break
            except Exception as exc:  # retried, then isolated per hit below
                if answered and _unavailable(exc):
                    # answered hits: never dropped for an outage — retried until the database is back,
                    # or left in the journal for the next writer (at shutdown, or in a replay at start)
                    if (self._closed or not patient) and attempt > 3:
                        self._stuck = True
                        log.error("tracking hits left in the journal", extra={"hits": len(batch),
                                                                              "error": str(exc)})
                        if not patient:
                            raise
                        for p in batch:
                            p.error = exc
                            p.settle()
                        return
                    log.warning("database unavailable, retrying tracking batch",
                                extra={"hits": len(batch), "error": str(exc)})
                    time.sleep(delay)
                    delay = min(OUTAGE_RETRY_MAX, delay * 2)
                    continue
                if attempt == 1:
                    log.warning("tracking batch failed, retrying", extra={"hits": len(batch), "error": str(exc)})
                    continue
                if len(batch) == 1:
                    log.error("tracking hit not recorded", extra={"error": str(exc), "seq": batch[0].seq})
                    batch[0].error = exc
                else:
                    for one in batch:
                        one.error = None
                        self._commit([one], patient=patient)
                    return
                break
        done = time.perf_counter()
        journaled = 0
        for p in batch:
            if p.segment is not None:
                journaled += 1
                if p.seq > self._committed.get(p.segment, 0):
                    self._committed[p.segment] = p.seq
                if p.flushed_at:
                    self.lags.append(done - p.flushed_at)
                if p.error is not None and p.future is None:
                    log.warning("tracking hit dropped", extra={"seq": p.seq, "lead_id": p.data and p.data.lead_id,
                                                               "error": str(p.error)})
        with self._lock:
            self.batches += 1
            self.hits += len(batch)
            flushed = sum(1 for p in batch if p.flushed_at)
            self._backlog -= flushed
            self._committed_count += flushed
            if flushed:
                self._commits.append((done, self._committed_count))
        if journaled and self.on_commit is not None:
            seqs = {p.segment: self._committed[p.segment] for p in batch if p.segment is not None}
            if self.defer:  # acknowledged once applied: the web process's lag is the engine's
                newest = max((p.result for p in batch if isinstance(p.result, int)), default=0)
                with self._lock:
                    self._unapplied.append((newest, seqs))
            else:
                self.on_commit(seqs)
        for p in batch:
            p.settle()
        if journaled and self._journal is not None and self._journal.retired:
            self._retire_committed(self._journal)
        if self.defer:
            self._apply_wake.set()

    def _apply_run(self) -> None:
        """The applier thread: after each commit of this process's writer (or every APPLY_POLL_SECONDS),
        apply pending effects until none are left; when closed, finish them and stop."""
        while True:
            self._apply_wake.wait(APPLY_POLL_SECONDS)
            self._apply_wake.clear()
            closing = self._closed
            while True:
                # closing: wait for another applier at work (the scheduler's) rather than stop at "busy"
                n = self._apply_some(self.apply_batch, wait=closing)
                self._ack_applied()
                if n < self.apply_batch:
                    break
            if closing:
                return

    def _ack_applied(self) -> None:
        """In a writer process with deferred effects: acknowledge the committed batches whose activities are
        all applied (pending rows are applied oldest first, by any process's applier)."""
        if self.on_commit is None or not self._unapplied:
            return
        candidates = len(self._unapplied)  # committed before the look below, so visible to it
        with self.ws.engine.connect() as conn:
            oldest = conn.execute(select(func.min(activity_pending.c.activity_id))).scalar()
        seqs: dict[str, int] = {}
        with self._lock:
            while candidates and self._unapplied and (oldest is None or self._unapplied[0][0] < oldest):
                seqs.update(self._unapplied.popleft()[1])
                candidates -= 1
        if seqs:
            self.on_commit(seqs)

    def _apply_some(self, limit: int, *, wait: bool = False) -> int:
        """One applier transaction; a failing batch is retried one activity at a time, and an activity whose
        effects fail alone is unlisted (logged with its id: the row itself stays recorded)."""
        try:
            with write_tx(self.ws.engine) as conn:
                n = apply_pending(conn, self.ws.clock.now(), self.ws.settings, limit, wait=wait)
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
            msgs = self._messages.lookup(conn, {p.data.message_ref for p in hits if p.data is not None})
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
                if data.kind == "visit":  # a website page view: the lead's, not the message's engagement
                    reason = bot_reason(hit.user_agent, None, p.now, window_seconds=0, method=hit.method)
                    seen: dict[str, Any] = {"ua": (hit.user_agent or "")[:300], "ip": hit.ip, "source": "beacon"}
                    if reason:
                        seen["bot_reason"] = reason
                    events.append(ActivityEvent(data.lead_id, "page_view", p.now, url=data.url[:2048],
                                                bot=reason is not None, meta=seen))
                    owners.append((p, -1))
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
            seqs: dict[str, int] = {}
            forgotten = 0
            for p in batch:
                if p.segment is not None and p.seq > seqs.get(p.segment, 0):
                    seqs[p.segment] = p.seq
            if seqs:
                store_checkpoints(conn, seqs)
                for name in self._forget:
                    forget(conn, name)
                forgotten = len(self._forget)
            if events:
                now = max(max(p.now for p, _ in owners), self.ws.clock.now())
                ids = record_events(conn, events, now, settings, defer_effects=self.defer)
                at = 0
                for p, n in owners:
                    if n < 0:
                        p.result, at = ids[at], at + 1
                    else:
                        p.result, at = ids[at:at + n], at + n
        del self._forget[:forgotten]  # committed


def serve_writer_process(settings: Settings, conn: Pipe) -> None:
    """The writer process (`writer_process.py`): commit the journaled hits the web process sends, and
    acknowledge each segment's last committed seq, until it says stop (or goes away)."""
    # the web process decides when this one stops (Ctrl-C and a service manager signal every process of
    # the service); it waits for "ready" before it serves
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    send_lock = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with send_lock:
            conn.send(message)

    send(("ready", None))
    configure_logging()
    ws = Workspace.open(settings, check_schema=False)

    writer = HitWriter(ws, on_commit=lambda seqs: send(("ack", seqs)))
    seen: dict[str, int] = {}  # segment → last sequence number taken
    locks: dict[str, int] = {}  # segment → fd holding a shared lock on it
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            os._exit(0)  # the web process is gone: the next writer replays its segments once we are gone too
        if message == STOP:
            break
        name, _, lines = message[1:].partition(b"\n")
        segment = name.decode()
        if message[:1] == SEGMENT_RETIRED:
            if segment in locks:
                os.close(locks.pop(segment))
            seen.pop(segment, None)
            continue
        after = seen.get(segment)
        if after is None:
            fd = share_lock(writer.journal_dir / segment)
            if fd is None:  # removed meanwhile: all of it was committed
                continue
            locks[segment] = fd
            with ws.engine.connect() as db:
                after = journal_checkpoint(db, segment)
            if after:
                send(("ack", {segment: after}))
        entries = [e for line in lines.splitlines()
                   if (e := journal_decode(segment, line)) is not None and e.seq > after]
        seen[segment] = entries[-1].seq if entries else after
        if entries:
            writer.take(entries)
    writer.close()
    send(("bye", {"stuck": writer.stuck, "hits": writer.hits, "batches": writer.batches}))


def _answer(futures: list[asyncio.Future[Any]]) -> None:
    """From a writer thread: answer journaled requests, one wake-up per event loop."""
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Any]]] = {}
    for fut in futures:
        loops.setdefault(fut.get_loop(), []).append(fut)
    for loop, some in loops.items():
        # a closed loop: its requests are gone, and their hits are journaled all the same
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(resolve_all, some)


def _pending(entry: Entry) -> Pending:
    kind = "page_view" if entry.data.kind == "visit" else entry.data.kind
    return Pending(entry.data, kind, Hit(entry.user_agent, entry.ip, entry.method), entry.now,
                   segment=entry.segment, seq=entry.seq)


def _unavailable(exc: BaseException) -> bool:
    """The database could not be reached or stayed busy (worth waiting for), as opposed to a bad hit."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class MessageCache:
    """The outbox rows (plus enrollment version) hits refer to, by message ref. Opens and clicks come back
    to the same recent messages again and again, and what a hit needs of a message that has left the
    dispatcher (`status` not queued / sending: ids, sequence, step, template, `sent_at`) does not change,
    so those rows are kept (the most recent `size`) and only the others are queried, one query per 500."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._rows: dict[str, dict[str, Any]] = {}

    def lookup(self, conn: Connection, refs: set[str]) -> dict[str, dict[str, Any]]:
        out = {ref: row for ref in refs if (row := self._rows.get(ref)) is not None}
        missing = sorted(refs - out.keys())
        for i in range(0, len(missing), 500):
            rows = conn.execute(
                select(outbox.c.id, outbox.c.lead_id, outbox.c.sequence_id, outbox.c.node_id, outbox.c.template_id,
                       outbox.c.status, outbox.c.sent_at, outbox.c.message_ref, enrollment.c.version_id)
                .select_from(outbox.outerjoin(enrollment, enrollment.c.id == outbox.c.enrollment_id))
                .where(outbox.c.message_ref.in_(missing[i:i + 500]))
            ).mappings()
            for found in rows:
                kept = out[found["message_ref"]] = dict(found)
                if kept["status"] not in ("queued", "sending"):
                    self._rows[kept["message_ref"]] = kept
        while len(self._rows) > self.size:  # oldest first (dicts keep insertion order)
            del self._rows[next(iter(self._rows))]
        return out
