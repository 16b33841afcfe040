"""Thresholds → MQL, the MQL queue, SLA, and the rep's actions (accept / reject / reassign / snooze).

A lead qualifies when its live score ≥ `scoring.mql_score` AND its grade ≥ `scoring.mql_grade` (empty
grade = score only). `lead.mql_at` marks the open cycle: while it is set the lead cannot qualify again;
rejecting recycles the lead (mql_at cleared, score reset by `recycle_score_factor`, optional recycle
sequence), which starts the next cycle. Every rep action is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, insert, select, true, update

from ..batching import chunks
from ..config import ScoringSettings, Settings
from ..engine.enroll import enroll_lead
from ..errors import NotFoundError, ValidationError
from ..store import audit
from ..store.inlist import in_values
from ..store.models import GRADES
from ..store.tables import activity, lead, mql, user
from . import assign as assigning
from . import handoff
from .accounts import close_mqa
from .points import live_score, reset_score
from .scale import scale, scoring_settings

SYSTEM_USER = "nurture"


class AlreadyQualified(ValidationError):
    """The lead is already in an open MQL cycle."""

OPEN_STATUSES = ("new", "snoozed")
STATUSES = ("new", "snoozed", "accepted", "rejected", "recycled")
#: The reasons a rep picks from when rejecting (any other text is accepted too).
REJECT_REASONS = ("no budget", "not the decision maker", "bad timing", "student or researcher", "competitor",
                  "existing customer", "bad data", "duplicate")
#: How a queue can be ordered (oldest first by default); ties go to the older entry.
SORTS = ("age", "score", "grade")


def grade_rank(grade: str | None, where: str = "grade") -> int | None:
    if grade is None or grade == "":
        return None
    g = grade.strip().upper().replace("−", "-")
    if g not in GRADES:
        raise ValidationError(where, f"{grade!r} is not a grade ({', '.join(reversed(GRADES))})")
    return GRADES.index(g)


def describe_rule(settings: ScoringSettings) -> str:
    rule = f"score ≥ {settings.mql_score:g}"
    return rule + (f" AND grade ≥ {settings.mql_grade}" if settings.mql_grade else "")


def threshold_clause(conn: Connection, now: datetime, settings: Settings | ScoringSettings) -> ColumnElement[bool]:
    """The MQL threshold as a Core boolean over `lead` (usable in segment rules and sequence branches)."""
    s = scoring_settings(settings)
    cond: ColumnElement[bool] = lead.c.score >= scale(conn, now, s).stored_threshold(s.mql_score, now)
    rank = grade_rank(s.mql_grade, "scoring.mql_grade")
    if rank is not None:
        cond = and_(cond, lead.c.grade_rank >= rank)
    return cond


def check(conn: Connection, lead_ids: list[int], now: datetime, settings: Settings | ScoringSettings) -> list[int]:
    """Qualify the given leads that now meet the threshold and are not in an open MQL cycle."""
    if not lead_ids:
        return []
    cond = threshold_clause(conn, now, settings)
    hits: list[int] = []
    for part in chunks(sorted(set(lead_ids)), 10_000):  # the ids in one bound parameter (store/inlist.py)
        q = select(lead.c.id).where(in_values(conn, lead.c.id, part), lead.c.mql_at.is_(None), cond)
        hits.extend(int(r[0]) for r in conn.execute(q))
    return [lead_id for lead_id in hits if _try_qualify(conn, lead_id, now, settings)]


def _try_qualify(conn: Connection, lead_id: int, now: datetime, settings: Settings | ScoringSettings) -> bool:
    try:
        qualify(conn, lead_id, now, settings)
    except AlreadyQualified:
        return False  # another worker opened this cycle a moment ago
    return True


def check_all(conn: Connection, now: datetime, settings: Settings | ScoringSettings) -> list[int]:
    """Qualify every lead that meets the threshold and has no open cycle (after a rescore or regrade)."""
    q = select(lead.c.id).where(lead.c.mql_at.is_(None), threshold_clause(conn, now, settings)).order_by(lead.c.id)
    hits = [int(r[0]) for r in conn.execute(q)]
    return [lead_id for lead_id in hits if _try_qualify(conn, lead_id, now, settings)]


def qualify(conn: Connection, lead_id: int, now: datetime, settings: Settings | ScoringSettings,
            *, reason: str | None = None, user_name: str = SYSTEM_USER) -> int:
    """Open an MQL cycle for a lead: queue entry (assigned), lead status + mql_at, `mql` activity,
    audit, and the hand-off to sales. Returns the mql id. (Callers check the threshold; a manual
    qualification passes `reason`.)"""
    s = scoring_settings(settings)
    row = conn.execute(select(lead.c.score, lead.c.grade, lead.c.mql_at, lead.c.status, lead.c.owner_id)
                       .where(lead.c.id == lead_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"lead {lead_id}: no such lead")
    # Claim the cycle first: on PostgreSQL a concurrent worker qualifying the same lead blocks on this row
    # and then finds mql_at set, so a crossing opens exactly one entry per cycle.
    claimed = conn.execute(update(lead).where(lead.c.id == lead_id, lead.c.mql_at.is_(None))
                           .values(mql_at=now)).rowcount
    if row.mql_at is not None or not claimed:
        raise AlreadyQualified(f"lead {lead_id}", "already in an open MQL cycle")
    live = round(scale(conn, now, s).live(float(row.score), now), 2)
    cycle = conn.execute(select(func.count()).select_from(mql).where(mql.c.lead_id == lead_id)).scalar_one() + 1
    who = assigning.assign(conn, lead_id, s)
    why: dict[str, Any] = {"rule": reason or describe_rule(s), "score": live, "grade": row.grade,
                           "assigned": who.how}
    mql_id = int(conn.execute(insert(mql).values(
        lead_id=lead_id, cycle=cycle, status="new", rep_id=who.rep_id, queue=who.queue, score=live,
        grade=row.grade, why=why, created_at=now).returning(mql.c.id)).scalar_one())
    values: dict[str, Any] = {"mql_at": now, "status": s.mql_lead_status, "updated_at": now}
    if who.rep_id is not None:
        values["owner_id"] = who.rep_id
    conn.execute(update(lead).where(lead.c.id == lead_id).values(**values))
    conn.execute(insert(activity).values(lead_id=lead_id, kind="mql", at=now,
                                         meta={"mql_id": mql_id, "cycle": cycle, **why}))
    audit.record(conn, at=now, user=user_name, action="mql.qualify", entity="mql", entity_id=mql_id,
                 before={"status": row.status, "owner_id": row.owner_id},
                 after={"status": s.mql_lead_status, "rep_id": who.rep_id, "queue": who.queue, **why})
    handoff.hand_off(conn, mql_id, now, s)
    return mql_id


@dataclass(frozen=True)
class MqlEntry:
    """A queue entry as the CLI and the TUI show it."""

    id: int
    lead_id: int
    email: str
    name: str
    company: str | None
    account_id: int | None
    cycle: int
    status: str
    rep: str | None
    queue: str | None
    score: float
    grade: str | None
    created_at: datetime
    age_hours: float
    overdue: bool
    snoozed_until: datetime | None
    why: dict[str, Any]
    reject_reason: str | None
    summary: str


def sla_due(created_at: datetime, snoozed_until: datetime | None, settings: ScoringSettings) -> datetime:
    """When an open entry becomes overdue: SLA hours after creation, or after the snooze ends."""
    start = max(created_at, snoozed_until) if snoozed_until else created_at
    return start + timedelta(hours=settings.mql_sla_hours)


def _entry(r: Any, now: datetime, s: ScoringSettings) -> MqlEntry:
    open_ = r.status in OPEN_STATUSES
    name = " ".join(p for p in (r.first_name, r.last_name) if p) or r.email
    return MqlEntry(
        id=int(r.id), lead_id=int(r.lead_id), email=r.email, name=name, company=r.company,
        account_id=r.account_id, cycle=int(r.cycle), status=r.status, rep=r.rep, queue=r.queue,
        score=float(r.score), grade=r.grade, created_at=r.created_at,
        age_hours=round((now - r.created_at).total_seconds() / 3600.0, 1),
        overdue=open_ and now > sla_due(r.created_at, r.snoozed_until, s),
        snoozed_until=r.snoozed_until, why=r.why or {}, reject_reason=r.reject_reason, summary=r.summary or "",
    )


def _query() -> Any:
    return (select(mql.c.id, mql.c.lead_id, mql.c.account_id, mql.c.cycle, mql.c.status, mql.c.queue,
                   mql.c.score, mql.c.grade, mql.c.created_at, mql.c.snoozed_until, mql.c.why,
                   mql.c.reject_reason, mql.c.summary, lead.c.email, lead.c.first_name, lead.c.last_name,
                   lead.c.company, user.c.username.label("rep"))
            .join(lead, lead.c.id == mql.c.lead_id).outerjoin(user, user.c.id == mql.c.rep_id))


def list_queue(conn: Connection, now: datetime, settings: Settings | ScoringSettings, *,
               status: str = "open", rep: str | None = None, queue: str | None = None,
               overdue_only: bool = False, limit: int = 200, sort: str = "age") -> list[MqlEntry]:
    """Entries oldest first (`sort="score"`: highest score first, `"grade"`: best grade first).
    `status="open"` = new + snoozed-and-due; `"all"` = everything."""
    s = scoring_settings(settings)
    q = _query()
    if status == "open":
        q = q.where((mql.c.status == "new") | ((mql.c.status == "snoozed") & (mql.c.snoozed_until <= now)))
    elif status == "snoozed":
        q = q.where(mql.c.status == "snoozed")
    elif status != "all":
        if status not in STATUSES:
            raise ValidationError("--status", f"unknown status {status!r} (open, all, {', '.join(STATUSES)})")
        q = q.where(mql.c.status == status)
    if rep:
        q = q.where(user.c.username == rep)
    if queue:
        q = q.where(mql.c.queue == queue)
    q = q.order_by(*_order(sort), mql.c.created_at, mql.c.id)
    entries = [_entry(r, now, s) for r in conn.execute(q.limit(None if overdue_only else limit))]
    if overdue_only:
        entries = [e for e in entries if e.overdue][:limit]
    return entries


def _order(sort: str) -> tuple[Any, ...]:
    if sort not in SORTS:
        raise ValidationError("--sort", f"unknown sort {sort!r} ({', '.join(SORTS)})")
    if sort == "score":
        return (mql.c.score.desc(),)
    if sort == "grade":  # A+ first; an entry without a grade last
        return (mql.c.grade.is_(None), case(*((mql.c.grade == g, i) for i, g in enumerate(reversed(GRADES))),
                                            else_=len(GRADES)), mql.c.score.desc())
    return ()


def get(conn: Connection, mql_id: int, now: datetime, settings: Settings | ScoringSettings) -> MqlEntry:
    r = conn.execute(_query().where(mql.c.id == mql_id)).one_or_none()
    if r is None:
        raise NotFoundError(f"mql {mql_id}: no such MQL")
    return _entry(r, now, scoring_settings(settings))


def _open_row(conn: Connection, mql_id: int) -> Any:
    r = conn.execute(select(mql).where(mql.c.id == mql_id)).one_or_none()
    if r is None:
        raise NotFoundError(f"mql {mql_id}: no such MQL")
    if r.status not in OPEN_STATUSES:
        raise ValidationError(f"mql {mql_id}", f"already {r.status}; only new or snoozed entries can be acted on")
    return r


def _user_id(conn: Connection, username: str, where: str) -> int:
    uid = conn.execute(select(user.c.id).where(user.c.username == username, user.c.active == true())).scalar()
    if uid is None:
        raise ValidationError(where, f"no active user {username!r}")
    return int(uid)


def accept(conn: Connection, mql_id: int, user_name: str, now: datetime, settings: Settings | ScoringSettings) -> None:
    s = scoring_settings(settings)
    r = _open_row(conn, mql_id)
    conn.execute(update(mql).where(mql.c.id == mql_id).values(status="accepted", decided_at=now,
                                                                 decided_by=user_name))
    conn.execute(update(lead).where(lead.c.id == r.lead_id).values(status=s.accepted_lead_status, updated_at=now))
    audit.record(conn, at=now, user=user_name, action="mql.accept", entity="mql", entity_id=mql_id,
                 before={"status": r.status}, after={"status": "accepted"})
    handoff.push_status(conn, int(r.lead_id), s.accepted_lead_status, now)


def reject(conn: Connection, mql_id: int, reason: str, user_name: str, now: datetime,
           settings: Settings | ScoringSettings) -> str:
    """Reject with a reason: close the cycle, reset the score, recycle into `scoring.recycle_sequence`.
    Returns the final status (`recycled` when the lead was enrolled in the recycle sequence)."""
    s = scoring_settings(settings)
    if not reason or not reason.strip():
        raise ValidationError("--reason", "a rejection needs a reason")
    r = _open_row(conn, mql_id)
    lead_id = int(r.lead_id)
    reason = reason.strip()
    if r.account_id is not None:  # an MQA: close the account's cycle; its leads keep their own state
        close_mqa(conn, int(r.account_id))
        conn.execute(update(mql).where(mql.c.id == mql_id).values(status="rejected", reject_reason=reason,
                                                                     decided_at=now, decided_by=user_name))
        audit.record(conn, at=now, user=user_name, action="mql.reject", entity="mql", entity_id=mql_id,
                     before={"status": r.status}, after={"status": "rejected", "reason": reason})
        return "rejected"
    before_score = round(live_score(conn, lead_id, now, s), 2)
    after_score = round(before_score * s.recycle_score_factor, 2)
    reset_score(conn, lead_id, after_score, f"recycled: {reason}", now, s)
    status = "rejected"
    enrolled = None
    if s.recycle_sequence:
        enrolled = _enroll_recycle(conn, lead_id, s.recycle_sequence, now)
        status = "recycled"
    conn.execute(update(mql).where(mql.c.id == mql_id).values(status=status, reject_reason=reason,
                                                                 decided_at=now, decided_by=user_name))
    conn.execute(update(lead).where(lead.c.id == lead_id).values(mql_at=None, status=s.recycled_lead_status,
                                                                    updated_at=now))
    audit.record(conn, at=now, user=user_name, action="mql.reject", entity="mql", entity_id=mql_id,
                 before={"status": r.status, "score": before_score},
                 after={"status": status, "reason": reason, "score": after_score,
                        "recycle_sequence": s.recycle_sequence, "enrollment_id": enrolled})
    handoff.push_status(conn, lead_id, s.recycled_lead_status, now, score=after_score)
    return status


def _enroll_recycle(conn: Connection, lead_id: int, sequence_name: str, now: datetime) -> int | None:
    return enroll_lead(conn, lead_id, sequence_name, now)


def reassign(conn: Connection, mql_id: int, to_username: str, user_name: str, now: datetime,
             settings: Settings | ScoringSettings) -> int:
    s = scoring_settings(settings)
    r = _open_row(conn, mql_id)
    rep_id = _user_id(conn, to_username, "--to")
    conn.execute(update(mql).where(mql.c.id == mql_id).values(rep_id=rep_id, queue=None))
    conn.execute(update(lead).where(lead.c.id == r.lead_id).values(owner_id=rep_id, updated_at=now))
    audit.record(conn, at=now, user=user_name, action="mql.reassign", entity="mql", entity_id=mql_id,
                 before={"rep_id": r.rep_id, "queue": r.queue}, after={"rep_id": rep_id, "queue": None})
    handoff.push_reassign(conn, mql_id, rep_id, now, s)
    return rep_id


def reassign_to_queue(conn: Connection, mql_id: int, queue: str, user_name: str, now: datetime) -> None:
    """Put an entry back in a queue (no rep) for someone there to take; Salesforce gets a Task saying so."""
    queue = queue.strip()
    if not queue:
        raise ValidationError("--queue", "a queue name is required")
    r = _open_row(conn, mql_id)
    conn.execute(update(mql).where(mql.c.id == mql_id).values(rep_id=None, queue=queue))
    audit.record(conn, at=now, user=user_name, action="mql.reassign", entity="mql", entity_id=mql_id,
                 before={"rep_id": r.rep_id, "queue": r.queue}, after={"rep_id": None, "queue": queue})
    handoff.push_note(conn, mql_id, f"MQL moved to the {queue} queue", now)


def snooze(conn: Connection, mql_id: int, until: datetime, user_name: str, now: datetime) -> None:
    if until <= now:
        raise ValidationError("--until", "must be in the future")
    r = _open_row(conn, mql_id)
    conn.execute(update(mql).where(mql.c.id == mql_id).values(status="snoozed", snoozed_until=until))
    audit.record(conn, at=now, user=user_name, action="mql.snooze", entity="mql", entity_id=mql_id,
                 before={"status": r.status, "snoozed_until": r.snoozed_until and r.snoozed_until.isoformat()},
                 after={"status": "snoozed", "snoozed_until": until.isoformat()})
    handoff.push_note(conn, mql_id, f"MQL snoozed until {until:%Y-%m-%d %H:%M} UTC", now)
