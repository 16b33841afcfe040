"""Reports and the dashboard: KPIs, engagement per day, MQLs per week, the funnel by stage."""

from __future__ import annotations

from ..reports.dashboard import Dashboard, Series, daily_engagement, funnel, load_dashboard
from .session import ConsoleSession

__all__ = ["Dashboard", "ReportsConsole", "Series"]


class ReportsConsole:
    AREA = "reports"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def dashboard(self) -> Dashboard:
        with self.session.read() as conn:
            return load_dashboard(conn, self.session.now())

    def funnel_and_daily(self) -> tuple[list[tuple[str, int]], Series]:
        with self.session.read() as conn:
            return funnel(conn), daily_engagement(conn, self.session.now())
