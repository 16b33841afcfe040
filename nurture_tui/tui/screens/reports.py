"""Reports: the funnel by stage and engagement per day, refreshed live as keyed diffs."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Label

from ...console.reports import Series
from ..widgets.common.keyed_table import KeyedTable
from .base import NurtureScreen


class ReportsScreen(NurtureScreen):
    CSS_PATH = "reports.tcss"
    TITLE = "Reports"
    AREA = "reports"
    HELP = ("The funnel by stage and engagement per day on the workspace clock, refreshed every 10 s (`R`: now). "
            "Every report is also printed by the CLI for scripts.")
    POLL_GROUP = "reports.load"
    POLL_SECONDS = 10.0

    @dataclass
    class Loaded(Message, bubble=False):
        funnel: list[tuple[str, int]]
        daily: Series

    def compose_body(self) -> ComposeResult:
        yield Label("Funnel by stage", classes="section-title")
        yield KeyedTable(id="funnel", cursor_type="row")
        yield Label("Engagement per day (last 14 days)", classes="section-title")
        yield KeyedTable(id="daily", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        funnel_table = self.query_one("#funnel", DataTable)
        for title, width in (("Stage", 14), ("Leads", 10), ("Share", 7)):
            funnel_table.add_column(title, width=width)
        daily = self.query_one("#daily", DataTable)
        for title, width in (("Day", 6), ("Sent", 8), ("Opened", 8), ("Clicked", 8), ("Open %", 7), ("Click %", 7)):
            daily.add_column(title, width=width)
        funnel_table.focus()
        self.load()

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="reports.load", exit_on_error=False, description="Reports")
    def _load(self) -> None:
        funnel, daily = self.console.reports.funnel_and_daily()
        self.post_result(self.Loaded(funnel, daily))

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        total = sum(n for _s, n in message.funnel) or 1
        self.query_one("#funnel", KeyedTable).apply(
            {stage: (stage, f"{n:,}", f"{100 * n / total:.1f}%") for stage, n in message.funnel})
        daily = message.daily
        rows = {}
        for i, day in enumerate(daily.labels):
            sent, opened, clicked = (daily.values[k][i] for k in ("sent", "open", "click"))
            rows[day] = (day, f"{sent:,}", f"{opened:,}", f"{clicked:,}",
                         f"{100 * opened / sent:.1f}%" if sent else "—",
                         f"{100 * clicked / sent:.1f}%" if sent else "—")
        self.query_one("#daily", KeyedTable).apply(rows)
