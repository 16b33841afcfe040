"""The audit log read model: entries newest first, filtered by user, entity and a period of whole UTC days,
paged by id; and the users and entities that occur, for the filter's choices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, select

from ..store.tables import audit


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    user: str
    action: str
    entity: str
    entity_id: str


@dataclass(frozen=True)
class AuditFilter:
    """Empty fields match everything; `since`/`until` are whole UTC days, both included."""

    user: str = ""
    entity: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def active(self) -> bool:
        return bool(self.user or self.entity or self.since or self.until)

    def describe(self) -> str:
        parts = [f"user {self.user}" if self.user else "", f"entity {self.entity}" if self.entity else "",
                 f"from {self.since}" if self.since else "", f"to {self.until}" if self.until else ""]
        return ", ".join(p for p in parts if p) or "everything"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def audit_log(conn: Connection, *, limit: int = 200, before_id: int | None = None,
              where: AuditFilter = AuditFilter()) -> list[AuditRow]:
    a = audit.c
    stmt = select(audit).order_by(a.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(a.id < before_id)
    if where.user:
        stmt = stmt.where(a.user == where.user)
    if where.entity:
        stmt = stmt.where(a.entity == where.entity)
    if where.since:
        stmt = stmt.where(a.at >= _midnight(where.since))
    if where.until:
        stmt = stmt.where(a.at < _midnight(where.until + timedelta(days=1)))
    return [AuditRow(r.id, r.at, r.user, r.action, r.entity, r.entity_id or "") for r in conn.execute(stmt)]


def audit_choices(conn: Connection) -> tuple[list[str], list[str]]:
    """The users and the entities that appear in the log, sorted."""
    users = sorted(conn.execute(select(audit.c.user).distinct()).scalars())
    entities = sorted(conn.execute(select(audit.c.entity).distinct()).scalars())
    return users, entities
