"""Outbox → SMTP relay: claim due rows, re-check suppression, finalise each message for transport
(`compose.finalize`: signed tracking tokens, tracked links, open pixel, compliance footer and headers, as
of the send time and the current settings), send through a pooled, rate-limited transport, and record
each outcome.

Outcomes:
- 2xx → `sent` (sent_at set; the 'sent' activity was written by the engine when it queued the row).
- 4xx or connection trouble → back to `queued` with exponential backoff
  (`retry_base_seconds * 2**(attempts-1)`, capped at 6 h); after `max_attempts` → `failed`.
  When the relay cannot be reached at all (connection refused/timeout, 421), the rest of the pass is
  `deferred`: requeued after `retry_base_seconds` without counting an attempt, so an outage of the
  relay does not use up every queued message's attempts.
- 5xx for the recipient or message → `bounced`: a `bounce` suppression, `lead.bounced`, and a `bounce`
  activity through `engine.events.record_events`.
- 5xx for our envelope sender → `failed` (our configuration, not the lead's address).
- suppressed by the time of sending (unsubscribed, bounced elsewhere) → `suppressed`, nothing sent.

Idempotency and the one at-least-once window: a claim moves rows to `sending` with a lease
(`next_try_at = now + send_lease_seconds`) in its own committed transaction, and each outcome is
committed within at most `_FLUSH_EVERY` messages of the SMTP server's reply. The lease is real time
(`send_lease_seconds` of wall clock, however fast a demo's virtual clock runs), so a message that is
still on the wire is never claimed a second time. A message whose `sent`
status is committed is never sent again (restarts only claim `queued` rows and `sending` rows whose
lease expired). The window: if the process dies after the relay accepted a message (250 to DATA) but
before that outcome was committed, the row's lease expires and it is sent once more. The Message-ID is
derived from the idempotency key, so the duplicate carries the same Message-ID (receivers and relays that
de-duplicate on it drop it).

Crash recovery (issue 20 item 8): each claim marks its rows with the dispatcher's holder (`claimed_by`:
host, pid, boot id, process start — engine/lease.py). Each pass first looks at the rows other dispatchers
left `sending`: when their process is dead on this host (same boot), nothing can still be on the wire for
them, so they are made due at once and re-sent with the same Message-ID, instead of waiting out
`send_lease_seconds`. Rows of a process on another host wait for the lease to expire, as before.

Recording outcomes is never skipped: a failed recording transaction (a lock timeout, a dropped
connection, a serialisation failure) is retried with backoff until it commits or the process dies, while
the sending threads carry on. Abandoning it would leave delivered rows in `sending`, to be sent again
when their lease expires. The recording only touches rows still `sending`, so a retry after a commit
whose success was not reported records nothing twice (no second `sent`, bounce activity or suppression).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

from dkim import DKIMException
from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..activity import ActivityEvent
from ..clock import clock_span
from ..engine.events import record_events
from ..engine.lease import holder_is_dead, make_holder
from ..store.engine import write_tx
from ..store.tables import outbox
from ..workspace import Workspace
from .compose import Composer, finalize
from .dkimsign import signer_for
from .dnscheck import warn_in_background
from .dsn import verp
from .message import build_message
from .ratelimit import RateLimiter
from .smtp import SendOutcome, SmtpPool, parse_smtp_url
from .suppression import suppress, suppressed_ids
from .templates import one_line

_FLUSH_EVERY = 25
_RECORD_RETRY_FIRST = 0.05  # seconds before the first retry of a failed outcome recording, doubling …
_RECORD_RETRY_MAX = 2.0  # … up to this
log = logging.getLogger("nurture.mail")
_MAX_BACKOFF = timedelta(hours=6)
_CLAIM_COLUMNS = ("id", "lead_id", "category", "to_email", "subject", "html", "text", "headers", "attempts",
                  "message_id", "message_ref", "sequence_id", "node_id", "template_id", "enrollment_id")


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    deferred: int = 0  # not attempted (relay unreachable, or the dispatcher stopping): no attempt counted

    def add(self, other: DispatchResult) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Delay before retry number `attempts` (1-based): base, 2×base, 4×base … capped at 6 h."""
    return min(timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1)), _MAX_BACKOFF)


