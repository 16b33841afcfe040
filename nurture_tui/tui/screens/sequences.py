"""Sequences: the list (status, published version, enrollments) and a read-only tree of the published
version with per-node counts (at the node now / entered / yes / no). Editing arrives with the tree editor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from sqlalchemy import select
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Tree
from textual.widgets.tree import TreeNode

from ...store.tables import sequence_version
from ..keymap import bind
from .base import FilterableScreen, NotLanded, feature_available

COLUMNS = (("name", "Sequence", 24), ("status", "Status", 8), ("ver", "Ver", 4), ("live", "Live", 7),
           ("done", "Done", 7))
LIVE = ("active", "waiting")


@dataclass(frozen=True)
class VersionView:
    name: str
    version: int
    steps: list[Any]
    counts: dict[str, Any]


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
    return kind


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


class SequencesScreen(FilterableScreen):
    CSS_PATH = "sequences.tcss"
    TITLE = "Sequences"
    AREA = "sequences"
    HELP = ("Sequences and their published versions. The tree shows the current version with live per-node "
            "counts: how many leads are at each node now, how many entered, and yes/no outcomes.")
    POLL_GROUP = "sequences.tree"
    POLL_SECONDS = 3.0
    RESULTS: ClassVar[dict[str, str]] = {"sequences.load": "show_list", "sequences.tree": "show_tree"}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("enter", "show_tree", "Show tree", "sequences.open"),
        bind("tab", "app.focus_next", "Switch pane", "sequences.switch_pane", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.available = feature_available("nurture_tui.sequences.service")
        self.selected: str | None = None
        self.last: list[Any] = []

    def compose_body(self) -> ComposeResult:
        if not self.available:
            yield NotLanded("Sequences", "They arrive with the sequences area (nurture_tui.sequences.service).")
            return
        with Horizontal():
            yield DataTable(id="list", cursor_type="row", zebra_stripes=True)
            yield Tree("no sequence selected", id="tree")

    def on_mount(self) -> None:
        if not self.available:
            return
        table = self.query_one("#list", DataTable)
        for key, title, width in COLUMNS:
            table.add_column(title, key=key, width=width)
        table.focus()
        self._load_list()

    @work(thread=True, exclusive=True, group="sequences.load", exit_on_error=False, description="Sequences")
    def _load_list(self) -> list[Any]:
        from ...sequences.service import list_sequences

        with self.ctx.read() as conn:
            return list_sequences(conn)

    def show_list(self, rows: list[Any]) -> None:
        self.last = rows
        table = self.query_one("#list", DataTable)
        table.clear()
        rows = [r for r in rows if self.keep(r.name, r.status, r.description)]
        for r in rows:
            live = sum(n for s, n in r.enrolled.items() if s in LIVE)
            done = sum(n for s, n in r.enrolled.items() if s not in LIVE)
            table.add_row(r.name, r.status, f"v{r.version}" if r.version else "—", f"{live:,}", f"{done:,}",
                          key=r.name)
        if rows and self.selected is None:
            self.selected = rows[0].name
            self.load()

    def refilter(self) -> None:
        if self.available:
            self.show_list(self.last)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name and name != self.selected:
            self.selected = name
            self.load()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_show_tree()

    def action_show_tree(self) -> None:
        self.query_one("#tree", Tree).focus()

    def load(self) -> None:
        if self.available and self.selected:
            self._load_tree(self.selected)

    @work(thread=True, exclusive=True, group="sequences.tree", exit_on_error=False, description="Sequence tree")
    def _load_tree(self, name: str) -> VersionView | str:
        from ...sequences.service import get_row, load_version

        with self.ctx.read() as conn:
            row = get_row(conn, name)
            version_id = row.get("current_version_id")
            if not version_id:
                return f"{name}: not published yet"
            compiled = load_version(conn, version_id)
            try:
                from ...engine.node_stats import node_counts
            except ImportError:
                counts: dict[str, Any] = {}
            else:
                counts = node_counts(conn, [version_id])
            number = conn.execute(select(sequence_version.c.number)
                                  .where(sequence_version.c.id == version_id)).scalar()
        return VersionView(name, int(number or 0), compiled.definition.steps, counts)

    def show_tree(self, view: VersionView | str) -> None:
        tree: Tree[Any] = self.query_one("#tree", Tree)
        if isinstance(view, str):
            tree.clear()
            tree.root.set_label(view)
            return
        tree.clear()
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
