"""Segments: saved segments with their rule and a live count (counted in a worker, one at a time);
`enter` opens the Leads list filtered to the segment."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from ..keymap import bind
from .base import FilterableScreen, NotLanded, feature_available

COLUMNS = (("name", "Segment", 26), ("count", "Live count", 11), ("cached", "Cached", 10), ("rule", "Rule", 70))


class _Counted(Message, bubble=False):
    def __init__(self, name: str, count: int) -> None:
        super().__init__()
        self.name = name
        self.count = count


class SegmentsScreen(FilterableScreen):
    CSS_PATH = "segments.tcss"
    TITLE = "Segments"
    AREA = "segments"
    HELP = ("Saved segments with a live count of matching leads (recounted every 30 seconds). `enter` shows "
            "the segment's leads. Segments are edited with `nurture segments` for now.")
    POLL_GROUP = "segments.count"
    POLL_SECONDS = 30.0
    RESULTS: ClassVar[dict[str, str]] = {"segments.load": "show"}
    BINDINGS: ClassVar[list[BindingType]] = [bind("enter", "open", "Show leads", "segments.open")]

    def __init__(self) -> None:
        super().__init__()
        self.available = feature_available("nurture_tui.segments.service")
        self.names: list[str] = []
        self.last: list[Any] = []

    def compose_body(self) -> ComposeResult:
        if not self.available:
            yield NotLanded("Segments", "They arrive with the segments area (nurture_tui.segments).")
            return
        yield DataTable(id="segments", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        if not self.available:
            return
        table = self.query_one("#segments", DataTable)
        for key, title, width in COLUMNS:
            table.add_column(title, key=key, width=width)
        table.focus()
        self.load()

    def load(self) -> None:
        if self.available:
            self._load()

    @work(thread=True, exclusive=True, group="segments.load", exit_on_error=False, description="Segments")
    def _load(self) -> list[Any]:
        from ...segments.service import list_segments

        with self.ctx.read() as conn:
            return list_segments(conn)

    def show(self, segments: list[Any]) -> None:
        self.last = segments
        table = self.query_one("#segments", DataTable)
        table.clear()
        segments = [s for s in segments if self.keep(s.name, s.description, s.rendering)]
        self.names = [s.name for s in segments]
        for s in segments:
            cached = f"{s.cached_count:,}" if s.cached_count is not None else "—"
            table.add_row(s.name, "…", cached, s.rendering, key=s.name)
        if not segments:
            self.query_one("#detail", Static).update("No saved segments yet: `nurture segments save …`.")
        self._count(self.names)

    @work(thread=True, exclusive=True, group="segments.count", exit_on_error=False, description="Counting segments")
    def _count(self, names: list[str]) -> None:
        from ...segments.compiler import count
        from ...segments.service import get_segment

        ctx = self.ctx
        worker = get_current_worker()
        for name in names:
            if worker.is_cancelled:
                return
            with ctx.read() as conn:
                n = count(conn, get_segment(conn, name).rule, ctx.now(),
                          half_life_days=ctx.ws.settings.scoring.half_life_days)
            self.post_message(_Counted(name, n))

    def on__counted(self, msg: _Counted) -> None:
        table = self.query_one("#segments", DataTable)
        if msg.name in table.rows:
            table.update_cell(msg.name, "count", f"{msg.count:,}")

    def refilter(self) -> None:
        if self.available:
            self.show(self.last)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.query_one("#detail", Static).update(f"{event.row_key.value}: enter lists its leads")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        table = self.query_one("#segments", DataTable)
        if not table.row_count:
            return
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        from .leads import LeadsScreen

        quoted = (name or "").replace('"', '')  # quick syntax quotes the name
        self.app.push_screen(LeadsScreen(query_text=f'seg:"{quoted}"'))
