"""`POST /api/events`: page views, form submissions and other engagement from websites and tools.

Body: `{"events": [{"email": "ann@x.com", "kind": "page_view", "url": "https://…/pricing"}, …]}` (or a bare
list). Each event names its lead by `email` or `lead_id`; `kind` is one of `API_KINDS`; optional `url`,
`form` (form name), `at` (ISO 8601 with offset, default now) and `meta` (object). The whole batch is
validated first; one bad event rejects the batch with an error naming it (`events[2].email: …`).

Hostile bodies are 4xx with one line, never a 500 (docs/security.md): JSON nested deeper than `MAX_DEPTH`,
`NaN`/`Infinity`, a `lead_id` outside 1 … 2**63-1, an `at` before `EARLIEST` or out of range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from ..activity import ActivityEvent
from ..engine.events import record_events
from ..errors import ValidationError
from ..store.engine import write_tx
from ..store.tables import lead
from ..workspace import Workspace
from ..yamlfile import clip_repr

API_KINDS = ("page_view", "form", "reply", "meeting", "campaign_response")
MAX_EVENTS = 1000
_FUTURE_SLACK = timedelta(minutes=5)
#: Deepest nesting of arrays/objects accepted in a body (`{"events": [{"meta": {…}}]}` needs 4).
MAX_DEPTH = 32
#: Lead ids are 64-bit integers in the store.
MAX_LEAD_ID = 2**63 - 1
#: Events before this are refused (a clock or typing mistake; and year 1 cannot be stored everywhere).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def parse_body(body: bytes) -> Any:
    """The request body as JSON, or `ValidationError("body", …)`: not JSON, NaN/Infinity, or nested deeper
    than MAX_DEPTH (checked without recursion once parsed; a body too deep for the parser is caught too)."""
    def no_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        payload = json.loads(body, parse_constant=no_constant)
    except RecursionError:
        raise ValidationError("body", f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("body", "not valid JSON") from None
    todo: list[tuple[Any, int]] = [(payload, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValidationError("body", f"JSON nested deeper than {MAX_DEPTH} levels")
            todo += [(v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return payload


def _parse_at(value: Any, where: str, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(where, f"not an ISO 8601 timestamp: {clip_repr(value, 64)}")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(where, f"not an ISO 8601 timestamp: {clip_repr(value, 64)}") from None
    if at.tzinfo is None:
        raise ValidationError(where, "timestamp needs a UTC offset (e.g. 2026-03-02T09:00:00Z)")
    try:
        at = at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(where, "timestamp out of range") from None
    if at < EARLIEST:
        raise ValidationError(where, f"timestamp before {EARLIEST:%Y-%m-%d}")
    if at > now + _FUTURE_SLACK:
        raise ValidationError(where, "timestamp is in the future")
    return at


@dataclass(frozen=True, slots=True)
class ApiEvent:
    """One validated event of a request, still keyed by email where the caller gave one."""

    email: str | None
    lead_id: int | None
    kind: str
    url: str | None
    at: datetime
    meta: dict[str, Any]

    def activity(self, lead_id: int) -> ActivityEvent:
        return ActivityEvent(lead_id, self.kind, self.at, url=self.url, meta=self.meta)


def parse_events(payload: Any, now: datetime) -> list[ApiEvent]:
    """Validate the request body into events (still keyed by email where given)."""
    items = payload.get("events") if isinstance(payload, dict) else payload
    if not isinstance(items, list) or not items:
        raise ValidationError("body", 'expected {"events": [...]} with at least one event')
    if len(items) > MAX_EVENTS:
        raise ValidationError("events", f"at most {MAX_EVENTS} events per request")
    out = []
    for i, item in enumerate(items):
        where = f"events[{i}]"
        if not isinstance(item, dict):
            raise ValidationError(where, "must be an object")
        kind = item.get("kind")
        if kind not in API_KINDS:
            raise ValidationError(f"{where}.kind", f"must be one of {', '.join(API_KINDS)} (got {clip_repr(kind, 64)})")
        email, lead_id = item.get("email"), item.get("lead_id")
        if (email is None) == (lead_id is None):
            raise ValidationError(where, "give exactly one of email, lead_id")
        if lead_id is not None and (not isinstance(lead_id, int) or isinstance(lead_id, bool)):
            raise ValidationError(f"{where}.lead_id", "must be an integer")
        if lead_id is not None and not 1 <= lead_id <= MAX_LEAD_ID:
            raise ValidationError(f"{where}.lead_id", "out of range (1 … 2**63-1)")
        if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 320):
            raise ValidationError(f"{where}.email", "not an email address")
        url = item.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > 2048):
            raise ValidationError(f"{where}.url", "must be a string of at most 2048 characters")
        meta = item.get("meta") or {}
        if not isinstance(meta, dict):
            raise ValidationError(f"{where}.meta", "must be an object")
        if item.get("form") is not None:
            meta = {**meta, "form": str(item["form"])[:200]}
        out.append(ApiEvent(email.strip().lower() if email else None, lead_id, kind, url,
                            _parse_at(item.get("at"), f"{where}.at", now), {**meta, "source": "api"}))
    return out


def ingest(ws: Workspace, payload: Any) -> list[int]:
    """Validate and record in a transaction of its own; returns the activity ids. Nothing is written unless
    every event is valid. (The app sends requests through the group-commit writer instead: `ingest.py`.)"""
    now = ws.clock.now()
    events = parse_events(payload, now)
    with write_tx(ws.engine) as conn:
        return record_events(conn, to_activities(events, *lookup(conn, [events])), now, ws.settings)


def lookup(conn: Connection, requests: list[list[ApiEvent]]) -> tuple[dict[str, int], set[int]]:
    """The leads these requests name: (lower-case email → id, ids that exist), in two queries."""
    emails = sorted({e.email for events in requests for e in events if e.email})
    by_email: dict[str, int] = {}
    for i in range(0, len(emails), 500):
        by_email.update(dict(conn.execute(select(func.lower(lead.c.email), lead.c.id)
                                     .where(func.lower(lead.c.email).in_(emails[i:i + 500]))).all()))
    ids = sorted({e.lead_id for events in requests for e in events if e.lead_id is not None})
    known: set[int] = set()
    for i in range(0, len(ids), 500):
        known.update(conn.execute(select(lead.c.id).where(lead.c.id.in_(ids[i:i + 500]))).scalars())
    return by_email, known


def to_activities(events: list[ApiEvent], by_email: dict[str, int], known: set[int]) -> list[ActivityEvent]:
    """One request's events as activities; ValidationError names the first unknown lead."""
    acts: list[ActivityEvent] = []
    for i, e in enumerate(events):
        if e.email:
            if e.email not in by_email:
                raise ValidationError(f"events[{i}].email", f"no lead with email {clip_repr(e.email, 64)}")
            acts.append(e.activity(by_email[e.email]))
        elif e.lead_id not in known or e.lead_id is None:
            raise ValidationError(f"events[{i}].lead_id", f"no lead with id {e.lead_id}")
        else:
            acts.append(e.activity(e.lead_id))
    return acts
