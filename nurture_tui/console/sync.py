"""Sync & audit: Salesforce sync state per object (last pull, last push, pending pushes, open errors), the
org's API usage against its daily limit, the open sync errors with Salesforce's message and a retry, and
the audit log (`console.audit_log`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from ..reports.dashboard import SyncHealth, sync_health
from ..salesforce.error_retry import retry_error
from ..store.tables import sf_outbox, sync_error, sync_state
from .audit_log import AuditFilter, AuditRow, audit_choices, audit_log
from .session import ConsoleSession

__all__ = ["ApiUsage", "AuditFilter", "AuditRow", "SyncConsole", "SyncErrorRow", "SyncObject", "SyncOverview"]

#: Open errors shown (newest first); the CLI's `nurture salesforce errors` lists them all.
ERRORS_SHOWN = 200


@dataclass(frozen=True)
class SyncObject:
    sobject: str
    status: str
    last_pull: datetime | None  # the pull watermark: the newest change read from Salesforce
    last_run_at: datetime | None
    last_push: datetime | None  # the newest push of this object that Salesforce accepted
    pending: int
    errors: int


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API requests as the last sync saw them; pushes stop at `allowed` (the budget share)."""

    used: int
    limit: int
    allowed: int
    at: datetime | None

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class SyncErrorRow:
    id: int
    at: datetime | None
    sobject: str
    direction: str
    record_id: str
    lead_id: int | None  # the local lead a refused push was about
    code: str
    message: str
    attempts: int
    queued: bool  # its push is queued again (after a retry) and waits for the next sync


@dataclass(frozen=True)
class SyncOverview:
    health: SyncHealth
    objects: list[SyncObject]
    outbox: dict[str, int]
    errors: list[SyncErrorRow]
    api: ApiUsage | None


def _lock_key() -> str:
    """The sync_state row that marks a running sync and keeps the API usage (imported when a worker first
    reads it: `salesforce.sync` loads the Salesforce client, which the first paint must not wait for)."""
    from ..salesforce.sync import LOCK_KEY

    return LOCK_KEY


def _per_object(conn: Connection) -> list[SyncObject]:
    o, e = sf_outbox.c, sync_error.c
    pushed: dict[str, datetime | None] = {r[0]: r[1] for r in conn.execute(
        select(o.sobject, func.max(o.sent_at)).where(o.status == "sent").group_by(o.sobject))}
    pending: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
        select(o.sobject, func.count()).where(o.status == "pending").group_by(o.sobject))}
    errors: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
        select(e.sobject, func.count()).where(e.resolved_at.is_(None)).group_by(e.sobject))}
    # (`_`-rows are bookkeeping, not objects: the lock, the live push's describe cache)
    states = {r.sobject: r for r in conn.execute(select(sync_state).where(
        sync_state.c.sobject != _lock_key(), func.substr(sync_state.c.sobject, 1, 1) != "_"))}
    names = sorted(set(states) | set(pushed) | set(pending) | {s for s in errors if s != "*"})
    return [SyncObject(name, states[name].status if name in states else "—",
                       states[name].watermark if name in states else None,
                       states[name].last_run_at if name in states else None,
                       pushed.get(name), int(pending.get(name, 0)), int(errors.get(name, 0))) for name in names]


def _api_usage(conn: Connection) -> ApiUsage | None:
    detail = conn.execute(select(sync_state.c.detail).where(sync_state.c.sobject == _lock_key())).scalar()
    if not detail or not detail.get("api_max"):
        return None
    at = detail.get("at")
    return ApiUsage(int(detail.get("api_used") or 0), int(detail["api_max"]), int(detail.get("api_allowed") or 0),
                    datetime.fromisoformat(at) if at else None)


def _open_errors(conn: Connection) -> list[SyncErrorRow]:
    e = sync_error.c
    stmt = (select(sync_error, sf_outbox.c.status.label("outbox_status"),
                   func.coalesce(sf_outbox.c.lead_id, e.lead_id).label("about_lead"))
            .select_from(sync_error.outerjoin(sf_outbox, sf_outbox.c.id == e.sf_outbox_id))
            .where(e.resolved_at.is_(None)).order_by(e.id.desc()).limit(ERRORS_SHOWN))
    return [SyncErrorRow(r.id, r.created_at, r.sobject, r.direction, r.record_id or "", r.about_lead,
                         r.code or "error", r.message, int(r.attempts or 0), r.outbox_status == "pending")
            for r in conn.execute(stmt)]


def sync_overview(conn: Connection) -> SyncOverview:
    outbox = {r[0]: int(r[1]) for r in conn.execute(
        select(sf_outbox.c.status, func.count()).group_by(sf_outbox.c.status))}
    return SyncOverview(health=sync_health(conn), objects=_per_object(conn), outbox=outbox,
                        errors=_open_errors(conn), api=_api_usage(conn))


class SyncConsole:
    AREA = "sync"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def overview(self) -> SyncOverview:
        with self.session.read() as conn:
            return sync_overview(conn)

    def audit(self, *, limit: int = 200, before_id: int | None = None,
              where: AuditFilter = AuditFilter()) -> list[AuditRow]:
        """The newest `limit` audit entries matching `where` (older than `before_id` when paging back)."""
        with self.session.read() as conn:
            return audit_log(conn, limit=limit, before_id=before_id, where=where)

    def audit_choices(self) -> tuple[list[str], list[str]]:
        """The users and entities in the audit log (the filter's choices)."""
        with self.session.read() as conn:
            return audit_choices(conn)

    def retry(self, error_id: int) -> str:
        """Retry one sync error (operators and admins; audited); says what was done."""
        with self.session.write(self.AREA) as conn:
            return retry_error(conn, error_id, now=self.session.now(), user=self.session.operator.username)
