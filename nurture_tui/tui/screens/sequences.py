"""Sequences: the list (status, published version, enrollments) and a tree of the published version with
live per-node counts (at the node now / entered / yes / no / exited / goal)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Tree
from textual.widgets.tree import TreeNode

from ...console.sequences import SequenceSummary, VersionView
from ...errors import ValidationError
from ..keymap import bind
from .base import Column, ListScreen
from .dialogs.confirm import ConfirmModal
from .dialogs.prompt import ChoiceModal, PromptModal
from .sequence_editor import SequenceEditorScreen

LIVE = ("active", "waiting")
BLANK = "<blank>"  # the "new program" choice that opens the tree editor on nothing


def _step_summary(step: Any) -> str:
    kind = step.kind
    spec = getattr(step, kind)
    if kind == "send":
        return f"send {spec.template}"
    if kind == "wait":
        dump = spec.model_dump(exclude_none=True)
        return "wait " + " ".join(f"{k}={v}" for k, v in dump.items())
    if kind == "wait_for":
        return "wait for " + ", ".join(e.kind if hasattr(e, "kind") else str(e) for e in getattr(spec, "events", []))
    if kind == "action":
        return f"action {spec.type}"
    if kind == "split":
        return "split " + " / ".join(f"{a.name} {a.weight}%" for a in spec.arms)
    return str(kind)


def _counts_text(c: Any) -> Text:
    if c is None:
        return Text("")
    parts = [f"{c.waiting} here", f"{c.entered} in"]
    if c.yes or c.no:
        parts.append(f"{c.yes} yes / {c.no} no")
    if c.exited:
        parts.append(f"{c.exited} exited")
    if c.goal:
        parts.append(f"{c.goal} goal")
    return Text("  [" + " · ".join(parts) + "]", style="dim")


class SequencesScreen(ListScreen[SequenceSummary]):
    CSS_PATH = "sequences.tcss"
    TITLE = "Sequences"
    AREA = "sequences"
    HELP = """\
Sequences with their status, published version, `●` when the draft differs from it, leads live (active),
waiting, done, and the goal rate. The tree shows the published version with live per-node counts.

