"""The header's status line: next due step, live leases, Salesforce sync health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from ..reports.dashboard import LIVE_STATUSES, SyncHealth, sync_health
from ..store.tables import enrollment, lease
from .session import ConsoleSession


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


def read_status(session: ConsoleSession) -> HeaderStatus:
    with session.read() as conn:
        return header_status(conn, session.now())
