"""The sequence editor's settings form: the program's top-level settings, one line each (`console.
sequence_settings` reads and writes them: name, description, stage, entry, re-entry, goal, exit rules,
suppression, subscription category, send window, time zone fallback, holidays, what happens outside the
window, frequency caps). `enter` moves to the next field and applies on the last (in a field of known values
— stage, re-entry, suppressed, outside the window — taking the completion shown: `a` `enter` is anytime),
`ctrl+s` applies from anywhere, `f2` on a condition (entry rule, goal, exit rules) opens the segment builder
on it (a new goal or exit rule as an ANY group; on the entry, a rule whatever it held) and moves on to the
next field with the rule it hands back, `f3` edits the program's inline templates (YAML, as the file holds
them; the store's templates have the template editor), `esc` cancels. Applying is one undoable edit through
`SequenceDraft.set_settings`; a value it cannot read is refused in one line naming the field, and the form
stays open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, TextArea

from ....console.sequence_draft import SequenceDraft
from ....console.sequence_settings import (
    CHOICES,
    FIELDS,
    RULE_FIELDS,
    parse_rule_text,
    parse_templates,
    rule_text,
    settings_fields,
    settings_values,
    templates_text,
)
from ....errors import ValidationError
from ....sequences.model import TemplateSpec
from ...keymap import bind

#: The fields `enter` completes to the value shown as you type (a prefix of one of their known values).
COMPLETED = ("stage", "reentry", "suppressed", "outside")


def completed(key: str, text: str) -> str:
    """The value `enter` leaves in field `key`: the first known value `text` starts (what the field's
    suggestion shows), else the text as typed."""
    if key not in COMPLETED or not text or text in CHOICES[key]:
        return text
    return next((choice for choice in CHOICES[key] if choice.startswith(text)), text)


class SettingsForm(ModalScreen[dict[str, Any] | None]):
    """Calls `apply(values)` (the editor's `set_settings`) on `ctrl+s`: a refusal stays in the form, in one
    line; returns the values applied, or None when cancelled."""

    CSS_PATH = "node_form.tcss"
    HELP = """\
`enter` moves to the next field and applies on the last; in stage, re-entry, suppressed and outside the
window it takes the completion shown (`c` `enter`: consideration, `a` `f` `enter`: after_exit). `f2` on the
entry, goal or exit rule opens the condition builder (a new goal or exit rule is an ANY group), and the form
moves on with the rule it hands back. `f3` edits the inline templates, `ctrl+s` applies, `esc` cancels.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "sequence_settings.cancel"),
        bind("ctrl+s", "save", "Apply", "sequence_settings.apply", priority=True),
        bind("f2", "build_rule", "Build the condition", "sequence_settings.build_rule"),
        bind("f3", "templates", "Inline templates", "sequence_settings.templates"),
        bind("f1", "app.help", "Help", "sequence_settings.help", show=False),
    ]

    def __init__(self, draft: SequenceDraft, apply: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self.texts = settings_fields(draft.defn)
        self.templates = [t.model_copy() for t in draft.defn.templates]
        self.apply = apply

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="settings"):
            yield Label("Settings", id="title")
            for key, title in FIELDS:
                yield Label(title, classes="step")
                box = Input(self.texts[key], id=key, select_on_focus=True)
                if key in CHOICES:
                    box.suggester = SuggestFromList(CHOICES[key], case_sensitive=True)
                yield box
            yield Label(self._templates_line(), classes="step", id="templates")
            yield Label("", id="problem")
            yield Label("enter: next field / apply · ctrl+s: apply · f2: build a condition · f3: inline templates "
                        "· esc: cancel", id="hint")

    def _templates_line(self) -> str:
        names = ", ".join(t.name for t in self.templates) or "none"
        return f"Inline templates  (f3 edits them): {names}"

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def value(self, key: str) -> str:
        return self.query_one(f"#{key}", Input).value

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        key = event.input.id or ""
        completion = completed(key, event.value)
        if completion != event.value:
            event.input.value = completion
        self._next(key)

    def _next(self, key: str) -> None:
        keys = [k for k, _title in FIELDS]
        i = keys.index(key)
        if i + 1 < len(keys):
            self.query_one(f"#{keys[i + 1]}", Input).focus()
        else:
            self.action_save()

    @work(exclusive=True, group="sequence_settings.rule", exit_on_error=False, description="Build a condition")
    async def action_build_rule(self) -> None:
        """The segment builder on the focused condition field; its result replaces the field's text."""
        from ..rule_builder import RuleBuilderScreen

        focused = self.focused
        key = focused.id if isinstance(focused, Input) else None
        if key not in RULE_FIELDS:
            self._problem("f2 builds a condition: go to Entry, Goal or Exit when first")
            return
        assert isinstance(focused, Input) and key is not None
        text = focused.value.strip()
        if key == "entry":
            word, _sep, text = text.partition(" ")
            if word != "rule":
                text = ""
        try:
            data = parse_rule_text(text, key) if text else ({"any": []} if key != "entry" else None)
        except ValidationError as exc:
            self._problem(str(exc))
            return
        builder = RuleBuilderScreen({"entry": "entry", "goal": "goal", "exit_when": "exit"}[key], data)
        await self.app.push_screen_wait(builder)
        if builder.result is None:
            focused.focus()
            return
        new = rule_text(builder.result)
        focused.value = f"rule {new}" if key == "entry" else new
        self._problem("")
        self._next(key)

    @work(exclusive=True, group="sequence_settings.rule", exit_on_error=False, description="Inline templates")
    async def action_templates(self) -> None:
        focused = self.focused
        templates = await self.app.push_screen_wait(InlineTemplatesForm(self.templates))
        if templates is not None:
            self.templates = templates
            self.query_one("#templates", Label).update(self._templates_line())
        if focused is not None:
            focused.focus()

    def action_save(self) -> None:
        try:
            values = {**settings_values({k: self.value(k) for k, _title in FIELDS}), "templates": self.templates}
            self.apply(values)
        except ValidationError as exc:
            self._problem(str(exc))
            return
        self.dismiss(values)

    def _problem(self, text: str) -> None:
        self.query_one("#problem", Label).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class InlineTemplatesForm(ModalScreen[list[TemplateSpec] | None]):
    """The program's inline templates as the file holds them (a YAML list of name, subject, html, text,
    category, stage), in a text area; `ctrl+s` returns them when they read as templates (else one line
    naming the line or the template), `esc` cancels."""

    CSS_PATH = "node_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "inline_templates.cancel"),
        bind("ctrl+s", "save", "Use them", "inline_templates.apply", priority=True),
    ]

    def __init__(self, templates: list[TemplateSpec]) -> None:
        super().__init__()
        self.text = templates_text(templates)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="templates"):
            yield Label("Inline templates  (a YAML list: name, subject, html, text, category, stage)", id="title")
            area = TextArea(self.text, id="templates-yaml", tab_behavior="focus", soft_wrap=False)
            area.indent_width = 2
            yield area
            yield Label("", id="problem")
            yield Label("ctrl+s: use them · esc: cancel", id="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        try:
            templates = parse_templates(self.query_one(TextArea).text)
        except ValidationError as exc:
            self.query_one("#problem", Label).update(str(exc))
            return
        self.dismiss(templates)

    def action_cancel(self) -> None:
        self.dismiss(None)
