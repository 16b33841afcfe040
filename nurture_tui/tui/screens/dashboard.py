"""Dashboard: KPI tiles and charts (sends/opens/clicks per day, MQLs per week, funnel by stage), refreshed
live by a poll worker that re-arms its timer; tiles and charts update in place, so nothing flickers."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from ...console.reports import Dashboard
from ..keymap import bind
from ..widgets.dashboard.kpi import KpiTile
from .base import NurtureScreen

TILES = (
    ("leads", "Leads"), ("active", "Active enrollments"), ("due", "Due next hour"), ("sent", "Sent today"),
    ("opened", "Opened today"), ("clicked", "Clicked today"), ("mqls", "MQLs today"), ("sync", "Salesforce sync"),
)


class DashboardScreen(NurtureScreen):
    CSS_PATH = "dashboard.tcss"
    TITLE = "Dashboard"
    AREA = "dashboard"
    HELP = "Today's numbers on the workspace clock, refreshed every two seconds. `p` pauses the refresh."
    POLL_GROUP = "dashboard.load"
    POLL_SECONDS = 2.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("p", "toggle_pause", "Pause", "dashboard.pause"),
    ]

    @dataclass
    class Loaded(Message, bubble=False):
        data: Dashboard
        charts: ModuleType  # the charts module, imported in the worker (plotext is slow to import)

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="kpis"):
            for key, label in TILES[:4]:
                yield KpiTile(label, id=f"kpi-{key}")
        with Horizontal(classes="kpis"):
            for key, label in TILES[4:]:
                yield KpiTile(label, id=f"kpi-{key}")
        with Horizontal(id="charts"):
            yield Static("loading charts…", id="charts-placeholder")

    def on_mount(self) -> None:
        self.load()

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="dashboard.load", exit_on_error=False, description="Dashboard")
    def _load(self) -> None:
        from ..widgets.dashboard import charts  # plotext loads here, off the UI thread, after the first paint

        self.post_result(self.Loaded(self.console.reports.dashboard(), charts))

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        data, charts = message.data, message.charts
        k = data.kpis
        values: dict[str, Any] = {
            "leads": k.leads, "active": k.active_enrollments, "due": k.due_next_hour, "sent": k.sent_today,
            "opened": k.opened_today, "clicked": k.clicked_today, "mqls": k.mqls_today, "sync": k.sync.label,
        }
        for key, value in values.items():
            self.query_one(f"#kpi-{key}", KpiTile).set_value(value)
        box = self.query_one("#charts", Horizontal)
        if not box.query("#chart-engagement"):
            box.query("#charts-placeholder").remove()
            box.mount(charts.EngagementChart("Sent / opened / clicked per day", id="chart-engagement"),
                      charts.MqlChart("MQLs per week", id="chart-mql"),
                      charts.FunnelChart("Funnel by stage", id="chart-funnel"))
            self.call_after_refresh(self._draw, data)
        else:
            self._draw(data)

    def _draw(self, data: Dashboard) -> None:
        self.query_one("#chart-engagement").show(data.daily)  # type: ignore[attr-defined]
        self.query_one("#chart-mql").show(data.weekly_mqls)  # type: ignore[attr-defined]
        self.query_one("#chart-funnel").show(data.funnel)  # type: ignore[attr-defined]
