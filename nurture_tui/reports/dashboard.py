"""Dashboard figures: the KPI row and the chart series, as one frozen DTO per refresh.

Every count is an index range (activity `(kind, at)`, enrollment `(status, due_at)`, mql
`(status, created_at)`), so a refresh stays in the low milliseconds on a demo workspace and well under
a second at a million leads. "Today" is the workspace clock's UTC day, so the demo clock drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from ..store.models.people import STAGES
from ..store.tables import activity, enrollment, lead, mql, sf_outbox, sync_error, sync_state

LIVE_STATUSES = ("active", "waiting")


@dataclass(frozen=True)
class SyncHealth:
    pending: int
    errors: int
    last_run_at: datetime | None
    status: str  # ok / pending / errors / never

    @property
    def label(self) -> str:
        if self.status == "never":
            return "never synced"
        if self.status == "errors":
            return f"{self.errors} errors"
        return f"{self.pending} pending" if self.pending else "in sync"


@dataclass(frozen=True)
class Kpis:
    leads: int
    active_enrollments: int
    due_next_hour: int
    sent_today: int
    opened_today: int
    clicked_today: int
    mqls_today: int
    sync: SyncHealth


@dataclass(frozen=True)
class Series:
    labels: list[str]
    values: dict[str, list[int]]


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    kpis: Kpis
    daily: Series  # sent/open/click per day
    weekly_mqls: Series
    funnel: list[tuple[str, int]]


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _count_kind(conn: Connection, kind: str, start: datetime, end: datetime) -> int:
    return int(conn.execute(
        select(func.count()).select_from(activity)
        .where(activity.c.kind == kind, activity.c.at >= start, activity.c.at < end)).scalar_one())


def sync_health(conn: Connection) -> SyncHealth:
    pending = conn.execute(select(func.count()).select_from(sf_outbox).where(sf_outbox.c.status == "pending"))
    errors = conn.execute(select(func.count()).select_from(sync_error).where(sync_error.c.resolved_at.is_(None)))
    last = conn.execute(select(func.max(sync_state.c.last_run_at))).scalar_one()
    n_pending, n_errors = int(pending.scalar_one()), int(errors.scalar_one())
    status = "errors" if n_errors else ("never" if last is None and not n_pending else
                                         ("pending" if n_pending else "ok"))
    return SyncHealth(pending=n_pending, errors=n_errors, last_run_at=last, status=status)


def kpis(conn: Connection, now: datetime) -> Kpis:
    today = start_of_day(now)
    tomorrow = today + timedelta(days=1)
    live = enrollment.c.status.in_(LIVE_STATUSES)
    return Kpis(
        leads=int(conn.execute(select(func.count()).select_from(lead)).scalar_one()),
        active_enrollments=int(conn.execute(select(func.count()).select_from(enrollment).where(live)).scalar_one()),
        due_next_hour=int(conn.execute(
            select(func.count()).select_from(enrollment)
            .where(live, enrollment.c.due_at <= now + timedelta(hours=1))).scalar_one()),
        sent_today=_count_kind(conn, "sent", today, tomorrow),
        opened_today=_count_kind(conn, "open", today, tomorrow),
        clicked_today=_count_kind(conn, "click", today, tomorrow),
        mqls_today=int(conn.execute(
            select(func.count()).select_from(mql)
            .where(mql.c.created_at >= today, mql.c.created_at < tomorrow)).scalar_one()),
        sync=sync_health(conn),
    )


def daily_engagement(conn: Connection, now: datetime, days: int = 14) -> Series:
    today = start_of_day(now)
    starts = [today - timedelta(days=days - 1 - i) for i in range(days)]
    values: dict[str, list[int]] = {}
    for kind in ("sent", "open", "click"):
        values[kind] = [_count_kind(conn, kind, s, s + timedelta(days=1)) for s in starts]
    return Series(labels=[s.strftime("%m-%d") for s in starts], values=values)


def weekly_mqls(conn: Connection, now: datetime, weeks: int = 8) -> Series:
    today = start_of_day(now)
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    counts = [
        int(conn.execute(select(func.count()).select_from(mql).where(
            mql.c.created_at >= s, mql.c.created_at < s + timedelta(weeks=1))).scalar_one())
        for s in starts
    ]
    return Series(labels=[s.strftime("%m-%d") for s in starts], values={"mql": counts})


def funnel(conn: Connection) -> list[tuple[str, int]]:
    counts: dict[str | None, int] = dict(conn.execute(
        select(lead.c.stage, func.count()).group_by(lead.c.stage)).all())
    out = [(stage, int(counts.get(stage, 0))) for stage in STAGES]
    if counts.get(None):
        out.insert(0, ("unstaged", int(counts[None])))
    return out


def load_dashboard(conn: Connection, now: datetime) -> Dashboard:
    return Dashboard(at=now, kpis=kpis(conn, now), daily=daily_engagement(conn, now),
                     weekly_mqls=weekly_mqls(conn, now), funnel=funnel(conn))
