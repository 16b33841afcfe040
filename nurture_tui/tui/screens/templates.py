"""Templates: the list and a rendered preview of the highlighted one (subject + text body, every merge
field filled with a placeholder value so missing data shows). `n` / `e` open the template editor
(template_editor.py), `c` duplicates, `d` deletes (refused while a sequence sends it), `t` sends a test."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from ...console.templates import TemplateInfo, TemplatePreview, addresses_problem
from ..keymap import bind
from .base import Column, ListScreen
from .dialogs.confirm import ConfirmModal
from .dialogs.prompt import PromptModal


class TemplatesScreen(ListScreen[TemplateInfo]):
    CSS_PATH = "templates.tcss"
    TITLE = "Templates"
    AREA = "templates"
    HELP = ("Email templates and a rendered preview of the highlighted one. Merge fields are filled with "
            "placeholder values (`lead.first_name` shows as `lead.first_name`). `n` creates a template and "
            "`e` (or `enter`) edits one in the template editor; `c` duplicates it under a new name, `d` deletes "
            "it (refused while a sequence sends it), `t` sends a test message to an address you type.")
    COLUMNS = (Column("name", "Template", 26), Column("category", "Category", 12), Column("stage", "Stage", 13),
               Column("ver", "Ver", 4))
    EMPTY = "No templates yet: `nurture sequences apply FILE` adds the templates a sequence file declares."
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("tab", "app.focus_next", "Switch pane", "templates.switch_pane", show=False),
        bind("n", "new", "New", "templates.new"),
        bind("e", "edit", "Edit", "templates.edit"),
        bind("c", "duplicate", "Duplicate", "templates.duplicate"),
        bind("d", "delete", "Delete", "templates.delete"),
        bind("t", "test_send", "Test send", "templates.test_send"),
    ]

    @dataclass
    class PreviewReady(Message, bubble=False):
        preview: TemplatePreview

    def __init__(self) -> None:
        super().__init__()
        self.previewing: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="list-pane"):
                yield from self.compose_list()
            with VerticalScroll(id="preview-box"):
                yield Static("", id="preview")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("new", "duplicate", "delete", "test_send"):
            return self.write_state()
        return True

    def data_changed(self, what: str) -> None:
        if what == self.AREA:
            self.previewing = None  # the highlighted template may have a new version
            self.load()

    def fetch(self) -> list[TemplateInfo]:
        return self.console.templates.list()

    def row_key(self, row: TemplateInfo) -> str:
        return row.name

    def cells(self, r: TemplateInfo) -> tuple[RenderableType, ...]:
        return (r.name, r.category, r.stage or "", f"v{r.version}")

    def search_text(self, r: TemplateInfo) -> tuple[object, ...]:
        return (r.name, r.category, r.stage, r.subject)

    def rows_shown(self) -> None:
        row = self.current()
        if row is not None and row.name != self.previewing:
            self.previewing = row.name
            self._preview(row.name)

    @work(thread=True, exclusive=True, group="templates.preview", exit_on_error=False, description="Preview")
    def _preview(self, name: str) -> None:
        self.post_result(self.PreviewReady(self.console.templates.preview(name)))

    @on(PreviewReady)
    def show_preview(self, message: PreviewReady) -> None:
        p = message.preview
        self.query_one("#preview", Static).update(Text.assemble(
            (f"{p.name}", "bold"), f"  v{p.version}\n", ("Subject: ", "dim"), (p.subject, "bold"), "\n\n", p.body))

    # -- the editor and the writes ------------------------------------------------------------------

    def action_new(self) -> None:
        from .template_editor import TemplateEditorScreen

        self.app.push_screen(TemplateEditorScreen())

    def action_edit(self) -> None:
        from .template_editor import TemplateEditorScreen

        row = self.current()
        if row is not None:
            self.app.push_screen(TemplateEditorScreen(row.name))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def action_duplicate(self) -> None:
        self._duplicate()

    @work(exclusive=True, group="templates.write", exit_on_error=False, description="Duplicate template")
    async def _duplicate(self) -> None:
        row = self.current()
        if row is None:
            return
        new_name = await self.app.push_screen_wait(PromptModal(
            f"Duplicate {row.name} as:", "a new template name", value=f"{row.name}-copy"))
        if not new_name:
            return
        saved = await asyncio.to_thread(self.console.templates.duplicate, row.name, new_name)
        self.notify(f"duplicated {row.name} as {saved.name}")
        self.nurture.data_changed(self.AREA)

    def action_delete(self) -> None:
        self._delete()

    @work(exclusive=True, group="templates.write", exit_on_error=False, description="Delete template")
    async def _delete(self) -> None:
        row = self.current()
        if row is None:
            return
        users = await asyncio.to_thread(self.console.templates.users, row.name)
        if users:
            self.notify(f"{row.name} is sent by {', '.join(users[:3])}; remove it from those sequences first",
                        title="Not deleted", severity="warning", timeout=8)
            return
        if not await self.app.push_screen_wait(ConfirmModal(
                f"Delete template {row.name}?", f"{row.name} (v{row.version}, {row.category}) and all its saved "
                "versions are deleted. No sequence sends it.", confirm_label="Delete", destructive=True)):
            return
        await asyncio.to_thread(self.console.templates.delete, row.name)
        self.notify(f"deleted {row.name}")
        self.nurture.data_changed(self.AREA)

    def action_test_send(self) -> None:
        self._test_send()

    @work(exclusive=True, group="templates.write", exit_on_error=False, description="Test send")
    async def _test_send(self) -> None:
        row = self.current()
        if row is None:
            return
        address = await self.app.push_screen_wait(PromptModal(
            f"Send a test of {row.name} (placeholder values) to:", "you@example.com",
            validate=addresses_problem, value=self.console.templates.seed_list()))
        if address:
            to = await asyncio.to_thread(self.console.templates.send_test, row.name, address)
            self.notify(f"test of {row.name} sent to {to} (marked as a test; not counted)")
