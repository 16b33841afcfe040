"""Apply bounces and complaints that arrive after sending — DSNs and ARF reports from a bounce mailbox
(`mail.dsn`, `mail.bouncebox`), ESP webhook events (`mail.esp_events`) — to the store.

Per item, in one transaction per batch:
- **match** it to the message we sent: the original Message-ID (our `<message_ref@domain>`), else the
  latest message sent to the recipient address, else the lead with that address (no message); nothing
  matches → `unmatched`, logged;
- **hard bounce** → `bounce` suppression (the lead gets `bounced`, `bounced_at`, `bounce_reason`), the
  message becomes `bounced` (so reports count it) and a `bounce` activity is recorded on it;
- **soft bounce** → the message becomes `failed` with a `4xx soft bounce (STATUS): …` error (reports count
  it as a soft bounce); `mail.soft_bounce_limit` soft bounces of one lead within
  `mail.soft_bounce_window_days` suppress the address like a hard bounce;
- **complaint** → the lead opts out of all marketing, a `complaint` suppression (reports count it), and an
  `unsubscribe` activity `{"categories": ["*"], "via": "complaint"}` on the message;
- **delayed** (a DSN warning) → recorded as `ignored`.

Every item is remembered in `mail_feedback` under a dedupe key (the report's identity + recipient), so
reading the same mailbox twice, or a webhook retried by the ESP, counts nothing twice. The stored row keeps
the lead id, the status code and the reason with the recipient address blanked — nothing personal.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..activity import ActivityEvent
from ..engine.events import record_events
from ..store.engine import write_tx
from ..store.tables import enrollment, lead, mail_feedback, outbox
from ..workspace import Workspace
from . import subscriptions
from .dsn import FeedbackItem, one_line
from .suppression import suppress

log = logging.getLogger("nurture.mail.bounces")


@dataclass
class FeedbackResult:
    processed: int = 0
    hard: int = 0
    soft: int = 0
    suppressed_soft: int = 0  # soft bounces that reached the limit
    complaints: int = 0
    ignored: int = 0
    unmatched: int = 0
    malformed: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)  # one line per item that was not applied, with why

    def add(self, other: FeedbackResult) -> None:
        for name in ("processed", "hard", "soft", "suppressed_soft", "complaints", "ignored", "unmatched",
                     "malformed", "duplicates"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors

    def as_dict(self) -> dict[str, Any]:
        return {"processed": self.processed, "hard_bounces": self.hard, "soft_bounces": self.soft,
                "suppressed_after_soft": self.suppressed_soft, "complaints": self.complaints,
                "ignored": self.ignored, "unmatched": self.unmatched, "malformed": self.malformed,
                "duplicates": self.duplicates}


def dedupe_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _redact(text: str, address: str | None) -> str:
    return text.replace(address, "<recipient>") if address else text


_MSG_COLS = (outbox.c.id, outbox.c.lead_id, outbox.c.to_email, outbox.c.status, outbox.c.sequence_id,
             outbox.c.node_id, outbox.c.template_id, outbox.c.category, enrollment.c.version_id)


def _message_by_ids(conn: Connection, ids: Sequence[str]) -> dict[str, Any] | None:
    refs = [i.strip("<>").split("@", 1)[0] for i in ids]
    if not refs:
        return None
    rows = {r["message_ref"]: dict(r) for r in conn.execute(
        select(*_MSG_COLS, outbox.c.message_ref)
        .select_from(outbox.outerjoin(enrollment, enrollment.c.id == outbox.c.enrollment_id))
        .where(outbox.c.message_ref.in_(refs))).mappings()}
    return next((rows[r] for r in refs if r in rows), None)


def _message_to(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(*_MSG_COLS).select_from(outbox.outerjoin(enrollment, enrollment.c.id == outbox.c.enrollment_id))
        .where(outbox.c.to_email == email, outbox.c.status.in_(("sent", "bounced", "failed")))
        .order_by(outbox.c.sent_at.desc().nulls_last(), outbox.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def match(conn: Connection, item: FeedbackItem) -> tuple[int | None, dict[str, Any] | None]:
    """(lead id, message row) for an item: by Message-ID, else the recipient's latest message, else lead."""
    msg = _message_by_ids(conn, item.message_ids)
    if msg is None and item.recipient:
        msg = _message_to(conn, item.recipient)
    if msg is not None:
        return int(msg["lead_id"]), msg
    if item.recipient:
        lead_id = conn.execute(select(lead.c.id).where(lead.c.email == item.recipient)).scalar()
        return (int(lead_id) if lead_id is not None else None), None
    return None, None


def apply_items(ws: Workspace, items: Sequence[FeedbackItem], source: str) -> FeedbackResult:
    """Apply a batch (one report, one webhook request) in one transaction; a concurrent processor that
    stored the same item first (unique dedupe key) makes this batch retry, which then skips it."""
    for attempt in range(2):
        try:
            with write_tx(ws.engine) as conn:
                return _apply(conn, ws, items, source)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def record_malformed(ws: Workspace, identity: str, source: str, reason: str) -> bool:
    """Remember a report that could not be read (once per identity); False if it was already known."""
    key = dedupe_key(f"malformed|{identity}")
    with write_tx(ws.engine) as conn:
        if conn.execute(select(mail_feedback.c.id).where(mail_feedback.c.dedupe_key == key)).first():
            return False
        now = ws.clock.now()
        conn.execute(insert(mail_feedback).values(dedupe_key=key, kind="malformed", outcome="malformed",
                                                  source=source[:40], reason=one_line(reason), created_at=now))
    return True


