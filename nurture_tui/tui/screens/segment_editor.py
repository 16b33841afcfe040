"""The segment builder: the rule as a tree of groups and conditions, edited by keyboard, with the rule in
one line of English, the live count and a sample of matching leads (recounted in a debounced worker after
every edit, never blocking a keystroke), problems shown at their condition, undo/redo, and a save that is
refused while the rule is invalid."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

from ...console.segment_draft import Group, Path, RuleDraft
from ...console.segments import DraftResult, SegmentInfo
from ...errors import NurtureError, ValidationError
from ...segments.quick import parse_quick, to_quick
from ..debounce import Debouncer
from ..keymap import bind
from ..widgets.common.keyed_table import KeyedTable
from ..widgets.segments.rule_tree import RuleTree
from .base import NurtureScreen
from .dialogs.condition_form import ConditionForm
from .dialogs.confirm import ConfirmModal
from .dialogs.prompt import ChoiceModal, PromptModal

#: Edits closer together than this are counted once, after the last of them; an edit after a quiet spell is
#: counted at once (each builder edit is one step: the typing happens in the condition form).
DEBOUNCE_SECONDS = 0.25
GROUP_CHOICES = [("all", "ALL of — every condition holds (AND)"), ("any", "ANY of — at least one holds (OR)"),
                 ("none", "NONE of — no condition holds (NOT)")]


class SegmentEditorScreen(NurtureScreen):
    CSS_PATH = "segment_editor.tcss"
    TITLE = "Segment builder"
    AREA = "segments"
    HELP = """\
