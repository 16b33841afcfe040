"""Sequences: the list (status, published version, enrollments) and a tree of the published version with
live per-node counts (at the node now / entered / yes / no / exited / goal)."""

from __future__ import annotations

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
from ..keymap import bind
from .base import Column, ListScreen

LIVE = ("active", "waiting")


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
    HELP = ("Sequences and their published versions. The tree shows the current version with live per-node "
            "counts: how many leads are at each node now, how many entered, and yes/no outcomes.")
    COLUMNS = (Column("name", "Sequence", 24), Column("status", "Status", 8), Column("ver", "Ver", 4),
               Column("live", "Live", 7), Column("done", "Done", 7))
    EMPTY = "No sequences yet: `nurture sequences apply FILE` adds one."
    POLL_GROUP = "sequences.tree"
    POLL_SECONDS = 3.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("enter", "show_tree", "Show tree", "sequences.open"),
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
        live = sum(n for s, n in r.enrolled.items() if s in LIVE)
        done = sum(n for s, n in r.enrolled.items() if s not in LIVE)
        return (r.name, r.status, f"v{r.version}" if r.version else "—", f"{live:,}", f"{done:,}")

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

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_show_tree()

    def action_show_tree(self) -> None:
        self.query_one("#tree", Tree).focus()