`e` opens the tree editor, `n` starts a new program (blank, or from a sample), `c` copies one,
`d` deletes one nobody was ever enrolled in,
`i` imports a YAML file (a new draft, or the new draft of the sequence it names), `x` exports the draft as
YAML to a path — the format `nurture sequences apply` reads back.
"""
    COLUMNS = (Column("name", "Sequence", 24), Column("status", "Status", 7), Column("ver", "Ver", 4),
               Column("draft", "Δ", 1), Column("live", "Live", 6), Column("waiting", "Wait", 6),
               Column("done", "Done", 6), Column("goal", "Goal", 5))
    EMPTY = "No sequences yet: `n` starts one from a sample, `i` imports a YAML file."
    POLL_GROUP = "sequences.tree"
    POLL_SECONDS = 3.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("enter", "show_tree", "Show tree", "sequences.open"),
        bind("e", "edit", "Edit", "sequences.edit"),
        bind("n", "new", "New", "sequences.new"),
        bind("c", "copy", "Copy", "sequences.copy"),
        bind("d", "delete", "Delete", "sequences.delete"),
        bind("i", "import_file", "Import", "sequences.import"),
        bind("x", "export_file", "Export", "sequences.export"),
        bind("tab", "app.focus_next", "Switch pane", "sequences.switch_pane", show=False),
    ]

    @dataclass
    class TreeLoaded(Message, bubble=False):
        view: VersionView

    def __init__(self) -> None:
        super().__init__()
        self.selected: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="list-pane"):
                yield from self.compose_list()
            yield Tree("no sequence selected", id="tree")

    def fetch(self) -> list[SequenceSummary]:
        return self.console.sequences.all()

    def row_key(self, row: SequenceSummary) -> str:
        return row.name

    def cells(self, r: SequenceSummary) -> tuple[RenderableType, ...]:
        e = r.enrolled
        total = sum(e.values())
        done = sum(n for s, n in e.items() if s not in LIVE)
        goal = f"{100 * e.get('goal', 0) / total:.0f}%" if total else "—"
        return (r.name, r.status, f"v{r.version}" if r.version else "—", "●" if r.draft_changed else "",
                f"{e.get('active', 0):,}", f"{e.get('waiting', 0):,}", f"{done:,}", goal)

    def search_text(self, row: SequenceSummary) -> tuple[object, ...]:
        return (row.name, row.status, row.description)

    def rows_shown(self) -> None:
        row = self.current()
        if row is not None and row.name != self.selected:
            self.selected = row.name
            self.load_tree()

    def load(self) -> None:
        """`R` and the first mount reload the list; the live poll refreshes the tree's counts."""
        super().load()
        self.load_tree()

    def _poll(self) -> None:
        if self.paused or not self.is_current:
            self._schedule_next()
        else:
            self.load_tree()

    def load_tree(self) -> None:
        if self.selected:
            self._load_tree(self.selected)

    @work(thread=True, exclusive=True, group="sequences.tree", exit_on_error=False, description="Sequence tree")
    def _load_tree(self, name: str) -> None:
        self.post_result(self.TreeLoaded(self.console.sequences.published(name)))

    @on(TreeLoaded)
    def show_tree(self, message: TreeLoaded) -> None:
        view = message.view
        tree: Tree[Any] = self.query_one("#tree", Tree)
        tree.clear()
        if view.version is None:
            tree.root.set_label(f"{view.name}: not published yet")
            return
        tree.root.set_label(Text.assemble((view.name, "bold"), f"  v{view.version}"))
        self._add_steps(tree.root, view.steps, view.counts)
        tree.root.expand_all()

    def _add_steps(self, parent: TreeNode[Any], steps: list[Any], counts: dict[str, Any]) -> None:
        for step in steps:
            label = Text.assemble((f"{step.id}", "bold"), f"  {_step_summary(step)}", _counts_text(counts.get(step.id)))
            has_children = bool(step.yes or step.no or step.split)
            node = parent.add(label, data=step.id) if has_children else parent.add_leaf(label, data=step.id)
            if step.yes:
                self._add_steps(node.add("yes"), step.yes, counts)
            if step.no:
                self._add_steps(node.add("no"), step.no, counts)
            if step.split:
                for arm in step.split.arms:
                    self._add_steps(node.add(f"arm {arm.name} ({arm.weight}%)"), arm.steps, counts)

    # -- the list's actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("new", "copy", "delete", "import_file"):
            return self.write_state()
        return True

    def data_changed(self, what: str) -> None:
        if what == "sequences":
            self.load()

    def _changed(self, text: str) -> None:
        self.notify(text)
        self.nurture.data_changed("sequences")

    def action_edit(self) -> None:
        row = self.current()
        if row is not None:
            self.app.push_screen(SequenceEditorScreen(row.name))

    @work(exclusive=True, group="sequences.write", exit_on_error=False, description="New sequence")
    async def action_new(self) -> None:
        sequences = self.console.sequences
        path = await self.app.push_screen_wait(ChoiceModal(
            "Start a new program", [(BLANK, "a blank program (in the tree editor)"), *sequences.samples()]))
        if not path:
            return
        if path == BLANK:
            self.app.push_screen(SequenceEditorScreen(None))
            return
        name = await self.app.push_screen_wait(PromptModal("Name the new sequence", "name (a slug: my-nurture)"))
        if name:
            result = await asyncio.to_thread(sequences.new_from_sample, path, name)
            self._changed(f"created {result.name} (a draft: publish it when it is ready)")

    @work(exclusive=True, group="sequences.write", exit_on_error=False, description="Copy sequence")
    async def action_copy(self) -> None:
        row = self.current()
        if row is None:
            return
        name = await self.app.push_screen_wait(PromptModal(f"Copy {row.name} as", "new name",
                                                           value=f"{row.name}-copy"))
        if name:
            result = await asyncio.to_thread(self.console.sequences.duplicate, row.name, name)
            self._changed(f"copied {row.name} to {result.name} (its draft)")

    @work(exclusive=True, group="sequences.write", exit_on_error=False, description="Delete sequence")
    async def action_delete(self) -> None:
        row = self.current()
        if row is None:
            return
        ok = await self.app.push_screen_wait(ConfirmModal(
            f"Delete the sequence {row.name}?", "Its draft and versions go. Refused while anyone was ever "
            f"enrolled (pause it instead) or while a segment or sequence names it. Audited as "
            f"{self.session.operator.username}.", confirm_label="Delete", destructive=True))
        if ok:
            await asyncio.to_thread(self.console.sequences.delete, row.name)
            self._changed(f"deleted {row.name}")

    @work(exclusive=True, group="sequences.write", exit_on_error=False, description="Import sequence")
    async def action_import_file(self) -> None:
        path = await self.app.push_screen_wait(PromptModal("Import a sequence from YAML", "path/to/program.yaml"))
        if path:
            result = await asyncio.to_thread(self.console.sequences.import_file, path)
            what = "created" if result.created else "updated the draft of" if result.changed else "no change to"
            self._changed(f"{what} {result.name}")

    @work(exclusive=True, group="sequences.write", exit_on_error=False, description="Export sequence")
    async def action_export_file(self) -> None:
        row = self.current()
        if row is None:
            return
        path = await self.app.push_screen_wait(PromptModal(f"Export {row.name}'s draft as YAML to",
                                                           "a file or a folder", value=f"{row.name}.yaml"))
        if not path:
            return
        sequences = self.console.sequences
        try:
            target = await asyncio.to_thread(sequences.export_to, row.name, path)
        except ValidationError as exc:
            if "exists already" not in exc.message:
                raise
            ok = await self.app.push_screen_wait(ConfirmModal(f"Overwrite {exc.where}?", "It exists already.",
                                                              confirm_label="Overwrite", destructive=True))
            if not ok:
                return
            target = await asyncio.to_thread(sequences.export_to, row.name, path, overwrite=True)
        self.notify(f"wrote {target}")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_show_tree()

    def action_show_tree(self) -> None:
        self.query_one("#tree", Tree).focus()