Build the rule as a tree. `a` adds a condition after the cursor (or into a group), `g` adds a group
(ALL / ANY / NONE), `!` puts the condition into a NONE group (negates it), `e` or `enter` edits,
`d` deletes, `shift+↑/↓` move, `>` / `<` indent into the group above / out of a group, `u` / `ctrl+r`
undo and redo, `:` edits the whole rule as a quick filter (`industry=Software score>=50 opened<14d`),
`ctrl+s` saves. The count and the sample follow every edit.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("a", "add_condition", "Add", "segment_editor.add"),
        bind("g", "add_group", "Group", "segment_editor.group"),
        bind("exclamation_mark", "negate", "Negate", "segment_editor.negate", key_display="!"),
        bind("e", "edit", "Edit", "segment_editor.edit"),
        bind("d,delete", "delete", "Delete", "segment_editor.delete"),
        # priority: the tree's own shift+↑/↓ jump between siblings; here they move the node
        bind("shift+up", "move(-1)", "Move up", "segment_editor.move_up", show=False, priority=True),
        bind("shift+down", "move(1)", "Move down", "segment_editor.move_down", show=False, priority=True),
        bind("greater_than_sign", "indent", "Indent", "segment_editor.indent", show=False, key_display=">"),
        bind("less_than_sign", "outdent", "Outdent", "segment_editor.outdent", show=False, key_display="<"),
        bind("u", "undo", "Undo", "segment_editor.undo"),
        bind("ctrl+r", "redo", "Redo", "segment_editor.redo", show=False),
        bind("colon", "quick", "Quick filter", "segment_editor.quick", key_display=":"),
        bind("ctrl+s", "save", "Save", "segment_editor.save"),
        bind("escape", "close", "Back", "segment_editor.back"),
    ]

    @dataclass
    class Counted(Message, bubble=False):
        generation: int
        count: int | None
        error: str | None

    @dataclass
    class Sampled(Message, bubble=False):
        generation: int
        sample: list[Any]

    def __init__(self, segment: SegmentInfo | None = None) -> None:
        super().__init__()
        self.segment_name = segment.name if segment else None
        self.description = segment.description if segment else ""
        self.draft = RuleDraft(segment.rule.to_data() if segment else None)
        self.generation = 0
        self.last: DraftResult | None = None
        self._counter = Debouncer(self, DEBOUNCE_SECONDS, self._evaluate)
        self.subjects: list[Any] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="name")
        yield Static("", id="rendering")
        with Horizontal(id="body"):
            yield RuleTree(id="rule")
            with Vertical(id="side"):
                yield Static("counting…", id="count")
                yield KeyedTable(id="sample", cursor_type="row", zebra_stripes=True)
        yield Static("", id="problems")
        yield Input(placeholder="quick filter: industry=Software score>=50 opened<14d — enter applies, esc cancels",
                    id="quick", classes="hidden")

    @property
    def rule_tree(self) -> RuleTree:
        return self.query_one("#rule", RuleTree)

    def unsaved_changes(self) -> str:
        return f"segment {self.segment_name or '(new)'}" if self.draft.dirty else ""

    def on_unmount(self) -> None:
        self.nurture.open_editors.discard(self)

    def on_mount(self) -> None:
        self.nurture.open_editors.add(self)
        sample = self.query_one("#sample", KeyedTable)
        sample.add_column("Lead", key="lead", width=22)
        sample.add_column("Score", key="score", width=6)
        self._title()
        self.refresh_draft(())
        self.rule_tree.focus()
        self._load_subjects()

    def _title(self) -> None:
        self.query_one("#name", Static).update(Text.assemble(
            ("Segment ", "dim"), (self.segment_name or "new segment", "bold"),
            ("  · unsaved changes" if self.draft.dirty else "  · saved", "yellow" if self.draft.dirty else "dim")))

    # -- showing the draft --------------------------------------------------------------------------

    def refresh_draft(self, cursor: Path | None = None) -> None:
        """Redraw the tree, the one-line rule and the problems; recount after a pause in typing."""
        self.rule_tree.show(self.draft, cursor)
        self.query_one("#rendering", Static).update(Text.assemble(("Rule: ", "dim"), self.draft.rendering()))
        problems = self.draft.problems()
        self.query_one("#problems", Static).update(
            "\n".join(f"✗ {p.message}" for p in problems[:5]) if problems else "")
        self.query_one("#problems", Static).display = bool(problems)
        self._title()
        self.generation += 1
        if problems:
            self._counter.cancel()
            self.query_one("#count", Static).update("fix the marked condition to count")
            return
        self.query_one("#count", Static).update(
            f"{self.last.count:,} leads match (recounting…)" if self.last else "counting…")
        self._counter.request()

    def _evaluate(self) -> None:
        self._run_evaluate(self.draft.data(), self.generation)

    @work(thread=True, exclusive=True, group="segment_editor.count", exit_on_error=False, description="Live count")
    def _run_evaluate(self, data: dict[str, Any], generation: int) -> None:
        """The count first (what the operator waits for), then the sample; a newer edit drops both."""
        segments = self.console.segments
        try:
            self.post_result(self.Counted(generation, segments.count_draft(data), None))
        except NurtureError as exc:
            self.post_result(self.Counted(generation, None, str(exc)))
            return
        if generation == self.generation:
            self.post_result(self.Sampled(generation, segments.sample_draft(data)))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.generation != self.generation:
            return  # an edit came after this count started: a newer one is on its way
        if message.count is None:
            self.query_one("#count", Static).update(Text(message.error or "cannot count", style="red"))
            return
        self.last = DraftResult(message.count, self.last.sample if self.last else [])
        self.query_one("#count", Static).update(Text.assemble((f"{message.count:,}", "bold"),
                                                              " leads match · a sample:"))

    @on(Sampled)
    def _sampled(self, message: Sampled) -> None:
        if message.generation != self.generation or self.last is None:
            return
        self.last = DraftResult(self.last.count, message.sample)
        self.query_one("#sample", KeyedTable).apply(
            {str(r.id): (r.name or r.email, f"{r.score:.0f}") for r in message.sample})

    # -- the picker's choices -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="segment_editor.subjects", exit_on_error=False,
          description="Fields")
    def _load_subjects(self) -> None:
        self.post_result(self.SubjectsLoaded(self.console.segments.subjects()))

    @dataclass
    class SubjectsLoaded(Message, bubble=False):
        subjects: list[Any]

    @on(SubjectsLoaded)
    def _subjects_loaded(self, message: SubjectsLoaded) -> None:
        self.subjects = message.subjects

    # -- editing ------------------------------------------------------------------------------------

    @on(RuleTree.NodeSelected)
    def _selected(self, event: RuleTree.NodeSelected[Any]) -> None:
        """`enter` on the tree edits the node under the cursor."""
        event.stop()
        self.action_edit()

    def _edit(self, change: Any) -> None:
        """Apply one edit to the draft (a refused edit is a toast, the draft unchanged)."""
        try:
            cursor = change()
        except ValidationError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.refresh_draft(cursor)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "save":
            return self.write_state()
        return True

    @work(exclusive=True, group="segment_editor.form", exit_on_error=False, description="Condition")
    async def action_add_condition(self) -> None:
        if self.subjects is None:
            self.notify("loading the field list…")
            return
        data = await self.app.push_screen_wait(ConditionForm(self.subjects))
        if data is not None:
            cursor = self.rule_tree.cursor_path
            self._edit(lambda: self.draft.add(cursor, data))

    @work(exclusive=True, group="segment_editor.form", exit_on_error=False, description="Group")
    async def action_add_group(self) -> None:
        op = await self.app.push_screen_wait(ChoiceModal("Add a group", GROUP_CHOICES))
        if op:
            cursor = self.rule_tree.cursor_path
            self._edit(lambda: self.draft.add(cursor, Group(op, [])))

    def action_negate(self) -> None:
        cursor = self.rule_tree.cursor_path
        self._edit(lambda: self.draft.wrap(cursor, "none"))

    @work(exclusive=True, group="segment_editor.form", exit_on_error=False, description="Edit")
    async def action_edit(self) -> None:
        cursor = self.rule_tree.cursor_path
        node = self.draft.node(cursor)
        if isinstance(node, Group):
            op = await self.app.push_screen_wait(ChoiceModal("This group matches when", GROUP_CHOICES))
            if op:
                self._edit(lambda: self.draft.set_group_op(cursor, op))
            return
        if self.subjects is None:
            return
        data = await self.app.push_screen_wait(ConditionForm(self.subjects, node))
        if data is not None:
            self._edit(lambda: self.draft.replace(cursor, data))

    @work(exclusive=True, group="segment_editor.form", exit_on_error=False, description="Delete")
    async def action_delete(self) -> None:
        cursor = self.rule_tree.cursor_path
        node = self.draft.node(cursor)
        if isinstance(node, Group) and node.items and cursor:
            ok = await self.app.push_screen_wait(ConfirmModal(
                "Delete this group?", f"It holds {len(node.items)} condition(s) or group(s); `u` undoes.",
                confirm_label="Delete", destructive=True))
            if not ok:
                return
        self._edit(lambda: self.draft.delete(cursor))

    def action_move(self, delta: int) -> None:
        cursor = self.rule_tree.cursor_path
        self._edit(lambda: self.draft.move(cursor, delta))

    def action_indent(self) -> None:
        cursor = self.rule_tree.cursor_path
        self._edit(lambda: self.draft.indent(cursor))

    def action_outdent(self) -> None:
        cursor = self.rule_tree.cursor_path
        self._edit(lambda: self.draft.outdent(cursor))

    def action_undo(self) -> None:
        if self.draft.undo():
            self.refresh_draft()
        else:
            self.notify("nothing to undo")

    def action_redo(self) -> None:
        if self.draft.redo():
            self.refresh_draft()
        else:
            self.notify("nothing to redo")

    # -- the quick-filter line ----------------------------------------------------------------------

    def action_quick(self) -> None:
        box = self.query_one("#quick", Input)
        box.value = self._as_quick()
        box.remove_class("hidden")
        box.focus()

    def _as_quick(self) -> str:
        """The rule in the quick syntax, when it can be written that way."""
        try:
            return to_quick(self.draft.rule()) or ""
        except ValidationError:
            return ""

    @on(Input.Submitted, "#quick")
    def _quick_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        try:
            rule = parse_quick(text)
        except ValidationError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.query_one("#quick", Input).add_class("hidden")
        self._edit(lambda: self.draft.replace_all(rule.to_data()))
        self.rule_tree.focus()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#quick", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.add_class("hidden")
            self.rule_tree.focus()

    # -- saving and leaving -------------------------------------------------------------------------

    @work(exclusive=True, group="segment_editor.save", exit_on_error=False, description="Save segment")
    async def action_save(self) -> None:
        await self._save()

    async def _save(self) -> bool:
        problems = self.draft.problems()
        if problems:
            self.notify(f"not saved: {problems[0].message}", severity="error")
            return False
        name = self.segment_name
        if name is None:
            name = await self.app.push_screen_wait(PromptModal("Save the segment as", "segment name"))
            if not name:
                return False
        try:
            saved = await asyncio.to_thread(self.console.segments.save, name, self.draft.data(),
                                            description=self.description)
        except NurtureError as exc:
            self.notify(f"not saved: {exc}", severity="error")
            return False
        self.segment_name = saved.name
        self.draft.mark_saved()
        self._title()
        self.notify(f"saved {saved.name}: {saved.cached_count or 0:,} leads", title="Segment saved")
        self.nurture.data_changed("segments")
        return True

    @work(exclusive=True, group="segment_editor.form", exit_on_error=False, description="Leave")
    async def action_close(self) -> None:
        if await self.may_leave(self._save):
            self.dismiss()