class Dispatcher:
    """One per workspace and process: owns the SMTP pool, the rate limiter and the sending threads."""

    def __init__(self, ws: Workspace, *, max_connections: int | None = None, rate_per_second: float | None = None,
                 rate_per_hour: float | None = None, burst: float | None = None) -> None:
        self.ws = ws
        self.mail = ws.settings.mail
        self.connections = max(1, max_connections or self.mail.max_connections)
        self.pool = SmtpPool(parse_smtp_url(self.mail.smtp_url), self.connections)
        self.limiter = RateLimiter(rate_per_second or self.mail.rate_per_second,
                                   rate_per_hour or self.mail.rate_per_hour, burst=burst)
        self.executor = ThreadPoolExecutor(self.connections, thread_name_prefix="smtp")
        self.stopping = threading.Event()
        self.relay_down = threading.Event()  # set for the rest of a pass once the relay cannot be reached
        self.envelope_from = one_line(self.mail.from_email)
        self.domain = self.envelope_from.rsplit("@", 1)[-1] or "localhost"
        self.default_from = formataddr((one_line(self.mail.from_name), self.envelope_from))
        self._lock = threading.Lock()  # one dispatch pass at a time per dispatcher
        self.holder = make_holder("dispatch")  # written to claimed_by: who has these rows on the wire
        self.recovered = 0  # rows of dead dispatchers made due again (for logs and tests)
        self.dkim = signer_for(self.mail)  # a DKIM key that cannot be read fails here, once, not per message
        warn_in_background(self.mail, self.dkim)  # SPF/DKIM/DMARC alignment: logged warnings, never blocks

    # -- public ----------------------------------------------------------------------------------

    def dispatch_due(self, limit: int | None = None, max_seconds: float | None = 10.0) -> DispatchResult:
        """Send up to `limit` due messages (default: one `dispatch_batch`); returns the tallies.

        The next batch is claimed while the current one is on the wire, so the sending threads (and the
        rate limiter) never wait for the database between batches. No new batch is claimed after
        `max_seconds` (None = no bound), so a scheduler job stays short even under a low rate limit; a
        batch is at most ~5 s of sending at `rate_per_second`."""
        limit = limit or self.mail.dispatch_batch
        batch_size = max(1, min(self.mail.dispatch_batch, int(self.limiter.second.rate * 5)))
        total = DispatchResult()
        started = time.monotonic()  # clock-ok: a run-time budget, not domain time

        def claim_next() -> list[dict[str, Any]]:
            while total.claimed < limit and not self.stopping.is_set() and not self.relay_down.is_set():
                if max_seconds is not None and time.monotonic() - started > max_seconds:  # clock-ok
                    return []
                rows, suppressed = self._claim(min(batch_size, limit - total.claimed))
                total.claimed += len(rows) + suppressed
                total.suppressed += suppressed
                if rows or not suppressed:
                    return rows
            return []

        with self._lock:
            self.relay_down.clear()
            self._recover_dead_claims()
            batch = claim_next()
            while batch:
                # tokens are signed now, at send time: they expire token_ttl_days after this pass
                comp = Composer(self.mail, self.ws.clock.now())
                futures = {self.executor.submit(self._send_one, row, comp): row for row in batch}
                batch = claim_next()
                total.add(self._collect(futures))
        return total

    def close(self) -> None:
        self.stopping.set()
        self.executor.shutdown(wait=True)
        self.pool.close()

    # -- claim -----------------------------------------------------------------------------------

    def _recover_dead_claims(self) -> int:
        """Make the `sending` rows of a dispatcher process that died on this host due now (see the module
        doc). The rows stay `sending`, so the ordinary claim below takes them, exactly once."""
        now = self.ws.clock.now()
        o = outbox.c
        with self.ws.engine.connect() as conn:
            holders = [h for h in conn.execute(
                select(o.claimed_by).where(o.status == "sending", o.next_try_at > now, o.claimed_by.is_not(None),
                                           o.claimed_by != self.holder).distinct()
            ).scalars() if holder_is_dead(h)]
        total = 0
        for dead in holders:
            with write_tx(self.ws.engine) as conn:
                n = conn.execute(update(outbox).where(o.status == "sending", o.claimed_by == dead)
                                 .values(next_try_at=now)).rowcount
            if n:
                log.warning("re-sending %d messages a dead dispatcher left on the wire", n,
                            extra={"dead": dead})
            total += n
        self.recovered += total
        return total

    def _claim(self, n: int) -> tuple[list[dict[str, Any]], int]:
        now = self.ws.clock.now()
        o = outbox.c
        due = or_(
            and_(o.status == "queued", or_(o.next_try_at.is_(None), o.next_try_at <= now)),
            and_(o.status == "sending", o.next_try_at <= now),  # lease expired: the previous run died
        )
        pick = (select(o.id).where(due).order_by(o.next_try_at, o.id).limit(n)
                .with_for_update(skip_locked=True))
        # the lease guards against this process dying: real seconds, stretched onto a virtual clock
        lease = now + clock_span(self.ws.clock, timedelta(seconds=self.mail.send_lease_seconds))
        with write_tx(self.ws.engine) as conn:
            claimed = [dict(r) for r in conn.execute(
                update(outbox).where(o.id.in_(pick))
                .values(status="sending", attempts=o.attempts + 1, next_try_at=lease, claimed_by=self.holder)
                .returning(*[o[c] for c in _CLAIM_COLUMNS])
            ).mappings()]
            blocked: set[int] = set()
            for category in {r["category"] for r in claimed}:
                lead_ids = [r["lead_id"] for r in claimed if r["category"] == category]
                hit = suppressed_ids(conn, lead_ids, category, self.ws.settings.compliance.required())
                blocked |= {r["id"] for r in claimed if r["category"] == category and r["lead_id"] in hit}
            if blocked:
                conn.execute(update(outbox).where(o.id.in_(sorted(blocked))).values(
                    status="suppressed", next_try_at=None, last_error="suppressed at send time"))
        return [r for r in claimed if r["id"] not in blocked], len(blocked)

    # -- send ------------------------------------------------------------------------------------

    def _send_one(self, row: Mapping[str, Any], comp: Composer) -> tuple[SendOutcome, datetime]:
        if self.relay_down.is_set():
            return SendOutcome("defer", None, "relay unreachable; not attempted"), self.ws.clock.now()
        if not self.limiter.acquire(self.stopping):
            return SendOutcome("defer", None, "dispatcher stopped before sending"), self.ws.clock.now()
        if not row["message_id"]:  # rows queued outside compose (e.g. the engine's rep notifications)
            row = {**row, "message_id": f"<outbox.{row['id']}@{self.domain}>"}
        try:
            data = build_message({**row, **finalize(row, comp)}, self.ws.clock.now(), default_from=self.default_from)
            if self.dkim is not None:
                data = self.dkim.sign(data)
        except (ValueError, TypeError, DKIMException) as exc:  # e.g. a header value the email package refuses
            return SendOutcome("fail", None, f"cannot build message: {exc}"), self.ws.clock.now()
        outcome = self.pool.send(verp(self.mail, row.get("message_ref")) or self.envelope_from, row["to_email"], data)
        if outcome.status == "temp" and outcome.code in (None, 421):
            # the relay is down or refusing service: don't burn the other messages' attempts on it
            self.relay_down.set()
        return outcome, self.ws.clock.now()

    def _collect(self, futures: dict[Future[tuple[SendOutcome, datetime]], dict[str, Any]]) -> DispatchResult:
        """Record outcomes as they arrive, committing every `_FLUSH_EVERY` messages."""
        result = DispatchResult()
        pending: list[tuple[dict[str, Any], SendOutcome, datetime]] = []
        for fut in as_completed(futures):
            outcome, at = fut.result()
            pending.append((futures[fut], outcome, at))
            if len(pending) >= _FLUSH_EVERY:
                result.add(self._record_until_done(pending))
                pending = []
        if pending:
            result.add(self._record_until_done(pending))
        return result

    def _record_until_done(self, results: list[tuple[dict[str, Any], SendOutcome, datetime]]) -> DispatchResult:
        """`_record`, retried until it commits: outcomes of messages on the wire are never dropped.

        Database errors (locks, lost connections) are retried with backoff for as long as it takes; any
        other exception is a bug, not a transient condition, and propagates."""
        delay = _RECORD_RETRY_FIRST
        failures = 0
        while True:
            try:
                res = self._record(results)
            except (SQLAlchemyError, OSError) as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("recording %d send outcomes failed (attempt %d, retrying): %s",
                                len(results), failures, one_line(str(exc))[:300])
                time.sleep(delay)  # clock-ok: real backoff between database attempts
                delay = min(delay * 2, _RECORD_RETRY_MAX)
                continue
            if failures:
                log.warning("recorded %d send outcomes after %d failed attempts", len(results), failures)
            return res

    # -- record ----------------------------------------------------------------------------------

    def _record(self, results: list[tuple[dict[str, Any], SendOutcome, datetime]]) -> DispatchResult:
        now = self.ws.clock.now()
        res = DispatchResult()
        updates: list[dict[str, Any]] = []
        bounces: list[tuple[dict[str, Any], SendOutcome]] = []
        for row, outcome, at in results:
            err = None if outcome.status == "sent" else _error(outcome)
            upd = {"oid": row["id"], "st": "failed", "nt": None, "err": err, "sat": None, "att": row["attempts"]}
            if outcome.status == "sent":
                res.sent += 1
                upd.update(st="sent", sat=at)
            elif outcome.status == "defer":
                res.deferred += 1
                upd.update(st="queued", nt=now + timedelta(seconds=self.mail.retry_base_seconds),
                           att=row["attempts"] - 1)  # the claim counted an attempt that never happened
            elif outcome.status == "temp" and row["attempts"] < self.mail.max_attempts:
                res.retried += 1
                upd.update(st="queued", nt=now + backoff(row["attempts"], self.mail.retry_base_seconds))
            elif outcome.status == "bounce":
                res.bounced += 1
                bounces.append((row, outcome))
                upd.update(st="bounced")
            else:
                res.failed += 1
            updates.append(upd)
        with write_tx(self.ws.engine) as conn:
            # only rows still `sending`: a retry after a commit that was not reported changes nothing
            ids = [u["oid"] for u in updates]
            open_ids = set(conn.execute(
                select(outbox.c.id).where(outbox.c.id.in_(ids), outbox.c.status == "sending").with_for_update()
            ).scalars())
            updates = [u for u in updates if u["oid"] in open_ids]
            bounces = [b for b in bounces if b[0]["id"] in open_ids]
            if updates:
                conn.execute(
                    update(outbox).where(outbox.c.id == bindparam("oid"), outbox.c.status == "sending")
                    .values(status=bindparam("st"), next_try_at=bindparam("nt"), last_error=bindparam("err"),
                            sent_at=bindparam("sat"), attempts=bindparam("att")),
                    updates,
                )
            if bounces:
                self._record_bounces(conn, bounces, now)
        return res

    def _record_bounces(self, conn: Any, bounces: list[tuple[dict[str, Any], SendOutcome]], now: datetime) -> None:
        for row, outcome in bounces:
            suppress(conn, email=row["to_email"], lead_id=row["lead_id"], reason="bounce", detail=_error(outcome),
                     now=now)
        record_events(conn, [
            ActivityEvent(row["lead_id"], "bounce", now, sequence_id=row["sequence_id"], node_id=row["node_id"],
                          template_id=row["template_id"], outbox_id=row["id"],
                          meta={"code": outcome.code, "detail": outcome.detail[:500]})
            for row, outcome in bounces
        ], now, self.ws.settings)


