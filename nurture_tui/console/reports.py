"""Reports and the dashboard: KPIs, the funnel by stage, sent/opened/clicked per send day (per cohort), and
every report of `nurture report` (`reports.service`) for the Reports screen."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..errors import ValidationError
from ..reports.common import Report, parse_day
from ..reports.dashboard import Dashboard, Series, funnel, load_dashboard
from ..reports.emails import daily_series
from ..reports.render import as_csv
from ..reports.service import REPORTS, report_on
from .session import ConsoleSession

__all__ = ["Dashboard", "Report", "ReportsConsole", "Series", "parse_day"]


class ReportsConsole:
    AREA = "reports"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def dashboard(self) -> Dashboard:
        with self.session.read() as conn:
            return load_dashboard(conn, self.session.now())

    def funnel_and_daily(self) -> tuple[list[tuple[str, int]], Series]:
        """The funnel by stage, and the last 14 send days: `open`/`click` count the messages sent that day
        that were opened/clicked, so opened / sent is a rate of that day's cohort (≤ 100 %)."""
        with self.session.read() as conn:
            return funnel(conn), daily_series(conn, self.session.now())

    @staticmethod
    def names() -> list[str]:
        return list(REPORTS)

    def report(self, name: str, *, since: date | None = None, until: date | None = None,
               sequence: str | None = None, segment: str | None = None) -> Report:
        """One report, as `nurture report` prints it (a `ValidationError` for a bad name or period)."""
        with self.session.read() as conn:
            return report_on(conn, self.session.settings, name, self.session.now(), since=since, until=until,
                             sequence=sequence, segment=segment)

    @staticmethod
    def export_csv(report: Report, path: str) -> Path:
        """Write `report` as `nurture report --format csv` does (`~` expanded; a missing folder or an unwritable
        file is a `ValidationError`). Returns the absolute path written."""
        target = Path(path).expanduser().resolve()
        try:
            target.write_text(as_csv(report), encoding="utf-8")
        except OSError as exc:
            raise ValidationError("export", f"cannot write {target}: {exc.strerror or exc}") from None
        return target
