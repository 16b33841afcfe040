"""Templates: the list and a rendered preview (subject + text body, every merge field filled with a
placeholder value so missing data shows). Editing arrives with the template editor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from ..keymap import bind
from .base import FilterableScreen, NotLanded, feature_available

COLUMNS = (("name", "Template", 26), ("category", "Category", 12), ("stage", "Stage", 13), ("ver", "Ver", 4))


@dataclass(frozen=True)
class Preview:
    name: str
    version: int
    subject: str
    body: str


class TemplatesScreen(FilterableScreen):
    CSS_PATH = "templates.tcss"
    TITLE = "Templates"
    AREA = "templates"
    HELP = ("Email templates and a rendered preview of the highlighted one. Merge fields are filled with "
            "placeholder values (`lead.first_name` shows as `lead.first_name`).")
    RESULTS: ClassVar[dict[str, str]] = {"templates.load": "show_list", "templates.preview": "show_preview"}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("tab", "app.focus_next", "Switch pane", "templates.switch_pane", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.available = feature_available("nurture_tui.mail.templates")
        self.last: list[Any] = []

    def compose_body(self) -> ComposeResult:
        if not self.available:
            yield NotLanded("Templates", "They arrive with the mail area (nurture_tui.mail.templates).")
            return
        with Horizontal():
            yield DataTable(id="list", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="preview-box"):
                yield Static("", id="preview")

    def on_mount(self) -> None:
        if not self.available:
            return
        table = self.query_one("#list", DataTable)
        for key, title, width in COLUMNS:
            table.add_column(title, key=key, width=width)
        table.focus()
        self.load()

    def load(self) -> None:
        if self.available:
            self._load()

    @work(thread=True, exclusive=True, group="templates.load", exit_on_error=False, description="Templates")
    def _load(self) -> list[Any]:
        from ...mail.templates import list_templates

        with self.ctx.read() as conn:
            return list_templates(conn)

    def show_list(self, rows: list[Any]) -> None:
        self.last = rows
        table = self.query_one("#list", DataTable)
        table.clear()
        for r in [r for r in rows if self.keep(r.name, r.category, r.stage, r.subject)]:
            table.add_row(r.name, r.category, r.stage or "", f"v{r.version}", key=r.name)
        if not rows:
            self.query_one("#preview", Static).update("No templates yet: `nurture sequences apply FILE` adds "
                                                      "the templates a sequence file declares.")

    def refilter(self) -> None:
        if self.available:
            self.show_list(self.last)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._preview(event.row_key.value)

    @work(thread=True, exclusive=True, group="templates.preview", exit_on_error=False, description="Preview")
    def _preview(self, name: str) -> Preview:
        from ...mail.context import sample_context
        from ...mail.htmltext import html_to_text
        from ...mail.templates import default_cache

        with self.ctx.read() as conn:
            compiled = default_cache().get(conn, name)
        ctx = sample_context()
        subject = compiled.subject.render(ctx)
        body = compiled.text.render(ctx) if compiled.text is not None else html_to_text(compiled.html.render(ctx))
        return Preview(name, compiled.version, subject, body)

    def show_preview(self, p: Preview) -> None:
        self.query_one("#preview", Static).update(Text.assemble(
            (f"{p.name}", "bold"), f"  v{p.version}\n", ("Subject: ", "dim"), (p.subject, "bold"), "\n\n", p.body))
