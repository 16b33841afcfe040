"""Lead detail: fields, score and grade with a history sparkline, activity timeline, enrollments with
current node and next due time, MQL status, consent per category, Salesforce id and sync state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Label, Sparkline, Static

from ...console.leads import LeadDetail
from ..keymap import bind
from ..widgets.common.keyed_table import KeyedTable
from .base import NurtureScreen

#: The timeline's Detail column: the screen's width less When (16), Kind (12), the cell padding and the
#: scrollbar; never narrower than MIN_DETAIL.
DETAIL_MARGIN = 36
MIN_DETAIL = 30


def _when(dt: Any) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "—"


class LeadDetailScreen(NurtureScreen):
    CSS_PATH = "lead_detail.tcss"
    TITLE = "Lead"
    AREA = "leads"
    HELP = "One lead: who they are, how their score moved, what they did, and where they are in each sequence."
    POLL_GROUP = "lead.detail"
    POLL_SECONDS = 3.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "app.pop_screen", "Back", "lead.back"),
        bind("tab", "app.focus_next", "Next table", "lead.next_table", show=False),
    ]

    @dataclass
    class Loaded(Message, bubble=False):
        detail: LeadDetail | None

    def __init__(self, lead_id: int) -> None:
        super().__init__()
        self.lead_id = lead_id
        self.detail: LeadDetail | None = None
        self._detail_width = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="top"):
            with VerticalScroll(id="fields-box"):  # scrolls (tab, then arrows) when the screen is short
                yield Static("loading…", id="fields")
            with VerticalScroll(id="side"):
                yield Static("", id="score")
                yield Label("score history", classes="muted", id="spark-label")
                yield Sparkline([], id="spark")
                yield Static("", id="mql")
                yield Static("", id="consent")
                yield Static("", id="salesforce")
        yield Label("Enrollments", classes="section-title")
        yield KeyedTable(id="enrollments", cursor_type="row", zebra_stripes=True)
        yield Label("Activity", classes="section-title")
        yield DataTable(id="timeline", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        enrollments = self.query_one("#enrollments", DataTable)
        for title, width in (("Sequence", 24), ("Ver", 4), ("Node", 18), ("Status", 8), ("Next due", 16),
                             ("Entered", 16)):
            enrollments.add_column(title, width=width)
        self._timeline_columns()
        self.query_one("#timeline", DataTable).focus()
        self.load()

    def _timeline_columns(self) -> bool:
        """(Re)build the timeline's columns when the Detail column's width changes: it takes the screen's
        width after When and Kind, so a long detail (an adaptive decision's explanation) wraps instead of
        being cut. True when the columns were rebuilt (the rows must be added again)."""
        width = max(MIN_DETAIL, self.app.size.width - DETAIL_MARGIN)
        if width == self._detail_width:
            return False
        self._detail_width = width
        timeline = self.query_one("#timeline", DataTable)
        timeline.clear(columns=True)
        for title, w in (("When", 16), ("Kind", 12), ("Detail", width)):
            timeline.add_column(title, width=w)
        return True

    def on_resize(self) -> None:
        if self._timeline_columns() and self.detail is not None:
            self._fill_timeline(self.detail, first=True)

    def load(self) -> None:
        self._load(self.lead_id)

    @work(thread=True, exclusive=True, group="lead.detail", exit_on_error=False, description="Loading lead")
    def _load(self, lead_id: int) -> None:
        self.post_result(self.Loaded(self.console.leads.detail(lead_id)))

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        d = message.detail
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
        text.rstrip()  # no blank last line: at 22 rows the panel fits the fields exactly
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
        self.query_one("#consent", Static).update(
            "Consent: " + ("none recorded" if not d.consent else "".join(f"\n  {line}" for line in d.consent)))
        sf = f"Salesforce: {d.sf_type or 'Lead'} {d.sf_id}" if d.sf_id else "Salesforce: not linked yet"
        url = self.console.leads.salesforce_url(d.sf_id) if d.sf_id else None
        if url:
            sf += f"\n  {url}"
        sf += f"\n  sync: {d.sf_pending} pending" if d.sf_pending else "\n  sync: up to date"
        for err in d.sf_errors:
            sf += f"\n  ! {err}"
        self.query_one("#salesforce", Static).update(sf)
        self.query_one("#enrollments", KeyedTable).apply(
            {f"{e.sequence}:v{e.version}:{i}": (e.sequence, f"v{e.version}", e.node_id, e.status, _when(e.due_at),
                                               _when(e.entered_at)) for i, e in enumerate(d.enrollments)})
        self._fill_timeline(d, first)

    def _fill_timeline(self, d: LeadDetail, first: bool) -> None:
        """Every entry whole: the detail wraps over as many lines as it needs (height=None)."""
        tl = self.query_one("#timeline", DataTable)
        row = tl.cursor_row
        tl.clear()
        for a in d.timeline:
            tl.add_row(_when(a.at), a.kind, Text(a.detail), height=None)
        if not first and d.timeline:
            tl.move_cursor(row=min(row, len(d.timeline) - 1))
