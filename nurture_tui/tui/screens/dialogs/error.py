"""The error modal: an error the user should read (a bug or an unexpected failure), never a crash."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ...keymap import bind


class ErrorModal(ModalScreen[None]):
    CSS_PATH = "error.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [bind("escape,enter,q", "close", "Close", "error.close")]

    def __init__(self, title: str, message: str, detail: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Error: {self.title_text}", id="title")
            yield Static(self.message, id="message")
            if self.detail:
                with VerticalScroll(id="detail"):
                    yield Static(self.detail, markup=False)
            yield Button("Close (esc)", id="close", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
