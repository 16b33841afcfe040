"""Segments: saved segments with their rule and a live count (counted in a worker, one at a time);
`enter` opens the Leads list filtered to the segment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from ...console.segments import SegmentInfo
from ..keymap import bind
from .base import Column, ListScreen


class SegmentsScreen(ListScreen[SegmentInfo]):
    CSS_PATH = "segments.tcss"
    TITLE = "Segments"
    AREA = "segments"
    HELP = ("Saved segments with a live count of matching leads (recounted every 30 seconds). `enter` shows "
            "the segment's leads. Build and change segments with `nurture segments save` (the CLI).")
    COLUMNS = (Column("name", "Segment", 26), Column("count", "Live count", 11), Column("cached", "Cached", 10),
               Column("rule", "Rule", 70))
    TABLE_ID = "segments"
    EMPTY = "No saved segments yet: `nurture segments save NAME RULE` adds one."
    POLL_GROUP = "segments.count"
    POLL_SECONDS = 30.0
    BINDINGS: ClassVar[list[BindingType]] = [bind("enter", "open", "Show leads", "segments.open")]

    @dataclass
    class Counted(Message, bubble=False):
        name: str
        count: int

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def compose_body(self) -> ComposeResult:
        yield from self.compose_list()
        yield Static("", id="detail")

    def fetch(self) -> list[SegmentInfo]:
        return self.console.segments.list()

    def row_key(self, row: SegmentInfo) -> str:
        return row.name

    def cells(self, row: SegmentInfo) -> tuple[RenderableType, ...]:
        count = self.counts.get(row.name)
        cached = f"{row.cached_count:,}" if row.cached_count is not None else "—"
        return (row.name, f"{count:,}" if count is not None else "…", cached, row.rendering)

    def search_text(self, row: SegmentInfo) -> tuple[object, ...]:
        return (row.name, row.description, row.rendering)

    @on(ListScreen.RowsLoaded)
    def _count_loaded(self, message: ListScreen.RowsLoaded) -> None:
        self._count([r.name for r in message.rows])

    @work(thread=True, exclusive=True, group="segments.count", exit_on_error=False, description="Counting segments")
    def _count(self, names: list[str]) -> None:
        worker = get_current_worker()
        for name in names:
            if worker.is_cancelled:
                return
            self.post_result(self.Counted(name, self.console.segments.live_count(name)))

    @on(Counted)
    def _counted(self, msg: Counted) -> None:
        self.counts[msg.name] = msg.count
        table = self.table
        if msg.name in table.rows:
            table.update_cell(msg.name, "count", f"{msg.count:,}")

    def rows_shown(self) -> None:
        row = self.current()
        self.query_one("#detail", Static).update(f"{row.name}: enter lists its leads" if row else "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.current()
        if row is None:
            return
        from .leads import LeadsScreen

        quoted = row.name.replace('"', '')  # quick syntax quotes the name
        self.app.push_screen(LeadsScreen(query_text=f'seg:"{quoted}"'))
