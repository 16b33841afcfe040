"""Lead detail: fields, score and grade with a history sparkline, activity timeline, enrollments with
current node and next due time, MQL status, Salesforce id and sync state."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Sparkline, Static

from ...leads.queries import LeadDetail, lead_detail
from ..keymap import bind
from .base import NurtureScreen


def _when(dt: Any) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "—"


class LeadDetailScreen(NurtureScreen):
    CSS_PATH = "lead_detail.tcss"
    TITLE = "Lead"
    AREA = "leads"
    HELP = "One lead: who they are, how their score moved, what they did, and where they are in each sequence."
    POLL_GROUP = "lead.detail"
    POLL_SECONDS = 3.0
    RESULTS: ClassVar[dict[str, str]] = {"lead.detail": "show"}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "app.pop_screen", "Back", "lead.back"),
        bind("tab", "app.focus_next", "Next table", "lead.next_table", show=False),
    ]

    def __init__(self, lead_id: int) -> None:
        super().__init__()
        self.lead_id = lead_id
        self.detail: LeadDetail | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static("loading…", id="fields")
            with Vertical(id="side"):
                yield Static("", id="score")
                yield Label("score history", classes="muted", id="spark-label")
                yield Sparkline([], id="spark")
                yield Static("", id="mql")
                yield Static("", id="salesforce")
        yield Label("Enrollments", classes="section-title")
        yield DataTable(id="enrollments", cursor_type="row", zebra_stripes=True)
        yield Label("Activity", classes="section-title")
        yield DataTable(id="timeline", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        enrollments = self.query_one("#enrollments", DataTable)
        for title, width in (("Sequence", 24), ("Ver", 4), ("Node", 18), ("Status", 8), ("Next due", 16),
                             ("Entered", 16)):
            enrollments.add_column(title, width=width)
        timeline = self.query_one("#timeline", DataTable)
        for title, width in (("When", 16), ("Kind", 12), ("Detail", 80)):
            timeline.add_column(title, width=width)
        self.query_one("#timeline", DataTable).focus()
        self.load()

    def load(self) -> None:
        self._load(self.lead_id)

    @work(thread=True, exclusive=True, group="lead.detail", exit_on_error=False, description="Loading lead")
    def _load(self, lead_id: int) -> LeadDetail | None:
        ctx = self.ctx
        with ctx.read() as conn:
            return lead_detail(conn, lead_id, scale=ctx.scale(conn), now=ctx.now())

    def show(self, d: LeadDetail | None) -> None:
        if d is None:
            self.query_one("#fields", Static).update(f"lead {self.lead_id} no longer exists")
            return
        first = self.detail is None
        self.detail = d
        text = Text()
        text.append(f"{d.name}\n", style="bold")
        text.append(f"{d.email}\n\n", style="underline")
        for label, value in d.fields:
            text.append(f"{label:>14}  ", style="dim")
            text.append(f"{value}\n")
        self.query_one("#fields", Static).update(text)
        self.query_one("#score", Static).update(Text.assemble(
            ("Score ", "dim"), (f"{d.score:.0f}", "bold"), ("   ", ""), ("Grade ", "dim"), (d.grade, "bold")))
        spark = self.query_one("#spark", Sparkline)
        spark.data = d.score_history if len(d.score_history) > 1 else []
        self.query_one("#spark-label", Label).update(
            f"score history ({len(d.score_history) - 1} changes)" if len(d.score_history) > 1
            else "score history: no changes recorded yet")
        if d.mqls:
            m = d.mqls[0]
            mql = f"MQL: {m.status} since {_when(m.created_at)} (score {m.score:.0f} {m.grade})"
            if m.reason:
                mql += f"\n  reason: {m.reason}"
        else:
            mql = "MQL: not qualified"
        self.query_one("#mql", Static).update(mql)
        sf = f"Salesforce: {d.sf_type or 'Lead'} {d.sf_id}" if d.sf_id else "Salesforce: not linked yet"
        instance = self.ctx.ws.settings.salesforce.instance_url
        if d.sf_id and instance:
            sf += f"\n  {instance.rstrip('/')}/{d.sf_id}"
        sf += f"\n  sync: {d.sf_pending} pending" if d.sf_pending else "\n  sync: up to date"
        for err in d.sf_errors:
            sf += f"\n  ! {err}"
        self.query_one("#salesforce", Static).update(sf)
        enr = self.query_one("#enrollments", DataTable)
        enr.clear()
        for e in d.enrollments:
            enr.add_row(e.sequence, f"v{e.version}", e.node_id, e.status, _when(e.due_at), _when(e.entered_at))
        tl = self.query_one("#timeline", DataTable)
        row = tl.cursor_row
        tl.clear()
        for a in d.timeline:
            tl.add_row(_when(a.at), a.kind, a.detail[:120])
        if not first and d.timeline:
            tl.move_cursor(row=min(row, len(d.timeline) - 1))
