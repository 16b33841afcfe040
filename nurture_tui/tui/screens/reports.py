"""Reports: the funnel by stage (live) and engagement by day; the full report set (progression,
time-to-opportunity, influence, per-email stats) arrives with the reports area and says so here."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Label

from ...reports.dashboard import daily_engagement, funnel
from .base import NotLanded, NurtureScreen


class ReportsScreen(NurtureScreen):
    CSS_PATH = "reports.tcss"
    TITLE = "Reports"
    AREA = "reports"
    HELP = "The funnel by stage and engagement per day on the workspace clock, refreshed every 10 s (`R`: now)."
    RESULTS: ClassVar[dict[str, str]] = {"reports.load": "show"}
    POLL_GROUP = "reports.load"
    POLL_SECONDS = 10.0

    def compose_body(self) -> ComposeResult:
        yield Label("Funnel by stage", classes="section-title")
        yield DataTable(id="funnel", cursor_type="row")
        yield Label("Engagement per day (last 14 days)", classes="section-title")
        yield DataTable(id="daily", cursor_type="row", zebra_stripes=True)
        yield NotLanded("Progression, time-to-opportunity, influence and per-email reports",
                        "They arrive with the reports area (`nurture report …`).")

    def on_mount(self) -> None:
        funnel_table = self.query_one("#funnel", DataTable)
        for title, width in (("Stage", 14), ("Leads", 10), ("Share", 7)):
            funnel_table.add_column(title, width=width)
        daily = self.query_one("#daily", DataTable)
        for title, width in (("Day", 6), ("Sent", 8), ("Opened", 8), ("Clicked", 8), ("Open %", 7), ("Click %", 7)):
            daily.add_column(title, width=width)
        self.query_one("#funnel", DataTable).focus()
        self.load()

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="reports.load", exit_on_error=False, description="Reports")
    def _load(self) -> tuple[Any, Any]:
        with self.ctx.read() as conn:
            return funnel(conn), daily_engagement(conn, self.ctx.now())

    def show(self, result: tuple[Any, Any]) -> None:
        stages, daily = result
        table = self.query_one("#funnel", DataTable)
        cursor = table.cursor_row
        table.clear()
        total = sum(n for _s, n in stages) or 1
        for stage, n in stages:
            table.add_row(stage, f"{n:,}", f"{100 * n / total:.1f}%")
        table.move_cursor(row=cursor)
        table = self.query_one("#daily", DataTable)
        table.clear()
        for i, day in enumerate(daily.labels):
            sent, opened, clicked = (daily.values[k][i] for k in ("sent", "open", "click"))
            table.add_row(day, f"{sent:,}", f"{opened:,}", f"{clicked:,}",
                          f"{100 * opened / sent:.1f}%" if sent else "—",
                          f"{100 * clicked / sent:.1f}%" if sent else "—")
