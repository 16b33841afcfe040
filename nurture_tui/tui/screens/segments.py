"""Segments: saved segments with their rule and a live count (counted in a worker, one at a time);
`enter` opens the Leads list filtered to the segment."""

from __future__ import annotations

import asyncio
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
from .dialogs.confirm import ConfirmModal
from .dialogs.prompt import PromptModal
from .segment_editor import SegmentEditorScreen


class SegmentsScreen(ListScreen[SegmentInfo]):
    CSS_PATH = "segments.tcss"
    TITLE = "Segments"
    AREA = "segments"
    HELP = ("Saved segments with a live count of matching leads (recounted every 30 seconds). `n` builds a new "
            "segment, `e` or `enter` edits the highlighted one in the builder, `c` copies it, `R` renames it, "
            "`d` deletes it (refused while a sequence or another segment uses it), `l` lists its leads.")
    COLUMNS = (Column("name", "Segment", 26), Column("count", "Live count", 11), Column("cached", "Cached", 10),
               Column("rule", "Rule", 70))
    TABLE_ID = "segments"
    EMPTY = "No saved segments yet: `nurture segments save NAME RULE` adds one."
    POLL_GROUP = "segments.count"
    POLL_SECONDS = 30.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("n", "new", "New", "segments.new"),
        bind("e,enter", "edit", "Edit", "segments.edit"),
        bind("c", "copy", "Copy", "segments.copy"),
        bind("R", "rename", "Rename", "segments.rename"),
        bind("d", "delete", "Delete", "segments.delete"),
        bind("l", "open", "Leads", "segments.open"),
    ]

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
        return self.console.segments.all()

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
        self.query_one("#detail", Static).update(f"{row.name}: enter edits, l lists its leads" if row else "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("new", "copy", "rename", "delete"):
            return self.write_state()
        return True

    def data_changed(self, what: str) -> None:
        if what == "segments":
            self.load()

    def action_new(self) -> None:
        self.app.push_screen(SegmentEditorScreen())

    def action_edit(self) -> None:
        row = self.current()
        if row is not None:
            self.app.push_screen(SegmentEditorScreen(row))

    @work(exclusive=True, group="segments.write", exit_on_error=False, description="Copy segment")
    async def action_copy(self) -> None:
        row = self.current()
        if row is None:
            return
        new = await self.app.push_screen_wait(PromptModal(f"Copy {row.name} as", "new name",
                                                          value=f"{row.name} (copy)"))
        if new:
            await asyncio.to_thread(self.console.segments.duplicate, row.name, new)
            self.notify(f"copied {row.name} to {new}")
            self.nurture.data_changed("segments")

    @work(exclusive=True, group="segments.write", exit_on_error=False, description="Rename segment")
    async def action_rename(self) -> None:
        row = self.current()
        if row is None:
            return
        new = await self.app.push_screen_wait(PromptModal(f"Rename {row.name} to", "new name", value=row.name))
        if not new or new == row.name:
            return
        result = await asyncio.to_thread(self.console.segments.rename, row.name, new)
        updated = [*result.segments, *(f"sequence {n} (draft)" for n in result.sequences)]
        self.notify(f"renamed {row.name} to {result.new}" + (f"; updated {', '.join(updated)}" if updated else ""))
        self.nurture.data_changed("segments")

    @work(exclusive=True, group="segments.write", exit_on_error=False, description="Delete segment")
    async def action_delete(self) -> None:
        row = self.current()
        if row is None:
            return
        ok = await self.app.push_screen_wait(ConfirmModal(
            f"Delete the segment {row.name}?", f"{row.rendering}\n\nRefused while a sequence or another segment "
            f"uses it. Audited as {self.session.operator.username}.", confirm_label="Delete", destructive=True))
        if ok:
            await asyncio.to_thread(self.console.segments.delete, row.name)
            self.notify(f"deleted {row.name}")
            self.nurture.data_changed("segments")

    def action_open(self) -> None:
        row = self.current()
        if row is None:
            return
        from .leads import LeadsScreen

        quoted = row.name.replace('"', '')  # quick syntax quotes the name
        self.app.push_screen(LeadsScreen(query_text=f'seg:"{quoted}"'))
