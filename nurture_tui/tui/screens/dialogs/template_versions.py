"""A template's saved versions and the diff between two of them: the highlighted version against the one
before it, or against a version marked with `space`; `enter` loads the highlighted version into the editor
(it becomes a new version only when saved), `esc` closes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ....console.templates import TemplateVersionInfo
from ...keymap import bind


def diff_text(diff: str) -> Text:
    """A unified diff coloured by line kind."""
    out = Text()
    for line in diff.splitlines(keepends=True):
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")
        out.append(line, style=style)
    return out


class TemplateVersionsModal(ModalScreen[int | None]):
    CSS_PATH = "template_versions.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "close", "Close", "template_versions.close"),
        bind("space", "mark", "Mark as base", "template_versions.mark"),
        bind("enter", "load", "Load into editor", "template_versions.load"),
    ]

    @dataclass
    class DiffReady(Message, bubble=False):
        old: int
        new: int
        diff: str

    def __init__(self, name: str, versions: Sequence[TemplateVersionInfo], diff: Callable[[int, int], str]) -> None:
        super().__init__()
        self.template_name = name
        self.versions = list(versions)  # newest first
        self.diff_source = diff
        self.base: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Versions of {self.template_name}", id="title")
            with Horizontal(id="panes"):
                yield OptionList(*[Option(self._label(v), id=str(v.number)) for v in self.versions], id="versions")
                with VerticalScroll(id="diff-box"):
                    yield Static("", id="diff")
            yield Label("space marks a base to compare with · enter loads the version · esc closes", id="hint")

    def _label(self, v: TemplateVersionInfo) -> Text:
        when = v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "—"
        mark = "● " if v.number == self.base else "  "
        return Text.assemble(mark, (f"v{v.number}", "bold"), f"  {when}")

    def on_mount(self) -> None:
        options = self.query_one("#versions", OptionList)
        options.focus()
        if self.versions:
            options.highlighted = 0
            self._compare()

    def _current(self) -> int | None:
        index = self.query_one("#versions", OptionList).highlighted
        return self.versions[index].number if index is not None and index < len(self.versions) else None

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._compare()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_load()

    def _compare(self) -> None:
        new = self._current()
        if new is None:
            return
        older = [v.number for v in self.versions if v.number < new]
        old = self.base if self.base is not None and self.base != new else (older[0] if older else None)
        if old is None:
            self.query_one("#diff", Static).update(Text(f"v{new} is the first version.", style="italic"))
            return
        self.query_one("#diff", Static).update(Text(f"comparing v{old} → v{new} …", style="italic"))
        self._diff(old, new)

    @work(thread=True, exclusive=True, group="template_versions.diff", exit_on_error=False, description="Diff")
    def _diff(self, old: int, new: int) -> None:
        diff = self.diff_source(old, new)
        if not get_current_worker().is_cancelled:
            self.post_message(self.DiffReady(old, new, diff))

    @on(DiffReady)
    def _show(self, message: DiffReady) -> None:
        if message.new != self._current():
            return
        head = Text(f"v{message.old} → v{message.new}\n", style="bold")
        body = diff_text(message.diff) if message.diff else Text("no difference in subject, html or text",
                                                                  style="italic")
        self.query_one("#diff", Static).update(head + body)

    def action_mark(self) -> None:
        current = self._current()
        self.base = None if current == self.base else current
        options = self.query_one("#versions", OptionList)
        for index, v in enumerate(self.versions):
            options.replace_option_prompt_at_index(index, self._label(v))
        self._compare()

    def action_load(self) -> None:
        self.dismiss(self._current())

    def action_close(self) -> None:
        self.dismiss(None)
