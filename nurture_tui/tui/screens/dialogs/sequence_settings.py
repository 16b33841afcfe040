"""The sequence editor's settings form: the program's top-level settings (name, description, stage, entry,
re-entry, goal, exit rules, suppression, send window with its time zone fallback and holidays, frequency
caps, inline templates) as the YAML an export writes, edited in a text area; `ctrl+s` applies them through
`SequenceDraft.set_settings` (one undoable edit; a wrong shape is refused in one line), `esc` cancels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import yaml
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea

from ....console.sequence_draft import SETTINGS, SequenceDraft
from ....errors import ValidationError
from ....sequences.codec import definition_to_export, dump_yaml
from ....sequences.model import SequenceDef
from ...keymap import bind


def settings_text(draft: SequenceDraft) -> str:
    data = {k: v for k, v in definition_to_export(draft.defn).items() if k != "steps"}
    return dump_yaml(data)


def settings_values(text: str) -> dict[str, Any]:
    """Every setting from the text (a setting left out goes back to its default); ValidationError when the
    text is not a YAML mapping of settings."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "settings"
        raise ValidationError(where, str(getattr(exc, "problem", None) or exc).splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ValidationError("settings", "write the settings as `key: value` lines")
    unknown = [k for k in data if k not in SETTINGS]
    if unknown:
        raise ValidationError(str(unknown[0]), f"not a setting (one of {', '.join(SETTINGS)})")
    out: dict[str, Any] = {}
    for key in SETTINGS:
        field = SequenceDef.model_fields[key]
        out[key] = data[key] if key in data else field.get_default(call_default_factory=True)
    if not out.get("name"):
        raise ValidationError("name", "the program needs a name")
    return out


class SettingsForm(ModalScreen[dict[str, Any] | None]):
    """Calls `apply(values)` (the editor's `set_settings`) on `ctrl+s`: a refusal stays in the form, in one
    line; returns the values applied, or None when cancelled."""

    CSS_PATH = "node_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "sequence_settings.cancel"),
        bind("ctrl+s", "save", "Apply", "sequence_settings.apply", priority=True),
    ]

    def __init__(self, draft: SequenceDraft, apply: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self.text = settings_text(draft)
        self.apply = apply

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="settings"):
            yield Label("Settings  (entry, reentry, goal, exit_when, send_window, caps, templates …)", id="title")
            area = TextArea(self.text, id="settings", tab_behavior="focus", soft_wrap=False)
            area.indent_width = 2
            yield area
            yield Label("", id="problem")
            yield Label("ctrl+s: apply · esc: cancel", id="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        try:
            values = settings_values(self.query_one(TextArea).text)
            self.apply(values)
        except ValidationError as exc:
            self.query_one("#problem", Label).update(str(exc))
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
