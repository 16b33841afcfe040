"""Reports: every report of `nurture report` (`console.reports`) as a table and a chart, with filters
(period, sequence, segment) and CSV export. `[`/`]` (or the tabs) pick the report, `p` cycles the period,
`/` opens the filter form, `e` exports what is shown; the report reloads every 30 s as a keyed diff. A report
with a `why` column (adaptive decisions) shows the cursor row's explanation whole under the table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable, Static, Tab, Tabs

from ...console.reports import Report, ReportsConsole, parse_day
from ..keymap import bind
from ..report_views import chart_for, table_columns
from ..widgets.charts.spec import ChartSpec
from ..widgets.charts.widget import ReportChart
from ..widgets.common.keyed_table import KeyedTable
from .base import NurtureScreen
from .dialogs.report_filter import ReportFilterModal, ReportFilters

#: Periods `p` cycles through (days up to today); 90 is the reports' default period.
PERIODS = (90, 7, 30, 365)
#: Widest table column (longer cells are cut; the CSV export has them whole).
MAX_COLUMN = 40


def _day(value: str, what: str) -> date | None:
    return parse_day(value, what) if value else None


def _cell(value: Any) -> Text:
    """A table cell: numbers right-aligned with thousands separators, a missing rate as `—`."""
    if value is None:
        return Text("—", justify="right")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Text(str(value))
    if isinstance(value, float) and not value.is_integer():
        return Text(f"{value:,.2f}".rstrip("0").rstrip("."), justify="right")
    return Text(f"{value:,.0f}", justify="right")


class ReportsScreen(NurtureScreen):
    CSS_PATH = "reports.tcss"
    TITLE = "Reports"
    AREA = "reports"
    HELP = ("Every report of `nurture report` as a table and a chart: `[` `]` or the tabs pick the report, `p` "
            "cycles the period (7, 30, 365, 90 days), `/` sets since/until, sequence and segment, `c` clears "
            "them, `e` exports the report as CSV to a path (the same CSV as `nurture report --format csv`). "
            "Reloads every 30 s (`R`: now). The adaptive report shows the cursor row's `why` whole under the "
            "table. Definitions: docs/reports.md.")
    POLL_GROUP = "reports.load"
    POLL_SECONDS = 30.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("right_square_bracket", "step(1)", "Next report", "reports.next", key_display="]"),
        bind("left_square_bracket", "step(-1)", "Previous report", "reports.previous", key_display="["),
        bind("p", "cycle_period", "Period", "reports.period"),
        bind("slash", "filter", "Filter", "reports.filter", key_display="/"),
        bind("c", "clear_filters", "Clear filters", "reports.clear_filters", show=False),
        bind("e", "export", "Export CSV", "reports.export"),
    ]

    @dataclass
    class Loaded(Message, bubble=False):
        report: Report
        filters: ReportFilters

    def __init__(self) -> None:
        super().__init__()
        self.names = ReportsConsole.names()
        self.current = self.names[0]
        self.filters = ReportFilters()
        self.report: Report | None = None
        self._layout: list[tuple[str, int]] = []  # the table's columns and widths
        self.period_step = 0  # index in PERIODS of what `p` last chose

    def compose_body(self) -> ComposeResult:
        yield Tabs(*[Tab(name, id=f"tab-{name}") for name in self.names], id="report-tabs")
        yield Static("", id="filters")
        yield KeyedTable(id="report", cursor_type="row", zebra_stripes=True)
        yield Static("", id="why")
        yield ReportChart(id="chart")
        yield Static("", id="summary")

    def on_mount(self) -> None:
        self.query_one("#report", KeyedTable).focus()
        self.load()

    # -- loading ----------------------------------------------------------------------------------------

    def load(self) -> None:
        self._load(self.current, self.filters)

    @work(thread=True, exclusive=True, group="reports.load", exit_on_error=False, description="Report")
    def _load(self, name: str, filters: ReportFilters) -> None:
        report = self.console.reports.report(
            name, since=_day(filters.since, "since"), until=_day(filters.until, "until"),
            sequence=filters.sequence or None, segment=filters.segment or None)
        self.post_result(self.Loaded(report, filters))

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        report = message.report
        if report.name != self.current:
            return  # a load of a report the user has since left
        self.report, self.filters = report, message.filters
        self._fill_table(report)
        self._show_why()
        self.query_one("#chart", ReportChart).show(chart_for(report))
        self.query_one("#filters", Static).update(Text(self.filters.describe(report.period.label)))
        lines = report.summary or ([report.empty_reason] if report.empty_reason else [])
        self.query_one("#summary", Static).update(Text("\n".join(f"» {line}" for line in lines)))

    def _fill_table(self, report: Report) -> None:
        """Rows as a keyed diff; the columns (and their widths, from the widest cell) are rebuilt only when
        they change — another report, or a value wider than its column."""
        table = self.query_one("#report", KeyedTable)
        columns = table_columns(report)
        cells = {str(i): tuple(_cell(row.get(c)) for c in columns) for i, row in enumerate(report.rows)}
        layout = [(c, min(MAX_COLUMN, max([len(c), *(len(r[j].plain) for r in cells.values())])))
                  for j, c in enumerate(columns)]
        if layout != self._layout:
            table.clear(columns=True)
            for column, width in layout:
                table.add_column(column, key=column, width=width)
            self._layout = layout
        table.apply(cells)

    @on(DataTable.RowHighlighted, "#report")
    def _show_why(self) -> None:
        """A report with a `why` column (adaptive: each decision's explanation) shows the cursor row's whole,
        wrapped under the table (the table cuts long cells at MAX_COLUMN)."""
        why = self.query_one("#why", Static)
        report = self.report
        key = self.query_one("#report", KeyedTable).cursor_key()
        if report is None or "why" not in report.columns or key is None or int(key) >= len(report.rows):
            why.display = False
            return
        why.display = True
        why.update(Text.assemble(("why ", "bold"), str(report.rows[int(key)].get("why") or "")))

    # -- picking the report ------------------------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        self.query_one(Tabs).active = f"tab-{self.names[(self.names.index(self.current) + delta) % len(self.names)]}"

    @on(Tabs.TabActivated, "#report-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        name = (event.tab.id or "").removeprefix("tab-")
        if name and name != self.current:
            self.current = name
            self.query_one("#chart", ReportChart).show(ChartSpec("bars", name, [], empty="loading…"))
            self.load()

    # -- filters and export ------------------------------------------------------------------------------

    def action_cycle_period(self) -> None:
        self.period_step = (self.period_step + 1) % len(PERIODS)
        days = PERIODS[self.period_step]
        since = "" if days == PERIODS[0] else (self.session.now().date() - timedelta(days=days - 1)).isoformat()
        self.notify(f"last {days} days", timeout=2)
        self._load(self.current, replace(self.filters, since=since, until=""))

    def action_clear_filters(self) -> None:
        self._load(self.current, ReportFilters())

    @work(exclusive=True, group="reports.dialog", exit_on_error=False, description="Report filters")
    async def action_filter(self) -> None:
        filters = await self.app.push_screen_wait(ReportFilterModal(self.filters))
        if filters is not None:
            self._load(self.current, filters)

    @work(exclusive=True, group="reports.dialog", exit_on_error=False, description="Export CSV")
    async def action_export(self) -> None:
        from .dialogs.prompt import PromptModal

        report = self.report
        if report is None or report.name != self.current:
            self.notify("the report is still loading")
            return
        default = f"nurture-{report.name}-{(report.period.until - timedelta(days=1)):%Y-%m-%d}.csv"
        path = await self.app.push_screen_wait(PromptModal(f"Export {report.title} as CSV to", "a file path",
                                                           value=default))
        if not path:
            return
        written = await asyncio.to_thread(self.console.reports.export_csv, report, path)
        self.notify(f"wrote {len(report.rows):,} rows to {written}", title="Export CSV")
