"""The sequence editor, by keyboard alone: the tree of a stored program (badges, summaries, arms, gotos),
folding and jumping, every edit, the problems panel, a save refused after a concurrent apply. Building the
samples from nothing is `test_sequence_builds.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_support import make_test_app, open_sequence_editor, wait_for

from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen
from nurture_tui.workspace import Workspace

SIZE = (120, 40)
SAMPLES = Path(__file__).resolve().parents[2] / "sequences"


async def open_editor(pilot: Any, name: str | None) -> Any:
    editor = await open_sequence_editor(pilot, name)
    await settled(pilot, editor)
    return editor


async def settled(pilot: Any, editor: Any) -> None:
    await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)
    await pilot.pause(0.05)


def labels(editor: Any) -> list[str]:
    out = []

    def visit(node: Any, depth: int) -> None:
        for child in node.children:
            out.append("  " * depth + str(child.label))
            visit(child, depth + 1)

    visit(editor.seq_tree.root, 0)
    return out


async def test_the_tree_of_a_stored_program(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        print("\n".join(labels(editor)))


async def until_screen(pilot: Any, cls: type) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, cls))


# ---------------------------------------------------------------------------------------------------
# The tree, editing, problems, saving and publishing a stored program


async def test_navigate_fold_jump_move_delete_paste_undo_and_save(seeded_ws: Workspace) -> None:
    from nurture_tui.sequences.service import draft_definition
    from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
    from nurture_tui.tui.screens.dialogs.node_form import NodeForm

    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        tree = editor.seq_tree
        assert [line.strip() for line in labels(editor)] == [
            "SEND  send welcome-1  #hello", "WAIT  wait 2d  #pause", "WATCH wait_for click up to 5d  #engaged",
            "yes", "DO    action adjust_score +10  #hot", "no", "SEND  send welcome-2  #nudge"]
        title = str(editor.query_one("#name").render())
        assert "v1 active" in title and "saved" in title and "✓ publishable" in title
        await pilot.press("J")  # next branch
        await wait_for(pilot, lambda: tree.cursor_path == (2,))
        await pilot.press("space")  # fold it: it stays folded across redraws
        await wait_for(pilot, lambda: ((2,), False) in tree.collapsed)
        await pilot.press("up", "shift+up")  # move `pause` first
        await wait_for(pilot, lambda: [s.id for s in editor.draft.defn.steps] == ["pause", "hello", "engaged"])
        assert tree.cursor_path == (0,) and not tree.nodes_by_key[((2,), False)].is_expanded
        assert "● unsaved" in str(editor.query_one("#name").render())
        await pilot.press("u")
        await wait_for(pilot, lambda: [s.id for s in editor.draft.defn.steps] == ["hello", "pause", "engaged"])
        await pilot.press("ctrl+r", "u")
        await wait_for(pilot, lambda: not editor.draft.dirty)

        # nudge gets a goto back to hello (its form: id, template, label, category, send time, goto)
        await pilot.press("J", "space", "down", "down", "down", "down")
        await wait_for(pilot, lambda: tree.cursor_path == (2, "no", 0))
        await pilot.press("e")
        await until_screen(pilot, NodeForm)
        await pilot.press("enter", "enter", "enter", "enter", "enter", *"hello", "ctrl+s")
        await until_screen(pilot, SequenceEditorScreen)
        await wait_for(pilot, lambda: editor.draft.step((2, "no", 0)).goto == "hello")
        assert "GOTO  goto hello" in [line.strip() for line in labels(editor)]
        await pilot.press("g")  # to the goto's target, and back
        await wait_for(pilot, lambda: tree.cursor_path == (0,))
        await pilot.press("backspace")
        await wait_for(pilot, lambda: tree.cursor_path == (2, "no", 0))

        # deleting hello asks, naming the goto that points at it; the problem is listed and jumps to nudge
        tree.go(((0,), False))
        await pilot.press("d")
        await until_screen(pilot, ConfirmModal)
        assert "nudge" in str(app.screen.query_one("#scope").render())
        await pilot.press("y")
        await until_screen(pilot, SequenceEditorScreen)
        await settled(pilot, editor)
        assert [p.path for p in editor.problems] == [(1, "no", 0)]
        assert "✗" in str(tree.nodes_by_key[((1, "no", 0), False)].label)
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: tree.cursor_path == (1, "no", 0) and tree.has_focus)
        await pilot.press("u")
        await settled(pilot, editor)
        assert editor.problems == []

        # copy `hot` and paste it after itself: a fresh id
        tree.go(((2, "yes", 0), False))
        await pilot.pause()
        await pilot.press("y", "p")
        await wait_for(pilot, lambda: [s.id for s in editor.draft.defn.steps[2].yes or []] == ["hot", "hot-2"])
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.draft.dirty)
    with seeded_ws.engine.connect() as conn:
        stored = draft_definition(conn, "welcome")
    assert [s.id for s in stored.steps[2].yes or []] == ["hot", "hot-2"]
    assert (stored.steps[2].no or [])[0].goto == "hello"


async def test_a_concurrent_apply_is_not_overwritten(seeded_ws: Workspace) -> None:
    from tui_support import T0

    from nurture_tui.sequences.service import apply_text, draft_definition, export
    from nurture_tui.store.engine import write_tx

    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        await pilot.press("down", "d")  # delete hello: unsaved
        await wait_for(pilot, lambda: editor.draft.dirty)
        with write_tx(seeded_ws.engine) as conn:  # meanwhile, `nurture sequences apply` changes the draft
            text = export(conn, "welcome").replace("duration: 2d", "duration: 3d")
            apply_text(conn, text, "welcome.yaml", user="bob", now=T0)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("changed in the store since you opened it" in n.message
                                          for n in app._notifications))
        assert editor.draft.dirty
        assert editor.unsaved_changes() == "sequence welcome"  # the quit guard still asks
    with seeded_ws.engine.connect() as conn:
        stored = draft_definition(conn, "welcome")
    assert [s.id for s in stored.steps] == ["hello", "pause", "engaged"] and stored.steps[1].wait is not None
    assert stored.steps[1].wait.duration == "3d"


async def test_publish_shows_the_diff_and_the_leads_in_flight_then_migrates(seeded_ws: Workspace) -> None:
    from rich.console import Console
    from sqlalchemy import func, select

    from nurture_tui.store import tables as t
    from nurture_tui.tui.screens.dialogs.sequence_publish import PublishModal, preview_renderable

    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        await pilot.press("down", "down", "shift+up")  # pause before hello
        await wait_for(pilot, lambda: editor.draft.defn.steps[0].id == "pause")
        await pilot.press("P")  # saves first, then shows what publishing does
        await until_screen(pilot, PublishModal)
        preview = app.screen.preview
        assert set(preview.diff.changed) >= {"hello", "pause"} and not preview.problems
        flights = {f.node_id: (f.waiting, f.active, f.moves) for f in preview.in_flight}
        assert flights == {"hello": (0, 10, True), "pause": (10, 0, True), "engaged": (10, 0, True)}
        console = Console(width=100, record=True)
        console.print(preview_renderable("welcome", 1, preview))
        shown = console.export_text()
        assert "changed" in shown and "10 move" in shown and "10 running stay" in shown
        await pilot.press("m")
        await until_screen(pilot, SequenceEditorScreen)
        await wait_for(pilot, lambda: editor.state.version == 2)
        assert "v2 active  saved" in str(editor.query_one("#name").render())
    with seeded_ws.engine.connect() as conn:
        current = conn.execute(select(t.sequence.c.current_version_id)).scalar_one()
        by_version: dict[int, int] = dict(conn.execute(select(t.enrollment.c.version_id, func.count())
                                       .group_by(t.enrollment.c.version_id)).all())
    assert by_version == {current: 20, 1: 10}  # the waiting moved; the running stay on v1


async def test_the_cursor_follows_a_step_moved_below_the_fold(seeded_ws: Workspace) -> None:
    """In a long program the moved step keeps the cursor (a node past the first screen used to send the
    cursor to the top: its line number was not built yet)."""
    from tui_support import T0

    from nurture_tui.bench.sequence_editor import big_program
    from nurture_tui.sequences.model import SequenceDef
    from nurture_tui.sequences.service import save_draft
    from nurture_tui.store.engine import write_tx

    with write_tx(seeded_ws.engine) as conn:
        save_draft(conn, SequenceDef.model_validate(big_program()), user="alice", now=T0, allow_problems=True)
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=(100, 24)) as pilot:
        editor = await open_editor(pilot, "bench-200")
        tree = editor.seq_tree
        tree.go(((17,), False))
        await pilot.pause()
        assert tree.cursor_path == (17,)
        await pilot.press("shift+down")
        await wait_for(pilot, lambda: editor.draft.revision == 1)
        await pilot.pause()
        assert tree.cursor_path == (18,) and editor.draft.step((18,)).id == "opened-5"
        await pilot.press("u")
        await wait_for(pilot, lambda: editor.draft.revision == 2)
        await pilot.pause()
        assert tree.cursor_path == (18,)
