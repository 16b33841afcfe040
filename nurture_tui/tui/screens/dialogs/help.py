"""`?`/F1: help generated from the live bindings of the screen underneath (never a second key table),
plus that screen's HELP text."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Markdown, Static

from ...keymap import bind


def binding_rows(screen: Screen[Any]) -> list[tuple[str, str, str, bool]]:
    """(scope, keys, description, enabled) for every active binding of `screen`, in chain order."""
    rows: list[tuple[str, str, str, bool]] = []
    seen: set[tuple[str, str]] = set()
    by_binding: dict[tuple[int, str], list[str]] = {}
    order: list[tuple[Any, Any, bool]] = []
    for key, active in screen.active_bindings.items():
        binding = active.binding
        ident = (id(active.node), binding.action)
        display = screen.app.get_key_display(binding)
        if ident not in by_binding:
            by_binding[ident] = []
            order.append((active.node, binding, active.enabled))
        if display not in by_binding[ident]:
            by_binding[ident].append(display)
        del key
    for node, binding, enabled in order:
        scope = "App" if node is screen.app else type(node).__name__.replace("Screen", "") or "Screen"
        keys = " / ".join(by_binding[(id(node), binding.action)])
        if (scope, binding.action) in seen:
            continue
        seen.add((scope, binding.action))
        rows.append((scope, keys, binding.description or binding.action, enabled))
    return rows


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [bind("escape,q,question_mark,f1", "close", "Close", "help.close")]

    def __init__(self, target: Screen[Any]) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        title = getattr(self.target, "TITLE", "") or type(self.target).__name__
        with Vertical(id="dialog"):
            yield Label(f"Help · {title}", id="title")
            with VerticalScroll(id="body"):
                help_text = getattr(self.target, "HELP", "")
                if help_text:
                    yield Markdown(help_text, id="about")
                yield Static(self._keys_table(), id="keys")
            yield Label("esc to close · ctrl+p opens the command palette", id="hint")

    def _keys_table(self) -> Text:
        text = Text()
        scope = None
        for row_scope, keys, description, enabled in binding_rows(self.target):
            if row_scope != scope:
                scope = row_scope
                text.append(f"\n{scope}\n", style="bold underline")
            text.append(f"  {keys:<22}", style="bold" if enabled else "dim")
            text.append(f"{description}\n", style="" if enabled else "dim")
        return text

    def action_close(self) -> None:
        self.dismiss(None)
