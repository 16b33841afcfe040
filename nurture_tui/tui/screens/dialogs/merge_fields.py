"""The merge-field picker: type to narrow (fuzzy, like the palette), `enter` inserts the highlighted field's
snippet (`{{ lead.first_name | default("there") }}`) at the editor's cursor, `esc` cancels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from ....console.templates import MergeField
from ...keymap import bind


def ranked(fields: Sequence[MergeField], query: str) -> list[tuple[MergeField, Content]]:
    """The fields matching `query` (fuzzy on the path), best first, with the matched letters highlighted."""
    if not query.strip():
        return [(f, Content(f.path)) for f in fields]
    query = query.strip()
    matcher = Matcher(query)
    # a field whose root or name starts with what was typed first (`own` → owner.*), then by fuzzy score
    scored = [(f.path.startswith(query.lower()), f.path.split(".")[-1].startswith(query.lower()),
               matcher.match(f.path), i, f) for i, f in enumerate(fields)]
    return [(f, matcher.highlight(f.path))
            for _root, _name, score, _i, f in sorted(scored, key=lambda s: (not s[0], not s[1], -s[2], s[3]))
            if score > 0]


class MergeFieldModal(ModalScreen[str | None]):
    CSS_PATH = "merge_fields.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "merge_fields.cancel"),
        bind("down", "move(1)", "Next field", "merge_fields.next", show=False),
        bind("up", "move(-1)", "Previous field", "merge_fields.previous", show=False),
    ]

    def __init__(self, fields: Sequence[MergeField]) -> None:
        super().__init__()
        self.fields = list(fields)
        self.shown: list[MergeField] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Insert a merge field", id="title")
            yield Input(placeholder="type to filter: first, comp, owner.sig …", id="query")
            yield OptionList(id="fields")
            yield Label("", id="snippet")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#query", Input).focus()

    def _fill(self, query: str) -> None:
        matches = ranked(self.fields, query)
        self.shown = [f for f, _label in matches]
        options = self.query_one("#fields", OptionList)
        options.clear_options()
        options.add_options([Option(label, id=f.path) for f, label in matches])
        if self.shown:
            options.highlighted = 0
        self._show_snippet()

    def _show_snippet(self) -> None:
        options = self.query_one("#fields", OptionList)
        index = options.highlighted
        snippet = self.shown[index].snippet if index is not None and index < len(self.shown) else "no field matches"
        self.query_one("#snippet", Label).update(Text(snippet, style="italic"))

    @on(Input.Changed, "#query")
    def _query_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._show_snippet()

    @on(Input.Submitted, "#query")
    def _submitted(self) -> None:
        index = self.query_one("#fields", OptionList).highlighted
        if index is not None and index < len(self.shown):
            self.dismiss(self.shown[index].snippet)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.shown[event.option_index].snippet)

    def action_move(self, step: int) -> None:
        options = self.query_one("#fields", OptionList)
        if self.shown:
            options.highlighted = ((options.highlighted or 0) + step) % len(self.shown)

    def action_cancel(self) -> None:
        self.dismiss(None)
