"""`SequenceTree.show` redraws only what an edit changed: the rows before and after it are not visited, and
only the lines whose content changed drop their cached drawing. Whatever the edits, the tree must draw every
line exactly as a tree freshly built for the same draft does — the guides, badges, summaries, problem marks
and fold state — and keep its nodes in step with the draft's rows."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal

from nurture_tui.bench.sequence_editor import big_program
from nurture_tui.console.sequence_draft import SequenceDraft
from nurture_tui.sequences.model import SequenceDef, Step
from nurture_tui.sequences.validate import Catalog, default_rule_parser
from nurture_tui.tui.widgets.sequences.sequence_tree import SequenceTree, row_key

CATALOG = Catalog(templates={"cn-1-problem"}, segment_exists=None, parse_rule=default_rule_parser())


class TreeApp(App[None]):
    CSS = "SequenceTree { width: 80; height: 1fr; }"

    def compose(self) -> ComposeResult:
        with Horizontal(id="box"):
            yield SequenceTree(id="edited")


def program() -> SequenceDef:
    data = big_program()
    data["steps"] = data["steps"][:24]  # 8 blocks: taller than the tree, so some lines are below the fold
    data["steps"].insert(5, {"id": "ab", "split": {"arms": [
        {"name": "a", "weight": 50, "steps": [{"id": "in-a", "wait": {"duration": "1d"}}]},
        {"name": "b", "weight": 50, "steps": [{"id": "in-b", "exit": {}}]}]}})
    data["steps"][2]["no"] = [{"id": "retry", "send": {"template": "cn-1-problem"}, "goto": "send-0"}]
    return SequenceDef.model_validate(data)


def drawn(tree: SequenceTree) -> list[str]:
    """Every line of the tree as drawn (through its line cache), not only the visible ones."""
    style = tree.rich_style
    return [tree._render_line(y, 0, tree.size.width, style).text for y in range(len(tree._tree_lines))]


async def fresh_drawing(app: TreeApp, pilot: Any, tree: SequenceTree, draft: SequenceDraft) -> list[str]:
    fresh = SequenceTree(id="fresh")
    fresh.collapsed = {key for key, node in tree.nodes_by_key.items()  # folded as the edited tree's nodes are
                       if node is not tree.root and node.allow_expand and not node.is_expanded}
    await app.query_one("#box").mount(fresh)
    await pilot.pause()
    fresh.show(draft, tree.cursor_key, draft.problems())
    await pilot.pause()
    lines = drawn(fresh)
    await fresh.remove()
    return lines


async def test_edits_draw_what_a_fresh_tree_draws() -> None:
    app = TreeApp()
    async with app.run_test(size=(160, 30)) as pilot:
        tree = app.query_one("#edited", SequenceTree)
        draft = SequenceDraft(program(), CATALOG)
        tree.show(draft, (), draft.problems())
        await pilot.pause()
        drawn(tree)  # every line cached: a stale one would show below

        def same_nodes() -> None:
            shown = []
            stack = list(reversed(tree.root.children))
            while stack:
                node = stack.pop()
                assert node.data is not None
                shown.append(node.data)
                stack.extend(reversed(node.children))
            assert shown == draft.rows()
            assert all(tree.nodes_by_key[row_key(r)].data == r for r in shown)

        edits: list[tuple[str, Any]] = [
            ("move send-1 down", lambda: draft.move(draft.find("send-1") or (), 1)),
            ("move it back", lambda: draft.move(draft.find("send-1") or (), -1)),
            ("undo", lambda: draft.undo() and None),
            ("redo", lambda: draft.redo() and None),
            ("move the first step down", lambda: draft.move((0,), 1)),
            ("move the split up", lambda: draft.move(draft.find("ab") or (), -1)),
            ("delete a step with an arm", lambda: draft.delete(draft.find("opened-1") or ())),
            ("a problem: the goto's target deleted", lambda: draft.delete(draft.find("send-0") or ())),
            ("fold the split", None),
            ("move a step past the folded split", lambda: draft.move(draft.find("wait-2") or (), -1)),
            ("paste a subtree", lambda: draft.paste_after((2,), draft.copy(draft.find("opened-2") or ()))),
            ("rename, the watching step's summary follows", lambda: draft.rename(draft.find("send-3") or (),
                                                                                  "send-three")),
            ("relabel in place", lambda: draft.replace(draft.find("wait-4") or (), Step.model_validate(
                {"id": "wait-4", "wait": {"duration": "2d"}, "label": "longer"}))),
            ("the problem fixed", lambda: draft.add_after((), Step.model_validate(
                {"id": "send-0", "send": {"template": "cn-1-problem"}}))),
            ("delete the last step", lambda: draft.delete((len(draft.defn.steps) - 1,))),
            ("undo all", lambda: [draft.undo() for _ in range(20)] and None),
        ]
        for what, edit in edits:
            if edit is None:
                tree.nodes_by_key[(draft.find("ab") or (), False)].collapse()
                await pilot.pause()
                cursor = None
            else:
                cursor = edit()
            tree.show(draft, cursor, draft.problems())
            await pilot.pause()
            same_nodes()
            assert drawn(tree) == await fresh_drawing(app, pilot, tree, draft), what
        assert any("✗" in line for line in drawn(tree)) is bool(draft.problems())
