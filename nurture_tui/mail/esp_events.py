"""Bounce and complaint events pushed by an email service provider's webhook (`POST /api/bounces`), turned
into the same `FeedbackItem`s a DSN or ARF gives (`mail.bounces` applies them).

Two shapes are accepted:

- **generic** — `{"events": [{"type": "hard_bounce" | "soft_bounce" | "complaint" | "delayed",
  "email": "ann@acme.com", "message_id": "<ref@example.com>", "status": "5.1.1", "reason": "…",
  "at": "2026-03-02T09:15:00Z", "id": "provider-event-id"}, …]}`; `email` or `message_id` is required,
  `id` makes a retried delivery idempotent (without it: email + type + message + time).
- **SendGrid Event Webhook** — a JSON array of SendGrid events: `bounce` (`type` `bounce` = hard,
  `blocked` = soft), `deferred` (delayed), `spamreport` (complaint); others (`delivered`, `open`, …) are
  skipped. The original Message-ID is SendGrid's `smtp-id`; `sg_event_id` is the idempotency key.

One bad event does not stop the rest: it is reported (index and reason) and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .dsn import FeedbackItem, classify, one_line

GENERIC_TYPES = ("hard_bounce", "soft_bounce", "complaint", "delayed")
_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_MSGID = re.compile(r"<?([^<>\s]+@[^<>\s]+)>?")
SENDGRID_SKIPPED = ("processed", "delivered", "open", "click", "unsubscribe", "group_unsubscribe",
                    "group_resubscribe", "dropped")


class BadEvent(ValueError):
    pass


def detect(payload: Any) -> str:
    """"sendgrid" or "generic" (BadEvent when it is neither)."""
    if isinstance(payload, list):
        return "sendgrid"
    if isinstance(payload, Mapping) and isinstance(payload.get("events"), list):
        return "generic"
    raise BadEvent('expected {"events": [...]} or a SendGrid event array')


def parse_events(payload: Any) -> tuple[str, list[FeedbackItem], list[str]]:
    """(shape, items, errors) — errors are `events[i]: reason` lines for skipped events."""
    shape = detect(payload)
    events = payload if shape == "sendgrid" else payload["events"]
    items: list[FeedbackItem] = []
    errors: list[str] = []
    for i, ev in enumerate(events):
        try:
            if not isinstance(ev, Mapping):
                raise BadEvent("not an object")
            item = _sendgrid(ev) if shape == "sendgrid" else _generic(ev)
        except BadEvent as exc:
            errors.append(f"events[{i}]: {exc}")
            continue
        if item is not None:
            items.append(item)
    return shape, items, errors


def _email(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if "@" not in text or any(c.isspace() for c in text) or len(text) > 254:
        raise BadEvent(f"email {one_line(str(value), 80)!r} is not an address")
    return text


def _msgid(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    m = _MSGID.search(str(value))
    if m is None:
        raise BadEvent(f"message_id {one_line(str(value), 80)!r} is not a Message-ID")
    return (f"<{m.group(1)}>",)


def _iso(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadEvent(f"at {one_line(str(value), 40)!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise BadEvent("at needs a UTC offset")
    return at


def _generic(ev: Mapping[str, Any]) -> FeedbackItem:
    kind = str(ev.get("type", ""))
    if kind not in GENERIC_TYPES:
        raise BadEvent(f"type {kind!r}: one of {', '.join(GENERIC_TYPES)}")
    email, ids = _email(ev.get("email")), _msgid(ev.get("message_id"))
    if email is None and not ids:
        raise BadEvent("needs email or message_id")
    status = _STATUS.search(str(ev.get("status") or ""))
    at = _iso(ev.get("at"))
    ident = ev.get("id") or f"{email}|{kind}|{ids}|{at}"
    return FeedbackItem(kind, email, status.group(0) if status else None,
                        one_line(str(ev.get("reason") or kind)), ids, at, f"generic|{ident}")


def _sendgrid(ev: Mapping[str, Any]) -> FeedbackItem | None:
    event = str(ev.get("event", ""))
    if event in SENDGRID_SKIPPED:
        return None
    email, ids = _email(ev.get("email")), _msgid(ev.get("smtp-id"))
    if email is None and not ids:
        raise BadEvent(f"{event or 'event'} without email or smtp-id")
    ts = ev.get("timestamp")
    try:
        at = datetime.fromtimestamp(int(ts), UTC) if ts is not None else None
    except (TypeError, ValueError, OverflowError):
        raise BadEvent(f"timestamp {one_line(str(ts), 40)!r} is not a Unix time") from None
    status_m = _STATUS.search(str(ev.get("status") or ""))
    status = status_m.group(0) if status_m else None
    reason = one_line(str(ev.get("reason") or ev.get("response") or event))
    if event == "bounce":
        kind = "soft_bounce" if ev.get("type") == "blocked" else classify(status) if status else "hard_bounce"
    elif event == "deferred":
        kind = "delayed"
    elif event == "spamreport":
        kind = "complaint"
    else:
        raise BadEvent(f"unknown SendGrid event {event!r}")
    ident = ev.get("sg_event_id") or f"{email}|{event}|{ids}|{ts}"
    return FeedbackItem(kind, email, status, reason, ids, at, f"sendgrid|{ident}")