def _error(outcome: SendOutcome) -> str:
    code = f"{outcome.code} " if outcome.code else ""
    return one_line(f"{code}{outcome.detail}")[:1000]


# -- one dispatcher per workspace (the scheduler hook calls dispatch_due(ws, limit) every few seconds) --

_DISPATCHERS: dict[int, Dispatcher] = {}
_REGISTRY_LOCK = threading.Lock()


def get_dispatcher(ws: Workspace) -> Dispatcher:
    stale = None
    with _REGISTRY_LOCK:
        d = _DISPATCHERS.get(id(ws))
        if d is None or d.ws is not ws:  # (a dead workspace's id can be reused)
            stale = d
            d = _DISPATCHERS[id(ws)] = Dispatcher(ws)
    if stale is not None:
        stale.close()
    return d


def _forget(key: int) -> None:
    with _REGISTRY_LOCK:
        d = _DISPATCHERS.pop(key, None)
    if d is not None:
        d.close()


def close_dispatcher(ws: Workspace) -> None:
    """Stop the workspace's dispatcher (threads, SMTP connections); the next dispatch_due makes a new one."""
    _forget(id(ws))


def dispatch_due(ws: Workspace, limit: int | None = None) -> DispatchResult:
    """The scheduler hook: send due outbox rows for this workspace."""
    return get_dispatcher(ws).dispatch_due(limit)
