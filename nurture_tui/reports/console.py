"""Read models for the operator console screens (leaderboard, MQL queue, sync & audit, header status,
who is at the keyboard). Plain SQLAlchemy Core, frozen DTOs out; no UI imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from ..config import Settings
from ..store.tables import (
    audit,
    enrollment,
    lead,
    lease,
    sf_outbox,
    sync_error,
    sync_state,
    user,
)
from .dashboard import LIVE_STATUSES, SyncHealth, sync_health

ROLES = ("admin", "operator", "rep")


@dataclass(frozen=True)
class Operator:
    """The person at the keyboard: config/`$USER` name, role from the user table when known there."""

    username: str
    role: str
    user_id: int | None

    @property
    def is_rep(self) -> bool:
        return self.role == "rep"


def current_operator(conn: Connection, settings: Settings) -> Operator:
    name = settings.user.name
    row = conn.execute(select(user.c.id, user.c.role).where(user.c.username == name)).first()
    if row is not None and row.role in ROLES:
        return Operator(name, row.role, row.id)
    return Operator(name, settings.user.role, row.id if row else None)


# --------------------------------------------------------------------------------------------------
# Header


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True)
class HeaderStatus:
    next_due_at: datetime | None
    leases: list[LeaseInfo]
    sync: SyncHealth


def header_status(conn: Connection, now: datetime) -> HeaderStatus:
    next_due = conn.execute(
        select(func.min(enrollment.c.due_at)).where(enrollment.c.status.in_(LIVE_STATUSES))).scalar_one()
    leases = [LeaseInfo(r.name, r.holder, r.expires_at)
              for r in conn.execute(select(lease).where(lease.c.expires_at > now))]
    return HeaderStatus(next_due_at=next_due, leases=leases, sync=sync_health(conn))


# --------------------------------------------------------------------------------------------------
# Leaderboard


@dataclass(frozen=True)
class BoardRow:
    lead_id: int
    rank: int
    email: str
    name: str
    company: str
    score: float
    grade: str
    stage: str
    owner: str
    last_engagement: datetime | None


def leaderboard(conn: Connection, *, factor: float, limit: int = 50, owner_id: int | None = None) -> list[BoardRow]:
    """Top leads by live score. Ordering by the stored column is ordering by live score (decay.py);
    `factor` is the scale's decay factor now."""
    stmt = (
        select(lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, lead.c.score,
               lead.c.grade, lead.c.stage, lead.c.last_activity_at, user.c.name.label("owner_name"),
               user.c.username.label("owner_username"))
        .select_from(lead.outerjoin(user, user.c.id == lead.c.owner_id))
        .order_by(lead.c.score.desc(), lead.c.id.desc()).limit(limit)
    )
    if owner_id is not None:
        stmt = stmt.where(lead.c.owner_id == owner_id)
    return [
        BoardRow(
            lead_id=r.id, rank=i + 1, email=r.email,
            name=" ".join(p for p in (r.first_name, r.last_name) if p), company=r.company or "",
            score=r.score * factor, grade=r.grade or "", stage=r.stage or "",
            owner=r.owner_name or r.owner_username or "", last_engagement=r.last_activity_at,
        )
        for i, r in enumerate(conn.execute(stmt))
    ]


# --------------------------------------------------------------------------------------------------
# Sync & audit


@dataclass(frozen=True)
class SyncObject:
    sobject: str
    status: str
    watermark: datetime | None
    last_run_at: datetime | None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    user: str
    action: str
    entity: str
    entity_id: str


@dataclass(frozen=True)
class SyncOverview:
    health: SyncHealth
    objects: list[SyncObject]
    outbox: dict[str, int]
    errors: list[tuple[datetime | None, str, str]]  # (at, object, message)


def sync_overview(conn: Connection) -> SyncOverview:
    objects = [SyncObject(r.sobject, r.status, r.watermark, r.last_run_at)
               for r in conn.execute(select(sync_state).order_by(sync_state.c.sobject))]
    outbox = {r[0]: int(r[1]) for r in conn.execute(
        select(sf_outbox.c.status, func.count()).group_by(sf_outbox.c.status))}
    errors = [(r.created_at, r.sobject, f"{r.code or 'error'}: {r.message}") for r in conn.execute(
        select(sync_error).where(sync_error.c.resolved_at.is_(None))
        .order_by(sync_error.c.id.desc()).limit(50))]
    return SyncOverview(health=sync_health(conn), objects=objects, outbox=outbox, errors=errors)


def audit_log(conn: Connection, *, limit: int = 200, before_id: int | None = None) -> list[AuditRow]:
    stmt = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(audit.c.id < before_id)
    return [AuditRow(r.id, r.at, r.user, r.action, r.entity, r.entity_id or "") for r in conn.execute(stmt)]
