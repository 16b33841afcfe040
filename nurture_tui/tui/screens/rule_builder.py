"""The segment builder, editing one condition of a sequence (a branch, the goal, the exit rules, the entry
rule) instead of a stored segment: the same tree, keys, condition form, quick filter and live count of the
leads it matches now. `ctrl+s` hands the rule back to the form that opened it (`result`), `esc` leaves it
unchanged (asking first when it was edited). Nothing is stored here: the sequence draft is.

Conditions come in runs: `a` opens the condition form, and each condition added with `enter` opens the
next one's form at once; `ctrl+s` in a form adds its condition and hands the rule back, `esc` stops adding.
A goal or exit rule starts as an ANY group (reaching any of them ends the program)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import BindingType
from textual.widgets import Static

from ...console.segment_draft import RuleDraft
from ...errors import ValidationError
from ..keymap import bind
from .dialogs.condition_form import ConditionForm
from .segment_editor import SegmentEditorScreen


class RuleBuilderScreen(SegmentEditorScreen):
    TITLE = "Condition builder"
    AREA = "sequences"
    HELP = SegmentEditorScreen.HELP.replace(
        "`a` adds a condition after the cursor (or into a group)",
        "`a` adds conditions after the cursor (or into a group): `enter` on a condition's value adds it and\n"
        "opens the next one's form, `ctrl+s` there adds it and hands the rule back, `esc` stops adding",
    ).replace("`ctrl+s` saves", "`ctrl+s` hands the condition back to the form")
    BINDINGS: ClassVar[list[BindingType]] = [bind("ctrl+s", "save", "Use it", "rule_builder.use")]

    def __init__(self, what: str, data: dict[str, Any] | None) -> None:
        """`what`: the condition's name in the title ("branch sales-ready", "goal"); `data`: its rule data."""
        super().__init__(None)
        self.what = what
        self.draft = RuleDraft(data)
        self.result: dict[str, Any] | None = None

    @work(exclusive=True, group="segment_editor.form", exit_on_error=False, description="Conditions")
    async def action_add_condition(self) -> None:
        """`a`: conditions one after another, each form opening when the last is added; `ctrl+s` in a form
        ends the run and uses the rule, `esc` ends the run."""
        if self.subjects is None:
            self.notify("loading the field list…")
            return
        cursor = self.rule_tree.cursor_path
        number = 1
        while True:
            form = ConditionForm(self.subjects, more=number)
            data = await self.app.push_screen_wait(form)
            if data is not None:
                try:
                    cursor = self.draft.add(cursor, data)
                except ValidationError as exc:
                    self.notify(str(exc), severity="warning")
                    return
                self.refresh_draft(cursor)
                number += 1
            if form.done:
                if await self._save():
                    self.dismiss()
                return
            if data is None:
                return

    def unsaved_changes(self) -> str:
        return f"the {self.what} condition" if self.draft.dirty else ""

    def _title(self) -> None:
        self.query_one("#name", Static).update(Text.assemble(
            ("Condition of ", "dim"), (self.what, "bold"),
            ("  · edited" if self.draft.dirty else "", "yellow"),
            ("  · ctrl+s: use it · esc: back", "dim")))

    @work(exclusive=True, group="segment_editor.save", exit_on_error=False, description="Use the condition")
    async def action_save(self) -> None:
        if await self._save():
            self.dismiss()

    async def _save(self) -> bool:
        problems = self.draft.problems()
        if problems:
            self.notify(f"not used: {problems[0].message}", severity="error")
            return False
        if not self.draft.root.items:
            self.notify("add a condition first (`a`)", severity="warning")
            return False
        self.result = self.draft.data()
        self.draft.mark_saved()
        return True
