"""The condition form of the segment builder: what the condition is about (a field, a behaviour or a
membership, picked by fuzzy search), an operator valid for it, and a typed value checked by the rule
language as you type. `enter` moves on and finally saves; a bad value is refused in one line.

Opened by the condition builder of a sequence (`more`), one form follows another: `enter` on the value adds
the condition and opens the next one's form, `ctrl+s` adds it and hands the whole rule back (on a form left
untouched: just hands it back), `esc` stops adding."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from ....console.segment_conditions import OP_HELP, Subject, build, split
from ....errors import ValidationError
from ...keymap import bind
from ...widgets.segments.pick_list import Choice, PickList

#: What typing an operator's symbol finds.
_SYMBOLS = {"eq": "= ==", "ne": "!= ≠ not", "lt": "<", "le": "<= ≤", "gt": ">", "ge": ">= ≥", "in": "one of",
            "not_in": "none of"}


class ConditionForm(ModalScreen[dict[str, Any] | None]):
    """Returns the condition's rule data, or None when cancelled."""

    CSS_PATH = "condition_form.tcss"
    HELP = """\
Type to search what the condition is about (the common subjects are listed first: `s` finds stage), `enter`;
the operator (`enter` takes the first), `enter`; the value, `enter`. `shift+tab` goes back a step. In a
sequence's condition builder, `enter` on the value adds the condition and opens the next one's form,
`ctrl+s` adds it and hands the rule back, `esc` stops adding.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "condition.cancel"),
        bind("shift+tab", "back", "Back a step", "condition.back", show=False),
        bind("ctrl+s", "done", "Add it, use the rule", "condition.done", priority=True),
        bind("f1", "app.help", "Help", "condition.help", show=False),
    ]

    def __init__(self, subjects: list[Subject], data: dict[str, Any] | None = None, *, more: int = 0) -> None:
        """`more`: the number of this condition in a run of them (the sequence's condition builder), 0 alone."""
        super().__init__()
        self.subjects = {s.key: s for s in subjects}
        self.subject: Subject | None = None
        self.op: str | None = None
        self.initial = split(data) if data else None
        self.more = more
        #: `ctrl+s` closed the form: the rule is done (the builder hands it back)
        self.done = False
        self._problem_text = ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return bool(self.more) if action == "done" else True

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Condition {self.more}" if self.more > 1 else "Condition", id="title")
            yield Label("About  (a field, activity: …, in segment …)", classes="step")
            yield PickList([Choice(s.key, s.label, s.kind) for s in self.subjects.values()],
                           placeholder="type to search: industry, score, activity: open, in segment …",
                           id="subject")
            yield Label("Operator", classes="step")
            yield PickList([], placeholder="pick the subject first", id="op")
            yield Label("Value", classes="step", id="value-label")
            yield Input(placeholder="", id="value")
            yield Label("", id="problem")
            yield Label("enter: next / add, then the next · ctrl+s: add, use the rule · esc: done" if self.more
                        else "enter: next / save · shift+tab: back · esc: cancel", id="hint")

    def on_mount(self) -> None:
        if self.initial:
            key, op, text = self.initial
            subject = self.subjects.get(key)
            if subject is not None:
                self.query_one("#subject", PickList).set_choices(
                    self.query_one("#subject", PickList).choices, subject.label)
                self._choose_subject(subject, focus=False)
                self._choose_op(op, focus=False)
                self.query_one("#value", Input).value = text
                self.query_one("#value", Input).focus()
                return
        self.query_one("#subject", PickList).focus()

    # -- steps --------------------------------------------------------------------------------------

    @on(PickList.Picked, "#subject")
    def _subject_picked(self, event: PickList.Picked) -> None:
        self._choose_subject(self.subjects[event.key])

    def _choose_subject(self, subject: Subject, *, focus: bool = True) -> None:
        self.subject = subject
        self.query_one("#subject", PickList).input.value = subject.label
        ops = self.query_one("#op", PickList)
        ops.input.placeholder = "type to search, or enter for the first"
        ops.set_choices([Choice(op, f"{op}  {OP_HELP.get(op, '')}", _SYMBOLS.get(op, "")) for op in subject.ops])
        value = self.query_one("#value", Input)
        value.placeholder = subject.hint
        value.suggester = SuggestFromList(subject.choices, case_sensitive=False) if subject.choices else None
        self._problem("")
        if len(subject.ops) == 1:  # nothing to choose (a membership's `is`): straight to the value
            self._choose_op(subject.ops[0], focus=focus)
        elif focus:
            ops.focus()

    @on(PickList.NothingMatches)
    def _nothing_matches(self, event: PickList.NothingMatches) -> None:
        what = "field, behaviour or membership" if event.pick_list.id == "subject" else "operator"
        self._problem(f"no {what} matches {event.text[:40]!r}: pick one from the list" if event.text
                      else f"pick a {what} from the list")

    @on(PickList.Picked, "#op")
    def _op_picked(self, event: PickList.Picked) -> None:
        self._choose_op(event.key)

    def _choose_op(self, op: str, *, focus: bool = True) -> None:
        self.op = op
        self.query_one("#op", PickList).input.value = op
        takes_value = op not in ("is_empty", "not_empty", "today", "this_week", "this_month", "any_time")
        value = self.query_one("#value", Input)
        value.disabled = not takes_value
        choices = ", ".join(self.subject.choices[:12]) if self.subject and self.subject.choices else ""
        self.query_one("#value-label", Label).update(
            f"Value  ({self.subject.hint if self.subject else ''}{'; e.g. ' + choices if choices else ''})"
            if takes_value else "Value  (none needed: enter saves)")
        if not focus:
            return
        if takes_value:
            value.focus()
        else:
            self._finish("")

    @on(Input.Submitted, "#value")
    def _value_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._finish(event.value)

    @on(Input.Changed, "#value")
    def _value_changed(self, event: Input.Changed) -> None:
        """Check as you type (one line, never a traceback); saving re-checks."""
        if self.subject is None or self.op is None or not event.value.strip():
            self._problem("")
            return
        try:
            build(self.subject, self.op, event.value)
        except ValidationError as exc:
            self._problem(exc.message if exc.where in ("value", "condition.value", "condition") else str(exc))
        else:
            self._problem("")

    def _finish(self, text: str) -> bool:
        if self.subject is None or self.op is None:
            self._problem("pick what the condition is about and an operator first")
            return False
        try:
            data = build(self.subject, self.op, text)
        except ValidationError as exc:
            self._problem(str(exc))
            self.query_one("#value", Input).focus()
            return False
        self.dismiss(data)
        return True

    def action_done(self) -> None:
        """`ctrl+s`: this condition (the operator `enter` would take, when none is picked yet), then the rule
        is done; on a form left untouched, only the rule."""
        subject = self.query_one("#subject", PickList)
        if self.subject is None and not subject.input.value.strip():
            self.done = True
            self.dismiss(None)
            return
        op = self.query_one("#op", PickList).highlighted_key()
        if self.subject is not None and self.op is None and op is not None:
            self._choose_op(op, focus=False)
        self.done = True
        if not self._finish(self.query_one("#value", Input).value):
            self.done = False

    def _problem(self, text: str) -> None:
        label = self.query_one("#problem", Label)
        if text != self._problem_text:  # an update re-lays out the dialog: not on every keystroke
            self._problem_text = text
            label.update(text)

    def action_back(self) -> None:
        if self.query_one("#value", Input).has_focus:
            self.query_one("#op", PickList).focus()
        else:
            self.query_one("#subject", PickList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
