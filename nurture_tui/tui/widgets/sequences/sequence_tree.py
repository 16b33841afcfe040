"""`SequenceTree`: a sequence draft as a tree — every node with a badge per kind and its one-line summary
(`SequenceDraft.rows()`), the yes/no and split arms as labelled children, each `goto` as a row of its own,
and the nodes with problems marked. It shows a draft it is given; the editor screen edits the draft and
calls `show` again with where the cursor goes. Collapsed nodes stay collapsed across redraws.

With live counters on (`show_counts`), every step row ends with the published program's counters for its
node (`node_counts.counts_text`); `show_counts` relabels the rows in place, so the cursor does not move."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.cells import cell_len
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
LineSignature = tuple[tuple[int, bool], ...]  # the nodes on a line's path: (node id, is its list's last)


def row_key(row: Row) -> Key:
    return (row.path, row.kind == "goto")


class SequenceTree(Tree[Row]):
    DEFAULT_CSS = """
    SequenceTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        self._widths: dict[int, tuple[Text, int]] = {}  # node id → (its label, the label's cell width)
        self._diffing = False  # `show` is changing nodes: only the lines that change are redrawn
        self._signatures: list[LineSignature] | None = None  # what each line showed at the last build
        self._same: tuple[int, int] = (0, 0)  # the rows `show` found unchanged: [0, a) and [b, end)
        super().__init__("steps", data=Row((), -1, "arm", "", "steps"), id=id)
        self.show_root = True
        self.guide_depth = 2
        self.auto_expand = False  # enter edits (the screen handles NodeSelected); space folds
        self.collapsed: set[Key] = set()
        self.nodes_by_key: dict[Key, TreeNode[Row]] = {}
        self._rows: list[Row] = []
        self._pending: Key | None = None  # where the cursor goes once the rebuilt tree is laid out
        self._problems_at: dict[Path, list[str]] = {}
        self._marks_before: dict[Path, list[str]] = {}  # the marks `show` replaced (what kept rows showed)
        self.counts: dict[str, NodeCounts] | None = None  # live counters per node id (None: not shown)
        self.allocations: dict[str, str] = {}  # adaptive split id → its allocation now (with the counters)

    def show(self, draft: SequenceDraft, cursor: Path | Key | None = None,
             problems: list[DraftProblem] | None = None) -> None:
        """Show the draft, mark the steps with `problems` (the editor validates in a worker, so they may be
        of an older revision until the new check lands), and put the cursor on `cursor` (a path — its step
        row — or a row key; default: where it was).

        A keyed diff, not a rebuild: rows are matched by what they are (a step by its id, an arm by its
        step and name, a goto by its step), so an edit touches only the nodes it changed — a move removes
        and re-adds the moved steps, a form edit relabels one row — and a long program stays fast. The rows
        before and after the edit that are the same as last time (same place, same content) are not even
        visited, and only the screen lines whose content changed are drawn again (`_build`)."""
        key: Key = self.cursor_key if cursor is None else (
            cursor if _is_key(cursor) else (cursor, False))  # type: ignore[assignment]
        marks_before, self._problems_at = self._problems_at, _by_path(problems)
        self._marks_before = marks_before
        name = draft.defn.name
        root_label = Text.assemble((name, "bold"), ("  (empty: `a` adds the first step)"
                                                     if not draft.defn.steps else "", "dim"))
        self._diffing = True  # the node changes below redraw only the lines they change
        try:
            if root_label != self.root.label:  # the root is on every line's path: relabelled, all redraw
                self.root.set_label(root_label)
            self.root.data = Row((), -1, "arm", "", name)
            rows = draft.rows()
            self._same = _same_ends(self._rows, rows)
            counters = self._updates, self.root._updates
            self._reconcile(self.root, _forest(rows))
            # `TreeNode.add` bumps the tree's change counter and the parent's, and both are in the cache key of
            # every line (the root is on every line's path): every line would be drawn again. Put them back;
            # `_build` drops the drawings of the lines whose content changed.
            self._updates, self.root._updates = counters
            self._rows = rows
            self._index_nodes()
            self._relabel_marks(marks_before)  # rows left alone above whose marks changed
            if not self.root.is_expanded:
                self.root.expand()
            if self.is_mounted and self.size.height:
                self._pending = None
                self._put_cursor(self._nearest(key))  # now, not after a refresh: an edit paints in one frame
            else:  # not laid out yet (the first show): once it is
                self._pending = key
                self.call_after_refresh(self._settle_cursor)
        finally:
            self._diffing = False

    def _index_nodes(self) -> None:
        nodes: dict[Key, TreeNode[Row]] = {((), False): self.root}
        stack = list(self.root.children)
        while stack:
            node = stack.pop()
            if node.data is not None:
                nodes[row_key(node.data)] = node
            stack.extend(node.children)
        self.nodes_by_key = nodes
        if len(self._widths) > 2 * len(nodes) + 64:  # forget the widths of removed nodes
            self._widths = {n.id: w for n in nodes.values() if (w := self._widths.get(n.id)) is not None}

    def _reconcile(self, parent: TreeNode[Row], items: list[_Item]) -> None:
        """Make `parent`'s children show `items`: the common head and tail are kept (updated in place, and
        reconciled below), the middle is removed and added anew."""
        old = list(parent.children)
        old_ids = [_ident(n.data, parent.data) for n in old]
        new_ids = [item.ident for item in items]
        head = 0
        while head < min(len(old), len(items)) and old_ids[head] == new_ids[head]:
            head += 1
        tail = 0
        while (tail < min(len(old), len(items)) - head
               and old_ids[len(old) - 1 - tail] == new_ids[len(items) - 1 - tail]):
            tail += 1
        for node in old[head:len(old) - tail]:
            node.remove()
        before = old[len(old) - tail] if tail else None
        for item in items[head:len(items) - tail]:
            self._add(parent, item, before)
        kept = list(zip(old[:head], items[:head], strict=True))
        kept += list(zip(old[len(old) - tail:], items[len(items) - tail:], strict=True))
        prefix, suffix = self._same
        for node, item in kept:
            row = item.row
            if (item.end <= prefix or item.start >= suffix) and node.data == row:
                continue  # it and all below it are the rows shown already, in the same place
            same_marks = self._marks_before.get(row.path) == self._problems_at.get(row.path)
            if node.data != row or not same_marks:  # a row's label is its row, its marks, the counters
                node.data = row
                label = self._label(row)
                if label != node.label:
                    node.set_label(label)
            self._reconcile(node, item.children)
            if node.allow_expand != bool(item.children):
                node.allow_expand = bool(item.children)  # an empty arm: nothing to fold

    def _relabel_marks(self, before: dict[Path, list[str]]) -> None:
        now = self._problems_at
        for path in {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)}:
            node = self.nodes_by_key.get((path, False))
            if node is not None and node.data is not None and node is not self.root:
                label = self._label(node.data)
                if label != node.label:
                    node.set_label(label)

    def _add(self, parent: TreeNode[Row], item: _Item, before: TreeNode[Row] | None) -> None:
        row = item.row
        node = parent.add(self._label(row), data=row, before=before, allow_expand=bool(item.children))
        for child in item.children:
            self._add(node, child, None)
        if item.children and row_key(row) not in self.collapsed:
            node.expand()

    # -- what Textual's Tree does on every change, made cheaper -----------------------------------------

    def _invalidate(self) -> None:
        """What `Tree` calls on every node add, remove and fold. As `Tree._invalidate`, but a repaint, not a
        layout of the screen: the tree's height is fixed (`1fr`), and when its lines change its virtual
        size, that reactive lays it out itself (a layout re-renders the whole screen, not just the tree).
        While `show` changes nodes, not even that: the lines are rebuilt, and `_build` redraws those whose
        content changed."""
        if self._diffing:
            self._tree_lines_cached = None
            return
        self._clear_line_cache()
        self._updates += 1
        self.root._reset()
        self.refresh()

    def _clear_line_cache(self) -> None:
        super()._clear_line_cache()
        self._signatures = None  # every line is drawn again: nothing to compare the next build with

    def _build(self) -> None:
        """`Tree._build`, then the lines compared with the last build's: each line's drawing is cached under
        its number and the state of the nodes on its path, so a line whose number now shows other nodes (or
        the same nodes with other guides) drops its cached drawing and is repainted; the others keep theirs.
        A move redraws the moved steps' lines, not the whole tree."""
        width = self.virtual_size.width
        super()._build()
        lines = self._tree_lines_cached or []
        signatures = [_signature(line.path, line.last) for line in lines]
        before, self._signatures = self._signatures, signatures
        if before is None:
            return  # the cache was cleared, the widget refreshed
        if self.virtual_size.width != width:  # every line is padded to the widest
            self._line_cache.clear()
            self._updates += 1
            self.refresh()
            return
        changed = {y for y in range(max(len(before), len(signatures)))
                   if y >= len(before) or y >= len(signatures) or before[y] != signatures[y]}
        if changed:
            for key in [k for k in self._line_cache.keys() if k[0] in changed]:  # noqa: SIM118 (no __iter__)
                self._line_cache.discard(key)
            for y in changed:
                self._refresh_line(y)

    def get_label_width(self, node: TreeNode[Row]) -> int:
        """As `Tree.get_label_width` (the toggle icon and the label), with the label's width kept per node:
        Textual measures every line after every change, and rendering 300 labels to measure them is most of a
        rebuild's cost."""
        label = node.label
        assert isinstance(label, Text)  # `process_label` made it one
        cached = self._widths.get(node.id)
        if cached is None or cached[0] is not label:
            cached = self._widths[node.id] = (label, label.cell_len)
        icon = (self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE) if node.allow_expand else ""
        return cached[1] + cell_len(icon)

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

    def mark_problems(self, problems: list[DraftProblem]) -> None:
        """Mark these problems (a check of the draft shown now): relabels only the steps whose marks
        changed — a check after every edit never rebuilds the tree."""
        old, new = self._problems_at, _by_path(problems)
        self._problems_at = new
        for path in {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}:
            node = self.nodes_by_key.get((path, False))
            if node is not None and node.data is not None and node is not self.root:
                node.set_label(self._label(node.data))

    def show_counts(self, counts: dict[str, NodeCounts] | None, allocations: dict[str, str] | None = None) -> None:
        """Show these counters on every step row (None: hide them), and each adaptive split's allocation now;
        relabels in place."""
        self.counts = counts
        self.allocations = allocations or {}
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
                if row.step_id in self.allocations:  # an adaptive split: the traffic share each arm gets now
                    text.append(f"  now {self.allocations[row.step_id]}", style="cyan")
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


