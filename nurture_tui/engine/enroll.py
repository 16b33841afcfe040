"""Entry: putting leads into sequences.

- Segment entry: a periodic sweep enrols every member of the entry segment, and `record_events` /
  lead changes re-check the affected leads at once (`recheck_segment_entry`).
- Manual: `enroll_lead` (one lead) and `enroll_segment` (every member of a saved segment).
- Event entry: an event matching a sequence's `entry.event` enrols the lead; a dedupe key (the event's
  `dedupe_key`, else its activity id) makes replays harmless.

Re-entry modes: `never` = at most one enrollment per lead ever; `after_exit` = a new enrollment only
once the previous one has ended; `anytime` = manual and event entry may start another enrollment even
while one is in flight (segment sweeps, which see the same member again and again, treat it like
`after_exit`). Opted-out, bounced and suppressed leads are never enrolled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, select

from ..activity import ActivityEvent
from ..batching import chunks
from ..config import Settings
from ..errors import NotFoundError
from ..mail.suppression import suppressed_ids
from ..segments.compiler import matching_ids, members, where_clause
from ..segments.rules import Rule, parse_rule
from ..store.engine import BULK_TX_LEADS
from ..store.tables import activity, enrollment, lead, sequence
from .bulk import insert_rows, insert_with_ids
from .isolation import BROKEN_REFERENCE, pause_broken
from .matching import TemplateNames, event_matches
from .plans import Plan, entry_rule, load_plan

LIVE = ("active", "waiting")
CHUNK = 500  # leads enrolled per insert batch


def _sequence_row(conn: Connection, name: str) -> Any:
    row = conn.execute(
        select(sequence.c.id, sequence.c.name, sequence.c.status, sequence.c.current_version_id)
        .where(sequence.c.name == name)
    ).first()
    if row is None:
        raise NotFoundError(f"sequence {name!r}: no such sequence")
    if row.current_version_id is None:
        raise NotFoundError(f"sequence {name!r}: not published yet")
    return row


def _running_sequences(conn: Connection, now: datetime) -> list[Plan]:
    """The plans of every running program. A program whose plan cannot be built (a broken reference in
    an old database) is paused with its error and left out (engine/isolation.py)."""
    rows = conn.execute(
        select(sequence.c.id, sequence.c.name, sequence.c.current_version_id)
        .where(sequence.c.status == "active", sequence.c.current_version_id.is_not(None))
    ).all()
    plans = []
    for sid, name, vid in rows:
        try:
            plans.append(load_plan(conn, vid))
        except BROKEN_REFERENCE as exc:
            pause_broken(conn, sid, name, str(exc), now)
    return plans


def _entry_ids(conn: Connection, plan: Plan, now: datetime, build: Callable[[Rule], list[int]]) -> list[int]:
    """`build(entry rule)` for one program, isolating a broken reference to it: the program is paused and
    no lead enters it (compiling the rule fails before any of its SQL runs)."""
    try:
        rule = entry_rule(conn, plan)
        return [] if rule is None else build(rule)
    except BROKEN_REFERENCE as exc:
        pause_broken(conn, plan.sequence_id, plan.sequence_name, str(exc), now)
        return []


def enroll_lead(
    conn: Connection, lead_id: int, sequence_name: str, now: datetime, *,
    dedupe_key: str | None = None, source: str = "manual",
) -> int | None:
    """Enrol one lead in a sequence's current version. Returns the enrollment id, or None when the
    re-entry mode, suppression or the dedupe key rules it out."""
    row = _sequence_row(conn, sequence_name)
    if conn.execute(select(lead.c.id).where(lead.c.id == lead_id)).first() is None:
        raise NotFoundError(f"lead {lead_id}: no such lead")
    plan = load_plan(conn, row.current_version_id)
    keys = {lead_id: dedupe_key} if dedupe_key else None
    ids = enroll_many(conn, plan, [lead_id], now, source=source, sweep=False, dedupe_keys=keys)
    return ids[0] if ids else None


def enroll_segment(conn: Connection, segment_name: str, sequence_name: str, now: datetime,
                   commit: Callable[[], None] | None = None) -> int:
    """Enrol every current member of a saved segment; returns how many were enrolled. With `commit`
    (`store.engine.bulk_write_tx`), every `BULK_TX_LEADS` leads are committed as they go."""
    row = _sequence_row(conn, sequence_name)
    rule = parse_rule({"in_segment": segment_name}, "segment")
    plan = load_plan(conn, row.current_version_id)
    ids = members(conn, rule, now)  # streamed from a server-side cursor, which a commit would close:
    return _enroll_all(conn, plan, ids if commit is None else list(ids), now, source="manual", sweep=False,
                       commit=commit)


def _enroll_all(conn: Connection, plan: Plan, lead_ids: Iterable[int], now: datetime, *, source: str,
                sweep: bool, commit: Callable[[], None] | None) -> int:
    total = written = 0
    for chunk in chunks(lead_ids, CHUNK):
        total += len(enroll_many(conn, plan, chunk, now, source=source, sweep=sweep))
        written += len(chunk)
        if commit is not None and written >= BULK_TX_LEADS:
            commit()
            written = 0
    return total


def enroll_many(
    conn: Connection, plan: Plan, lead_ids: Iterable[int], now: datetime, *,
    source: str, sweep: bool, dedupe_keys: dict[int, str] | None = None,
) -> list[int]:
    """Enrol eligible leads (re-entry mode, suppression, dedupe) in `plan`'s version."""
    candidates = sorted(set(lead_ids))
    if not candidates or plan.compiled.start is None:
        return []
    defn = plan.definition
    e = enrollment.c
    mode = defn.reentry
    if mode == "never" or sweep or mode == "after_exit":
        blocked_statuses = None if mode == "never" else LIVE
        q = select(e.lead_id).where(e.sequence_id == plan.sequence_id, e.lead_id.in_(candidates))
        if blocked_statuses:
            q = q.where(e.status.in_(blocked_statuses))
        blocked = set(conn.execute(q).scalars())
        candidates = [lid for lid in candidates if lid not in blocked]
    if candidates:
        flagged = set(conn.execute(
            select(lead.c.id).where(lead.c.id.in_(candidates), (lead.c.opted_out | lead.c.bounced))
        ).scalars())
        flagged |= suppressed_ids(conn, candidates, "marketing")
        candidates = [lid for lid in candidates if lid not in flagged]
    if dedupe_keys and candidates:
        wanted = [dedupe_keys[lid] for lid in candidates if lid in dedupe_keys]
        seen = set(conn.execute(select(e.dedupe_key).where(e.dedupe_key.in_(wanted))).scalars())
        candidates = [lid for lid in candidates if dedupe_keys.get(lid) not in seen]
    if not candidates:
        return []
    rows: list[dict[str, Any]] = [
        {"lead_id": lid, "sequence_id": plan.sequence_id, "version_id": plan.version_id,
         "node_id": plan.compiled.start, "status": "active", "due_at": now, "entered_at": now,
         "node_entered_at": now, "dedupe_key": (dedupe_keys or {}).get(lid), "steps": 0, "path": []}
        for lid in candidates
    ]
    ids = insert_with_ids(conn, enrollment, rows)
    insert_rows(conn, activity, [
        ActivityEvent(lid, "entered", now, sequence_id=plan.sequence_id, version_id=plan.version_id,
                      meta={"source": source}).row()
        for lid in candidates
    ])
    return ids


