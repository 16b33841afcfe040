"""Sync & audit: Salesforce sync state per object, the push outbox, open errors, and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from ..reports.dashboard import SyncHealth, sync_health
from ..store.tables import audit, sf_outbox, sync_error, sync_state
from .session import ConsoleSession


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


class SyncConsole:
    AREA = "sync"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def overview(self) -> SyncOverview:
        with self.session.read() as conn:
            return sync_overview(conn)

    def audit(self, *, limit: int = 200, before_id: int | None = None) -> list[AuditRow]:
        """The newest `limit` audit entries (older than `before_id` when paging back)."""
        with self.session.read() as conn:
            return audit_log(conn, limit=limit, before_id=before_id)
