"""Templates: the list and a rendered preview of the highlighted one (subject + text body, every merge
field filled with a placeholder value so missing data shows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from ...console.templates import TemplateInfo, TemplatePreview
from ..keymap import bind
from .base import Column, ListScreen


class TemplatesScreen(ListScreen[TemplateInfo]):
    CSS_PATH = "templates.tcss"
    TITLE = "Templates"
    AREA = "templates"
    HELP = ("Email templates and a rendered preview of the highlighted one. Merge fields are filled with "
            "placeholder values (`lead.first_name` shows as `lead.first_name`).")
    COLUMNS = (Column("name", "Template", 26), Column("category", "Category", 12), Column("stage", "Stage", 13),
               Column("ver", "Ver", 4))
    EMPTY = "No templates yet: `nurture sequences apply FILE` adds the templates a sequence file declares."
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("tab", "app.focus_next", "Switch pane", "templates.switch_pane", show=False),
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