def _signature(path: list[TreeNode[Row]], last: bool) -> LineSignature:
    """What a tree line draws besides the nodes' own state: which nodes are on its path, and which of them
    end their list (the guides: `├──` or `└──`, `│` or blank)."""
    return (*((node.id, node.is_last) for node in path), (-1, last))


def _same_ends(old: list[Row], new: list[Row]) -> tuple[int, int]:
    """The rows that did not change, as `(a, b)`: `new[:a] == old[:a]` and `new[b:]` equals the same number of
    rows at the end of `old`."""
    n = min(len(old), len(new))
    a = 0
    while a < n and old[a] == new[a]:
        a += 1
    tail = 0
    while tail < n - a and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    return a, len(new) - tail


def _by_path(problems: list[DraftProblem] | None) -> dict[Path, list[str]]:
    at: dict[Path, list[str]] = {}
    for p in problems or []:
        if p.path is not None:
            at.setdefault(p.path, []).append(p.message)
    return at


@dataclass
class _Item:
    """A row with its children: what `_reconcile` matches against a node."""

    row: Row
    ident: tuple[str, ...]
    start: int  # its row's index in `rows()`
    end: int = 0  # past its last descendant's
    children: list[_Item] = field(default_factory=list)


def _ident(row: Row | None, parent: Row | None) -> tuple[str, ...]:
    """What a row is, whatever its path: a step by its id, a goto by its step, an arm by its step and name."""
    if row is None:
        return ("?",)
    if row.kind == "arm":
        owner = parent.step_id if parent is not None and parent.step_id else "?"
        return ("arm", owner, str(row.path[-1]))
    return ("goto" if row.kind == "goto" else "step", row.step_id or "?", row.kind)


def _forest(rows: list[Row]) -> list[_Item]:
    """`rows()` (depth-first, with depths) as nested items; siblings with the same identity (duplicate ids
    in a draft being edited) get a running number so matching stays one-to-one."""
    top: list[_Item] = []
    stack: list[tuple[Row | None, list[_Item]]] = [(None, top)]
    open_items: list[_Item] = []  # the item at each depth whose descendants are being read
    seen: dict[tuple[int, tuple[str, ...]], int] = {}  # (id of a sibling list, identity) → how many so far
    for index, row in enumerate(rows):
        for done in open_items[row.depth:]:
            done.end = index
        del stack[row.depth + 1:], open_items[row.depth:]
        parent_row, siblings = stack[-1]
        ident = _ident(row, parent_row)
        count = seen.get((id(siblings), ident), 0)
        seen[(id(siblings), ident)] = count + 1
        item = _Item(row, (*ident, str(count)) if count else ident, index)
        siblings.append(item)
        stack.append((row, item.children))
        open_items.append(item)
    for done in open_items:
        done.end = len(rows)
    return top
