"""`RuleTree`: a segment rule as an indented tree of groups and conditions, each condition in English,
invalid ones marked with their problem. It shows a `RuleDraft` it is given; the editor screen edits the
draft and calls `show` again, passing where the cursor should be."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ....console.segment_draft import Group, Path, RuleDraft, describe


class RuleTree(Tree[Path]):
    DEFAULT_CSS = """
    RuleTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("ALL of", data=(), id=id)
        self.show_root = True
        self.guide_depth = 3
        self.auto_expand = False  # enter edits the node (the screen handles NodeSelected); groups stay open

    def show(self, draft: RuleDraft, cursor: Path | None = None) -> None:
        """Rebuild from the draft (rules are small) and put the cursor on `cursor` (default: where it was)."""
        if cursor is None:
            cursor = self.cursor_path
        problems = {p.path: p.message for p in draft.problems()}
        self.clear()
        self.root.set_label(self._label(draft.root, (), problems))
        self.root.data = ()
        nodes: dict[Path, TreeNode[Path]] = {(): self.root}
        self._add(self.root, draft.root, (), problems, nodes)
        self.root.expand_all()
        target = nodes.get(cursor) or nodes.get(cursor[:-1]) or self.root
        self.call_after_refresh(self.move_cursor, target)

    def _add(self, parent: TreeNode[Path], group: Group, path: Path, problems: dict[Path, str],
             nodes: dict[Path, TreeNode[Path]]) -> None:
        for i, item in enumerate(group.items):
            child_path = (*path, i)
            label = self._label(item, child_path, problems)
            if isinstance(item, Group):
                node = parent.add(label, data=child_path)
                self._add(node, item, child_path, problems, nodes)
            else:
                node = parent.add_leaf(label, data=child_path)
            nodes[child_path] = node

    @staticmethod
    def _label(item: Group | dict[str, Any], path: Path, problems: dict[Path, str]) -> Text:
        text = Text(describe(item), style="bold" if isinstance(item, Group) else "")
        if path in problems:
            text.append("  ✗ " + problems[path].split(": ", 1)[-1], style="bold red")
        return text

    @property
    def cursor_path(self) -> Path:
        node = self.cursor_node
        return node.data if node is not None and node.data is not None else ()
