"""Small input modals: a line of text (reject reason, score points) and a pick-one list (sequence)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from ...keymap import bind


class PromptModal(ModalScreen[str | None]):
    """Ask for one line; `enter` submits (after `validate` passes), `esc` cancels."""

    CSS_PATH = "prompt.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [bind("escape", "cancel", "Cancel", "prompt.cancel")]

    def __init__(self, title: str, placeholder: str = "", *, validate: Callable[[str], str | None] | None = None,
                 value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.validator = validate
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Label("", id="problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        problem = self.validator(text) if self.validator else (None if text else "required")
        if problem:
            self.query_one("#problem", Label).update(problem)
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceModal(ModalScreen[str | None]):
    """Pick one of `choices` (value, label); `enter` picks, `esc` cancels; a letter that starts exactly one
    choice's value picks it at once (`y` / `n` for a yes/no arm)."""

    CSS_PATH = "prompt.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [bind("escape", "cancel", "Cancel", "choice.cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield OptionList(*[Option(label, id=value) for value, label in self.choices], id="choices")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_key(self, event: events.Key) -> None:
        char = (event.character or "").lower()
        if len(char) != 1 or not char.isalnum():
            return
        starting = [value for value, _label in self.choices if value.lower().startswith(char)]
        if len(starting) == 1:
            event.stop()
            self.dismiss(starting[0])

    def action_cancel(self) -> None:
        self.dismiss(None)