def _apply(conn: Connection, ws: Workspace, items: Sequence[FeedbackItem], source: str) -> FeedbackResult:
    res = FeedbackResult()
    now = ws.clock.now()
    mail = ws.settings.mail
    keys = [dedupe_key(i.key) for i in items]
    known = set(conn.execute(select(mail_feedback.c.dedupe_key).where(mail_feedback.c.dedupe_key.in_(keys)))
                .scalars()) if keys else set()
    events: list[ActivityEvent] = []
    for item, key in zip(items, keys, strict=True):
        if key in known:
            res.duplicates += 1
            continue
        known.add(key)
        res.processed += 1
        about_test = _test_send(item)
        lead_id, msg = (None, None) if about_test else match(conn, item)
        outcome = "applied"
        reason = _redact(item.reason, item.recipient)
        if msg is not None:
            reason = _redact(reason, msg["to_email"])
        if item.kind == "delayed" or about_test:
            outcome = "ignored"  # a delay warning, or about a test send (never counted, never suppresses)
            res.ignored += 1
        elif lead_id is None:
            outcome = "unmatched"
            res.unmatched += 1
            ids = ", ".join(item.message_ids) or "no Message-ID"
            res.errors.append(f"{item.kind} for {item.recipient or '?'} ({ids}): no such message or lead")
        elif item.kind == "hard_bounce":
            res.hard += 1
            _hard(conn, lead_id, msg, item, reason, now, events)
        elif item.kind == "soft_bounce":
            res.soft += 1
            if msg is not None:
                _set_status(conn, msg, "failed", f"4xx soft bounce ({item.status or '?'}): {reason}")
            since = now - timedelta(days=mail.soft_bounce_window_days)
            count = 1 + int(conn.execute(select(func.count()).select_from(mail_feedback).where(
                mail_feedback.c.lead_id == lead_id, mail_feedback.c.kind == "soft_bounce",
                mail_feedback.c.outcome == "applied", mail_feedback.c.created_at >= since)).scalar() or 0)
            if count >= mail.soft_bounce_limit:
                res.suppressed_soft += 1
                detail = (f"{count} soft bounces in {mail.soft_bounce_window_days:g} days "
                          f"(last: {item.status or '?'} {reason})")
                _hard(conn, lead_id, msg, item, detail, now, events, from_soft=True)
        elif item.kind == "complaint":
            res.complaints += 1
            email = msg["to_email"] if msg is not None else item.recipient
            subscriptions.set_global_opt_out(conn, lead_id, True, now)
            suppress(conn, email=str(email), lead_id=lead_id, reason="complaint", detail=reason, now=now)
            events.append(_event(lead_id, msg, "unsubscribe", now,
                                 {"categories": ["*"], "via": "complaint", "source": source}))
        if outcome != "applied":
            why = res.errors[-1] if outcome == "unmatched" else "a delivery delay warning" \
                if item.kind == "delayed" else "about a test send"
            log.warning("%s from %s not applied (%s): %s", item.kind, source, outcome, why)
        conn.execute(insert(mail_feedback).values(
            dedupe_key=key, kind=item.kind, outcome=outcome, source=source[:40], lead_id=lead_id,
            outbox_id=msg["id"] if msg is not None else None, status=item.status, reason=reason[:500],
            received_at=item.at, created_at=now))
    if events:
        record_events(conn, events, now, ws.settings)
    return res


def _test_send(item: FeedbackItem) -> bool:
    """The report is about a test send (`<test.…@domain>`, mail/testsend.py)."""
    return any(i.startswith("<test.") for i in item.message_ids)


def _event(lead_id: int, msg: dict[str, Any] | None, kind: str, now: datetime, meta: dict[str, Any]) -> ActivityEvent:
    if msg is None:
        return ActivityEvent(lead_id, kind, now, meta=meta)
    return ActivityEvent(lead_id, kind, now, sequence_id=msg["sequence_id"], version_id=msg["version_id"],
                         node_id=msg["node_id"], template_id=msg["template_id"], outbox_id=msg["id"], meta=meta)


def _set_status(conn: Connection, msg: dict[str, Any], status: str, error: str) -> None:
    # only a message that went out: a row the dispatcher already marked bounced keeps its own outcome
    conn.execute(update(outbox).where(outbox.c.id == msg["id"], outbox.c.status == "sent")
                 .values(status=status, last_error=error[:1000]))


def _hard(conn: Connection, lead_id: int, msg: dict[str, Any] | None, item: FeedbackItem, reason: str,
          now: datetime, events: list[ActivityEvent], *, from_soft: bool = False) -> None:
    detail = reason if from_soft else f"{item.status or ''} {reason}".strip()
    email = msg["to_email"] if msg is not None else item.recipient
    if msg is not None and not from_soft:  # the message itself stays a soft bounce
        _set_status(conn, msg, "bounced", detail)
    suppress(conn, email=str(email), lead_id=lead_id, reason="bounce", detail=detail, now=now)
    events.append(_event(lead_id, msg, "bounce", now, {"code": item.status, "detail": reason[:500],
                                                        "via": "report"}))
