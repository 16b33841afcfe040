"""The segment builder, editing one condition of a sequence (a branch, the goal, the exit rules, the entry
rule) instead of a stored segment: the same tree, keys, condition form, quick filter and live count of the
leads it matches now. `ctrl+s` hands the rule back to the form that opened it (`result`), `esc` leaves it
unchanged (asking first when it was edited). Nothing is stored here: the sequence draft is."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import BindingType
from textual.widgets import Static

from ...console.segment_draft import RuleDraft
from ..keymap import bind
from .segment_editor import SegmentEditorScreen


class RuleBuilderScreen(SegmentEditorScreen):
    TITLE = "Condition builder"
    AREA = "sequences"
    HELP = SegmentEditorScreen.HELP.replace("`ctrl+s` saves", "`ctrl+s` hands the condition back to the form")
    BINDINGS: ClassVar[list[BindingType]] = [bind("ctrl+s", "save", "Use it", "rule_builder.use")]

    def __init__(self, what: str, data: dict[str, Any] | None) -> None:
        """`what`: the condition's name in the title ("branch sales-ready", "goal"); `data`: its rule data."""
        super().__init__(None)
        self.what = what
        self.draft = RuleDraft(data)
        self.result: dict[str, Any] | None = None

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
