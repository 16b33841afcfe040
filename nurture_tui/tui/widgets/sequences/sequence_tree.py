"""`SequenceTree`: a sequence draft as a tree — every node with a badge per kind and its one-line summary
(`SequenceDraft.rows()`), the yes/no and split arms as labelled children, each `goto` as a row of its own,
and the nodes with problems marked. It shows a draft it is given; the editor screen edits the draft and
calls `show` again with where the cursor goes. Collapsed nodes stay collapsed across redraws.

With live counters on (`show_counts`), every step row ends with the published program's counters for its
node (`node_counts.counts_text`); `show_counts` relabels the rows in place, so the cursor does not move."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ....console.sequence_draft import DraftProblem, Path, Row, SequenceDraft
from ....console.sequence_live import NodeCounts
from .node_counts import counts_text

#: Badge colours per kind (Rich styles: the badge is the only coloured part of a row).
BADGE_STYLES = {"send": "bold blue", "wait": "bold yellow", "wait_for": "bold magenta", "branch": "bold cyan",
                "split": "bold cyan", "action": "bold green", "exit": "bold red", "goto": "bold"}

Key = tuple[Path, bool]  # (path, is the goto row)


def row_key(row: Row) -> Key:
    return (row.path, row.kind == "goto")


class SequenceTree(Tree[Row]):
    DEFAULT_CSS = """
    SequenceTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("steps", data=Row((), -1, "arm", "", "steps"), id=id)
        self.show_root = True
        self.guide_depth = 2
        self.auto_expand = False  # enter edits (the screen handles NodeSelected); space folds
        self.collapsed: set[Key] = set()
        self.nodes_by_key: dict[Key, TreeNode[Row]] = {}
        self._rows: list[Row] = []
        self._pending: Key | None = None  # where the cursor goes once the rebuilt tree is laid out
        self._problems_at: dict[Path, list[str]] = {}
        self.counts: dict[str, NodeCounts] | None = None  # live counters per node id (None: not shown)

    def show(self, draft: SequenceDraft, cursor: Path | Key | None = None,
             problems: list[DraftProblem] | None = None) -> None:
        """Rebuild from the draft, mark the steps with `problems` (the editor validates in a worker, so
        they may be of an older revision until the new check lands), and put the cursor on `cursor` (a
        path — its step row — or a row key; default: where it was)."""
        key: Key = self.cursor_key if cursor is None else (
            cursor if _is_key(cursor) else (cursor, False))  # type: ignore[assignment]
        at: dict[Path, list[str]] = {}
        for p in problems or []:
            if p.path is not None:
                at.setdefault(p.path, []).append(p.message)
        self._problems_at = at
        self.clear()
        name = draft.defn.name
        self.root.set_label(Text.assemble((name, "bold"), ("  (empty: `a` adds the first step)"
                                                            if not draft.defn.steps else "", "dim")))
        self.root.data = Row((), -1, "arm", "", name)
        nodes: dict[Key, TreeNode[Row]] = {((), False): self.root}
        stack: list[TreeNode[Row]] = [self.root]
        rows = draft.rows()
        for row in rows:
            parent = stack[row.depth] if row.depth < len(stack) else stack[-1]
            label = self._label(row)
            expandable = row.kind in ("wait_for", "branch", "split", "arm")
            node = parent.add(label, data=row, allow_expand=expandable) if expandable \
                else parent.add_leaf(label, data=row)
            nodes[row_key(row)] = node
            del stack[row.depth + 1:]
            stack.append(node)
        self._rows = rows
        self.nodes_by_key = nodes
        self.root.expand()
        for k, node in nodes.items():
            if node.allow_expand and not node.children:
                node.allow_expand = False  # an empty arm: nothing to fold
            elif node.allow_expand and k not in self.collapsed:
                node.expand()
        self._pending = key
        self.call_after_refresh(self._settle_cursor)

    def _settle_cursor(self) -> None:
        if self._pending is not None:
            key, self._pending = self._pending, None
            self._put_cursor(self._nearest(key))

    def _put_cursor(self, node: TreeNode[Row]) -> None:
        parent = node.parent
        while parent is not None:  # a cursor inside a collapsed node opens it
            if not parent.is_expanded:
                parent.expand()
                if parent.data is not None:
                    self.collapsed.discard(row_key(parent.data))
            parent = parent.parent
        # A node's line number is set when the tree's lines are built, which Textual does lazily on the next
        # render: build them now, or a node below the fold still has line -1 and the cursor lands on the top.
        _ = self._tree_lines
        self.move_cursor(node)

    def _nearest(self, key: Key) -> TreeNode[Row]:
        path, is_goto = key
        while True:
            node = self.nodes_by_key.get((path, is_goto)) or self.nodes_by_key.get((path, False))
            if node is not None:
                return node
            if not path:
                return self.root
            path = path[:-1]

    def show_counts(self, counts: dict[str, NodeCounts] | None) -> None:
        """Show these counters on every step row (None: hide them); relabels in place."""
        self.counts = counts
        for key, node in self.nodes_by_key.items():
            if node is not self.root and node.data is not None and not key[1]:
                node.set_label(self._label(node.data))

    def _label(self, row: Row) -> Text:
        problems = self._problems_at
        if row.kind == "arm":
            return Text(row.summary, style="bold italic")
        text = Text()
        text.append(f"{row.badge:<5}", style=BADGE_STYLES.get(row.kind, "bold"))
        text.append(" ")
        text.append(row.summary)
        if row.kind != "goto":
            text.append(f"  #{row.step_id}", style="dim")
            if row.label:
                text.append(f"  {row.label}", style="dim italic")
            if row.path in problems:
                text.append("  ✗ " + problems[row.path][0], style="bold red")
            if self.counts is not None:
                text.append_text(counts_text(self.counts.get(row.step_id or ""), row.kind))
        return text

    # -- where the cursor is ------------------------------------------------------------------------

    @property
    def cursor_row(self) -> Row | None:
        node = self.cursor_node
        return node.data if node is not None else None

    @property
    def cursor_key(self) -> Key:
        if self._pending is not None:
            return self._pending
        row = self.cursor_row
        return row_key(row) if row is not None else ((), False)

    @property
    def cursor_path(self) -> Path:
        """The draft path under the cursor (a goto row gives its step's path)."""
        return self.cursor_key[0]

    @property
    def rows(self) -> list[Row]:
        return self._rows

    def go(self, key: Key) -> None:
        self._pending = None
        self._put_cursor(self._nearest(key))

    # -- folding ------------------------------------------------------------------------------------

    @on(Tree.NodeCollapsed)
    def _collapsed(self, event: Tree.NodeCollapsed[Row]) -> None:
        if event.node.data is not None and event.node is not self.root:
            self.collapsed.add(row_key(event.node.data))

    @on(Tree.NodeExpanded)
    def _expanded(self, event: Tree.NodeExpanded[Row]) -> None:
        if event.node.data is not None:
            self.collapsed.discard(row_key(event.node.data))


def _is_key(value: object) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple)
            and isinstance(value[1], bool))