def entry_sweep(conn: Connection, now: datetime, settings: Settings | None = None,
                commit: Callable[[], None] | None = None) -> int:
    """Enrol the members of every running segment-entry sequence not yet enrolled; returns the count.
    (`settings` is accepted for callers that pass it; entry needs none.) With `commit`
    (`store.engine.bulk_write_tx`), every `BULK_TX_LEADS` leads are committed as they go: a sweep that stops
    part-way is finished by the next one, which sees who is enrolled."""
    total = 0
    for plan in _running_sequences(conn, now):
        e = enrollment.c
        blocked = [e.lead_id == lead.c.id, e.sequence_id == plan.sequence_id]
        if plan.definition.reentry != "never":
            blocked.append(e.status.in_(LIVE))

        def not_enrolled(rule: Rule, blocked: list[Any] = blocked) -> list[int]:
            q = (
                select(lead.c.id)
                .where(where_clause(conn, rule, now), ~exists().where(and_(*blocked)))
                .order_by(lead.c.id)
            )
            return list(conn.execute(q).scalars())

        ids = _entry_ids(conn, plan, now, not_enrolled)
        total += _enroll_all(conn, plan, ids, now, source="segment", sweep=True, commit=commit)
    return total


def recheck_segment_entry(conn: Connection, lead_ids: list[int], now: datetime) -> int:
    """Re-check segment entry for changed leads right away (between periodic sweeps)."""
    total = 0
    for plan in _running_sequences(conn, now):
        hits = _entry_ids(conn, plan, now, lambda rule: sorted(matching_ids(conn, rule, lead_ids, now)))
        total += len(enroll_many(conn, plan, hits, now, source="segment", sweep=True))
    return total


def enroll_from_events(conn: Connection, acts: Sequence[ActivityEvent], now: datetime) -> int:
    """Event entry: enrol leads whose (recorded, non-bot) activity matches a running sequence's entry event."""
    plans = [p for p in _running_sequences(conn, now)
             if p.definition.entry.type == "event" and p.definition.entry.event is not None]
    if not plans:
        return 0
    names = TemplateNames(conn)
    total = 0
    for plan in plans:
        match = plan.definition.entry.event
        assert match is not None
        keys: dict[int, str] = {}
        for a in acts:
            if event_matches(match, a, None, names) and a.lead_id not in keys:
                key = a.dedupe_key or f"activity:{a.id}"
                keys[a.lead_id] = f"{plan.sequence_id}:{key}"
        if keys:
            total += len(enroll_many(conn, plan, keys, now, source="event", sweep=False, dedupe_keys=keys))
    return total

