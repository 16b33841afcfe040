"""Read queries over leads for any shell (TUI list and detail, CLI, reports): keyset paging over
millions of rows, counts, filters, and the lead-detail DTO.

Paging is keyset on `(sort column, id)` so a page costs one index range scan wherever it is; only a
jump to an arbitrary position far from any known key falls back to OFFSET. Nullable sort columns sort
NULLs last on every backend (SQLite sorts them first by default, PostgreSQL last).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    func,
    literal,
    or_,
    select,
    tuple_,
)

from ..compliance.consent import consent_of
from ..scoring.scale import ScoreScale
from ..segments.compiler import where_clause
from ..segments.quick import parse_quick
from ..sequences.adaptive_store import explain, lead_decisions
from ..store.tables import (
    activity,
    enrollment,
    lead,
    mql,
    score_event,
    sequence,
    sequence_version,
    sf_outbox,
    sync_error,
    template,
    user,
)

#: Sortable columns: name -> (column, nullable). Each has (or is) an index for the common ones.
SORTABLE: dict[str, tuple[Any, bool]] = {
    "id": (lead.c.id, False),
    "email": (lead.c.email, False),
    "score": (lead.c.score, False),
    "name": (lead.c.last_name, True),
    "company": (lead.c.company, True),
    "country": (lead.c.country, True),
    "stage": (lead.c.stage, True),
    "grade": (lead.c.grade_rank, True),
    "owner": (lead.c.owner_id, True),
    "last_activity": (lead.c.last_activity_at, True),
}

SortKey = tuple[Any, int]  # (sort column value, lead id)

_LIST_COLUMNS = (
    lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, lead.c.country,
    lead.c.stage, lead.c.score, lead.c.grade, lead.c.grade_rank, lead.c.owner_id, lead.c.last_activity_at,
    lead.c.opted_out,
)


@dataclass(frozen=True)
class LeadRow:
    """One line of the lead list."""

    id: int
    email: str
    name: str
    company: str
    country: str
    stage: str
    score: float  # live (decayed)
    grade: str
    owner_id: int | None
    last_activity_at: datetime | None
    opted_out: bool
    sort_key: SortKey


@dataclass(frozen=True)
class LeadQuery:
    """What the list shows: a filter (a Core boolean over `lead`, or None) and the sort order."""

    where: ColumnElement[bool] | None = None
    sort: str = "score"
    descending: bool = True
    label: str = ""  # human description of the filter, for the list's subtitle

    def with_sort(self, sort: str, descending: bool) -> LeadQuery:
        return LeadQuery(self.where, sort, descending, self.label)


def _sort_col(q: LeadQuery) -> tuple[Any, bool]:
    if q.sort not in SORTABLE:
        raise ValueError(f"cannot sort leads by {q.sort!r} (choose from {', '.join(SORTABLE)})")
    return SORTABLE[q.sort]


def _order(q: LeadQuery, reverse: bool) -> list[Any]:
    col, nullable = _sort_col(q)
    desc = q.descending != reverse
    out: list[Any] = []
    if nullable:
        nulls = col.is_(None)
        out.append(nulls.desc() if reverse else nulls.asc())  # NULLs last in forward order
    if col is lead.c.id:
        return [*out, col.desc() if desc else col.asc()]
    return [*out, col.desc() if desc else col.asc(), lead.c.id.desc() if desc else lead.c.id.asc()]


def _after(q: LeadQuery, key: SortKey, reverse: bool) -> ColumnElement[bool]:
    """Rows strictly after `key` in the (possibly reversed) sort order."""
    col, nullable = _sort_col(q)
    value, lead_id = key
    desc = q.descending != reverse
    if col is lead.c.id:
        return lead.c.id < lead_id if desc else lead.c.id > lead_id
    beyond = tuple_(col, lead.c.id) < tuple_(literal(value), literal(lead_id)) if desc else \
        tuple_(col, lead.c.id) > tuple_(literal(value), literal(lead_id))
    if not nullable:
        return beyond
    id_beyond = lead.c.id < lead_id if desc else lead.c.id > lead_id
    if not reverse:  # forward: non-NULLs first, then NULLs
        if value is None:
            return and_(col.is_(None), id_beyond)
        return or_(and_(col.is_not(None), beyond), col.is_(None))
    if value is None:  # reversed: NULLs first (walking back from the end), then non-NULLs
        return or_(and_(col.is_(None), id_beyond), col.is_not(None))
    return and_(col.is_not(None), beyond)


def _rows(conn: Connection, q: LeadQuery, stmt: Any, scale: ScoreScale, now: datetime) -> list[LeadRow]:
    col_name = SORTABLE[q.sort][0].name
    factor = scale.factor(now)
    out = []
    for r in conn.execute(stmt):
        name = " ".join(p for p in (r.first_name, r.last_name) if p)
        out.append(LeadRow(
            id=r.id, email=r.email, name=name, company=r.company or "", country=r.country or "",
            stage=r.stage or "", score=r.score * factor, grade=r.grade or "", owner_id=r.owner_id,
            last_activity_at=r.last_activity_at, opted_out=bool(r.opted_out),
            sort_key=(getattr(r, col_name), r.id),
        ))
    return out


def fetch_page(
    conn: Connection,
    q: LeadQuery,
    *,
    scale: ScoreScale,
    now: datetime,
    limit: int,
    after: SortKey | None = None,
    before: SortKey | None = None,
    offset: int | None = None,
    from_end: bool = False,
) -> list[LeadRow]:
    """One page in sort order: the first `limit` rows, or those after/before a key, at an offset,
    or the last `limit` rows (`from_end`)."""
    reverse = before is not None or from_end
    stmt = select(*_LIST_COLUMNS).order_by(*_order(q, reverse)).limit(limit)
    if q.where is not None:
        stmt = stmt.where(q.where)
    if after is not None:
        stmt = stmt.where(_after(q, after, False))
    elif before is not None:
        stmt = stmt.where(_after(q, before, True))
    elif offset:
        stmt = stmt.offset(offset)
    rows = _rows(conn, q, stmt, scale, now)
    if reverse:
        rows.reverse()
    return rows


def count_leads(conn: Connection, q: LeadQuery) -> int:
    stmt = select(func.count()).select_from(lead)
    if q.where is not None:
        stmt = stmt.where(q.where)
    return int(conn.execute(stmt).scalar_one())


def user_names(conn: Connection) -> dict[int, str]:
    """User id -> display name (the user table is small: reps and operators)."""
    return {r.id: (r.name or r.username) for r in conn.execute(select(user.c.id, user.c.name, user.c.username))}


# --------------------------------------------------------------------------------------------------
# Lead detail


@dataclass(frozen=True)
class ActivityItem:
    at: datetime
    kind: str
    detail: str


@dataclass(frozen=True)
class EnrollmentItem:
    sequence: str
    version: int
    node_id: str
    status: str
    due_at: datetime | None
    entered_at: datetime | None


@dataclass(frozen=True)
class MqlItem:
    id: int
    status: str
    created_at: datetime | None
    score: float
    grade: str
    reason: str


@dataclass(frozen=True)
class LeadDetail:
    id: int
    email: str
    name: str
    fields: list[tuple[str, str]]
    score: float
    grade: str
    score_history: list[float]
    timeline: list[ActivityItem]
    enrollments: list[EnrollmentItem]
    mqls: list[MqlItem]
    sf_id: str | None
    sf_type: str | None
    sf_pending: int
    sf_errors: list[str] = field(default_factory=list)
    consent: list[str] = field(default_factory=list)  # one line per category (compliance/consent.py)


_FIELD_LABELS = (
    ("title", "Title"), ("company", "Company"), ("industry", "Industry"), ("employees", "Employees"),
    ("country", "Country"), ("state", "State"), ("city", "City"), ("timezone", "Time zone"),
    ("lead_source", "Source"), ("status", "Status"), ("persona", "Persona"), ("stage", "Stage"),
    ("opted_out", "Opted out"), ("bounced", "Bounced"), ("last_activity_at", "Last activity"),
    ("created_at", "Created"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _activity_detail(r: Any) -> str:
    m = r.meta or {}
    parts = [str(m[k]) for k in ("template", "subject", "reason", "node") if m.get(k)]
    if r.template_name and not m.get("template"):
        parts.insert(0, r.template_name)
    if r.url:
        parts.append(r.url)
    if r.node_id and not m.get("node"):
        parts.append(f"node {r.node_id}")
    if r.bot:
        parts.append("(bot)")
    return " · ".join(parts)


def lead_detail(
    conn: Connection, lead_id: int, *, scale: ScoreScale, now: datetime, timeline_limit: int = 50,
) -> LeadDetail | None:
    r = conn.execute(select(lead).where(lead.c.id == lead_id)).first()
    if r is None:
        return None
    owner = None
    if r.owner_id is not None:
        owner = conn.execute(select(user.c.name, user.c.username).where(user.c.id == r.owner_id)).first()
    fields = [(label, _fmt(getattr(r, key))) for key, label in _FIELD_LABELS]
    fields.insert(2, ("Owner", (owner.name or owner.username) if owner else "—"))
    history = _score_history(conn, lead_id, scale, now, r.score)
    timeline = [
        ActivityItem(a.at, a.kind, _activity_detail(a))
        for a in conn.execute(
            select(activity, template.c.name.label("template_name"))
            .select_from(activity.outerjoin(template, template.c.id == activity.c.template_id))
            .where(activity.c.lead_id == lead_id)
            .order_by(activity.c.at.desc(), activity.c.id.desc()).limit(timeline_limit))
    ]
    # adaptive decisions (which arm, when to send) with why, among the activity (docs/adaptive.md)
    decisions = [ActivityItem(d["decided_at"], "decision", explain(d))
                 for d in lead_decisions(conn, lead_id, timeline_limit)]
    if decisions:
        timeline = sorted(timeline + decisions, key=lambda a: a.at, reverse=True)[:timeline_limit]
    enrollments = [
        EnrollmentItem(e.name, e.number, e.node_id or "—", e.status, e.due_at, e.entered_at)
        for e in conn.execute(
            select(sequence.c.name, sequence_version.c.number, enrollment.c.node_id, enrollment.c.status,
                   enrollment.c.due_at, enrollment.c.entered_at)
            .join(sequence, sequence.c.id == enrollment.c.sequence_id)
            .join(sequence_version, sequence_version.c.id == enrollment.c.version_id)
            .where(enrollment.c.lead_id == lead_id).order_by(enrollment.c.id.desc()))
    ]
    mqls = [
        MqlItem(m.id, m.status, m.created_at, m.score, m.grade or "", m.reject_reason or "")
        for m in conn.execute(select(mql).where(mql.c.lead_id == lead_id).order_by(mql.c.id.desc()))
    ]
    pending = conn.execute(
        select(func.count()).select_from(sf_outbox)
        .where(sf_outbox.c.lead_id == lead_id, sf_outbox.c.status == "pending")).scalar_one()
    errors = [
        f"{e.code or 'error'}: {e.message}"
        for e in conn.execute(
            select(sync_error.c.code, sync_error.c.message).where(
                sync_error.c.sf_outbox_id.in_(select(sf_outbox.c.id).where(sf_outbox.c.lead_id == lead_id)),
                sync_error.c.resolved_at.is_(None)).limit(5))
    ]
    name = " ".join(p for p in (r.first_name, r.last_name) if p) or r.email
    return LeadDetail(
        id=r.id, email=r.email, name=name, fields=fields, score=scale.live(r.score, now), grade=r.grade or "—",
        score_history=history, timeline=timeline, enrollments=enrollments, mqls=mqls, sf_id=r.sf_id,
        sf_type=r.sf_type, sf_pending=int(pending), sf_errors=errors,
        consent=[c.line() for c in consent_of(conn, lead_id)],
    )


def _score_history(conn: Connection, lead_id: int, scale: ScoreScale, now: datetime, stored: float,
                   points: int = 40) -> list[float]:
    """Live score after each of the last `points` score events, ending with the score now.

    Events carry live points at their time; the stored total before the window is what remains of the
    current stored score once the window's events are taken out.
    """
    events = list(conn.execute(
        select(score_event.c.at, score_event.c.points).where(score_event.c.lead_id == lead_id)
        .order_by(score_event.c.at.desc(), score_event.c.id.desc()).limit(points)))
    events.reverse()
    running = stored - sum(scale.to_stored(e.points, e.at) for e in events)
    out = []
    for e in events:
        running += scale.to_stored(e.points, e.at)
        out.append(max(0.0, scale.live(running, e.at)))
    out.append(max(0.0, scale.live(stored, now)))
    return out


def ids_matching(conn: Connection, q: LeadQuery, limit: int) -> Sequence[int]:
    """Lead ids of a filter (bulk actions on 'everything filtered'), capped at `limit`."""
    stmt = select(lead.c.id).order_by(lead.c.id).limit(limit)
    if q.where is not None:
        stmt = stmt.where(q.where)
    return [r[0] for r in conn.execute(stmt)]


def build_query(conn: Connection, text: str, now: datetime, *, owner_id: int | None = None,
                sort: str = "score", descending: bool = True, half_life_days: float | None = None) -> LeadQuery:
    """The `/` filter in the segment quick syntax (`stage:decision score>=50 #vip acme`, compiled by the
    segments area); plain words search name, email and company. `owner_id` limits a rep to their own leads."""
    text = text.strip()
    clauses: list[ColumnElement[bool]] = []
    label = ""
    if text:
        clauses.append(where_clause(conn, parse_quick(text), now, half_life_days=half_life_days))
        label = f"filter: {text}"
    if owner_id is not None:
        clauses.append(lead.c.owner_id == owner_id)
        label = (label + " · " if label else "") + "my leads"
    where = and_(*clauses) if clauses else None
    return LeadQuery(where=where, sort=sort, descending=descending, label=label)
