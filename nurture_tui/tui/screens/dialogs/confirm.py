"""The one confirm modal: states the exact scope; `y` confirms, `n`/`esc` cancels; cancel has focus."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ...keymap import bind


class ConfirmModal(ModalScreen[bool]):
    CSS_PATH = "confirm.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("y", "confirm", "Yes", "confirm.yes"),
        bind("n,escape", "cancel", "No", "confirm.no"),
    ]

    def __init__(self, title: str, scope: str, *, confirm_label: str = "Yes", destructive: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.scope = scope
        self.confirm_label = confirm_label
        self.destructive = destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield Static(self.scope, id="scope")
            with Horizontal(id="buttons"):
                yield Button(f"{self.confirm_label} (y)", id="yes",
                             variant="error" if self.destructive else "primary")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no" if self.destructive else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
