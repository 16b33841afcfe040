"""A segment rule being edited: a tree of groups and conditions with every edit the builder offers (add,
replace, delete, move, indent, outdent) and undo/redo. Pure data, no Textual and no database, so the editor's
behaviour is testable without a terminal.

A node is addressed by its path: the indices from the root group down (`()` is the root group). Conditions
are kept in the rule language's data shape (`{"field": "score", "op": "ge", "value": 50}`,
`{"activity": "open", "within": "14d"}`, `{"in_segment": "Customers"}`); a group is `Group(op, items)`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..segments.rules import GROUP_OPS, Rule, parse_rule, render

Path = tuple[int, ...]
#: Undo history kept per editor (each entry is a small deep copy of the tree).
MAX_UNDO = 200


@dataclass
class Group:
    op: str = "all"
    items: list[Group | dict[str, Any]] = field(default_factory=list)


Node = Group | dict[str, Any]


def from_rule_data(data: Any) -> Group:
    """The editable tree of rule data (what `Rule.to_data()` or a stored segment holds)."""
    if isinstance(data, list):
        data = {"all": data}
    if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in GROUP_OPS:
        (op, items), = data.items()
        return Group(op, [_node(i) for i in (items or [])])
    return Group("all", [_node(data)] if data else [])


def _node(data: Any) -> Node:
    if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in GROUP_OPS:
        return from_rule_data(data)
    return dict(data)


def to_rule_data(node: Node) -> dict[str, Any]:
    if isinstance(node, Group):
        return {node.op: [to_rule_data(i) for i in node.items]}
    return dict(node)


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


class RuleDraft:
    def __init__(self, data: Any = None) -> None:
        self.root = from_rule_data(data) if data else Group("all", [])
        self._undo: list[Group] = []
        self._redo: list[Group] = []
        self.changes = 0  # edits since load or the last `mark_saved`

    # -- reading ----------------------------------------------------------------------------------

    def node(self, path: Path) -> Node:
        node: Node = self.root
        for i in path:
            assert isinstance(node, Group)
            node = node.items[i]
        return node

    def parent(self, path: Path) -> Group:
        parent = self.node(path[:-1])
        assert isinstance(parent, Group)
        return parent

    def walk(self) -> list[tuple[Path, Node]]:
        """Every node in display order (depth first), the root first."""
        out: list[tuple[Path, Node]] = []

        def visit(path: Path, node: Node) -> None:
            out.append((path, node))
            if isinstance(node, Group):
                for i, child in enumerate(node.items):
                    visit((*path, i), child)

        visit((), self.root)
        return out

    def data(self) -> dict[str, Any]:
        return to_rule_data(self.root)

    @property
    def dirty(self) -> bool:
        return self.changes != 0

    def mark_saved(self) -> None:
        self.changes = 0

    # -- checking ---------------------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """Every invalid condition (checked on its own, so each error sits at its node) and empty groups."""
        out: list[Problem] = []
        for path, node in self.walk():
            where = "rule" + "".join(f"[{i + 1}]" for i in path)
            if isinstance(node, Group):
                if not node.items and path:
                    out.append(Problem(path, f"{where}: an empty {node.op} group matches "
                                             f"{'everyone' if node.op != 'any' else 'no one'}; add a condition"))
                continue
            try:
                parse_rule(node, where)
            except ValidationError as exc:
                out.append(Problem(path, str(exc)))
        return out

    def rule(self) -> Rule:
        """The rule, or a ValidationError for the first problem."""
        problems = self.problems()
        if problems:
            raise ValidationError("rule", problems[0].message)
        return parse_rule(self.data())

    def rendering(self) -> str:
        """The one-line English of the rule (best effort while conditions are invalid)."""
        try:
            return render(self.rule())
        except ValidationError:
            return render_partial(self.root)

    # -- editing ----------------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        self._undo.append(copy.deepcopy(self.root))
        del self._undo[:-MAX_UNDO]
        self._redo.clear()
        self.changes += 1

    def insert(self, at: Path, node: Node) -> Path:
        """Insert `node` so that it ends up at path `at` (its parent must be a group)."""
        self._checkpoint()
        parent = self.parent(at)
        index = min(at[-1], len(parent.items))
        parent.items.insert(index, copy.deepcopy(node))
        return (*at[:-1], index)

    def add(self, cursor: Path, node: Node) -> Path:
        """Add under the cursor: into a group (last), or right after a condition."""
        target = self.node(cursor)
        if isinstance(target, Group):
            return self.insert((*cursor, len(target.items)), node)
        return self.insert((*cursor[:-1], cursor[-1] + 1), node)

    def replace(self, path: Path, node: Node) -> Path:
        self._checkpoint()
        if not path:
            assert isinstance(node, Group)
            self.root = copy.deepcopy(node)
            return path
        self.parent(path).items[path[-1]] = copy.deepcopy(node)
        return path

    def set_group_op(self, path: Path, op: str) -> Path:
        if op not in GROUP_OPS:
            raise ValidationError("group", f"expected one of {', '.join(GROUP_OPS)}, got {op!r}")
        group = self.node(path)
        assert isinstance(group, Group)
        self._checkpoint()
        group = self.node(path)
        assert isinstance(group, Group)
        group.op = op
        return path

    def delete(self, path: Path) -> Path:
        """Delete the node (a group with everything in it); returns where the cursor goes."""
        if not path:
            raise ValidationError("rule", "the top group cannot be deleted (delete its conditions instead)")
        self._checkpoint()
        parent = self.parent(path)
        del parent.items[path[-1]]
        if parent.items:
            return (*path[:-1], min(path[-1], len(parent.items) - 1))
        return path[:-1]

    def move(self, path: Path, delta: int) -> Path:
        """Move up (-1) or down (+1) among its siblings; at either end it stays."""
        if not path:
            return path
        parent = self.parent(path)
        new = path[-1] + delta
        if not 0 <= new < len(parent.items):
            return path
        self._checkpoint()
        parent = self.parent(path)
        parent.items[path[-1]], parent.items[new] = parent.items[new], parent.items[path[-1]]
        return (*path[:-1], new)

    def indent(self, path: Path) -> Path:
        """Move into the group just above it (the previous sibling), as its last item."""
        if not path or path[-1] == 0:
            return path
        above = self.parent(path).items[path[-1] - 1]
        if not isinstance(above, Group):
            return path
        self._checkpoint()
        parent = self.parent(path)
        node = parent.items.pop(path[-1])
        above = parent.items[path[-1] - 1]
        assert isinstance(above, Group)
        above.items.append(node)
        return (*path[:-1], path[-1] - 1, len(above.items) - 1)

    def outdent(self, path: Path) -> Path:
        """Move out of its group, right after that group."""
        if len(path) < 2:
            return path
        self._checkpoint()
        parent = self.parent(path)
        node = parent.items.pop(path[-1])
        grand = self.parent(path[:-1])
        grand.items.insert(path[-2] + 1, node)
        return (*path[:-2], path[-2] + 1)

    def wrap(self, path: Path, op: str) -> Path:
        """Put the node into a new group of its own (e.g. to negate one condition with `none`)."""
        if not path:
            return path
        self._checkpoint()
        parent = self.parent(path)
        parent.items[path[-1]] = Group(op, [parent.items[path[-1]]])
        return (*path, 0)

    def replace_all(self, data: Any) -> Path:
        """The whole rule from rule data (the quick-filter line); the cursor goes to the top."""
        self._checkpoint()
        self.root = from_rule_data(data)
        return ()

    # -- undo ---------------------------------------------------------------------------------------

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.root)
        self.root = self._undo.pop()
        self.changes -= 1
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.root)
        self.root = self._redo.pop()
        self.changes += 1
        return True


def describe(node: Node) -> str:
    """One line for a node in the tree: a group's operator, a condition in English (or its raw data when
    it does not parse yet)."""
    if isinstance(node, Group):
        return {"all": "ALL of", "any": "ANY of", "none": "NONE of"}[node.op]
    try:
        return render(parse_rule(node))
    except ValidationError:
        return " ".join(f"{k}={v}" for k, v in node.items())


def render_partial(group: Group) -> str:
    parts = [describe(i) if not isinstance(i, Group) else f"({render_partial(i)})" for i in group.items]
    joiner = {"all": " AND ", "any": " OR ", "none": " OR "}[group.op]
    text = joiner.join(parts) or "everyone"
    return f"NOT ({text})" if group.op == "none" else text
