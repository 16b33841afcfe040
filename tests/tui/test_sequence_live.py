"""The editor and the files, both ways: a YAML file applied with `nurture sequences apply` while the editor is
open shows up in it (an unedited draft reloads with a notice; with unsaved edits it asks — reload and lose
them, or keep them, and then saving is refused and says why; `R` reloads on demand), and what the editor
saves, `nurture sequences export` writes as YAML that re-imports identically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli
from tui_support import make_test_app, open_sequence_editor, wait_for

from nurture_tui.sequences.codec import parse_text
from nurture_tui.sequences.service import checksum, draft_definition, export
from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal
from nurture_tui.workspace import Workspace

SIZE = (120, 36)


async def open_editor(pilot: Any, name: str) -> Any:
    return await open_sequence_editor(pilot, name)


def apply_edited_file(ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str) -> None:
    """`nurture sequences apply` of the exported welcome program with `old` replaced by `new`."""
    with ws.engine.connect() as conn:
        text = export(conn, "welcome")
    path = tmp_path / "welcome.yaml"
    path.write_text(text.replace(old, new))
    code, _out, err = run_cli(capsys, "sequences", "apply", str(path), "--db", ws.settings.db_url)
    assert code == 0, err


def pause_of(editor: Any) -> str | None:
    step = editor.draft.defn.steps[1]
    return step.wait.duration if step.wait is not None else None


async def test_an_apply_while_open_reloads_an_unedited_draft(
        seeded_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        await pilot.press("down", "down")  # the cursor on pause: it stays there across the reload
        cursor = editor.seq_tree.cursor_key
        apply_edited_file(seeded_ws, tmp_path, capsys, "duration: 2d", "duration: 3d")
        await wait_for(pilot, lambda: pause_of(editor) == "3d")
        assert any("changed (a `nurture sequences apply`?): reloaded" in n.message for n in app._notifications)
        assert not editor.draft.dirty
        await wait_for(pilot, lambda: editor.seq_tree.cursor_key == cursor)
        assert "wait 3d" in str(editor.seq_tree.cursor_node.label)


async def test_an_apply_over_unsaved_edits_asks_keep_then_save_is_refused_then_reload(
        seeded_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        await pilot.press("down", "shift+down")  # hello after pause: unsaved
        await wait_for(pilot, lambda: editor.draft.dirty)
        apply_edited_file(seeded_ws, tmp_path, capsys, "duration: 2d", "duration: 3d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert "changed while you were editing" in app.screen.title_text
        await pilot.press("down", "enter")  # keep my edits
        await wait_for(pilot, lambda: app.screen is editor)
        assert editor.draft.dirty and [s.id for s in editor.draft.defn.steps] == ["pause", "hello", "engaged"]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("changed in the store since you opened it" in n.message
                                          for n in app._notifications))
        await pilot.pause(2.5)  # a later watch does not ask again for the same stored draft
        assert app.screen is editor
        with seeded_ws.engine.connect() as conn:
            assert draft_definition(conn, "welcome").steps[1].wait.duration == "3d"  # not overwritten

        await pilot.press("R")  # reload on demand: asks, since the edits are lost
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: pause_of(editor) == "3d" and not editor.draft.dirty)
        assert [s.id for s in editor.draft.defn.steps] == ["hello", "pause", "engaged"]

        assert editor.seq_tree.cursor_path == (1,)  # the cursor stayed at its place across the reload
        await pilot.press("shift+up")  # edits again, and another apply: this time reload
        await wait_for(pilot, lambda: editor.draft.dirty)
        apply_edited_file(seeded_ws, tmp_path, capsys, "duration: 3d", "duration: 4d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("enter")  # reload and lose my edits
        await wait_for(pilot, lambda: pause_of(editor) == "4d" and not editor.draft.dirty)
        await pilot.press("ctrl+s")  # nothing refused now: the base is the stored draft
        await wait_for(pilot, lambda: any("saved the draft of welcome" in n.message for n in app._notifications))


async def test_what_the_editor_saves_exports_and_reimports_identically(
        seeded_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        await pilot.press("down", "down", "shift+up")  # pause first
        await pilot.press("y", "down", "down", "down", "down", "p")  # a copy of pause pasted into the no arm
        await wait_for(pilot, lambda: len(editor.draft.ids()) == 6)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.draft.dirty)
        saved = editor.draft.definition()

    url = seeded_ws.settings.db_url
    code, text, err = run_cli(capsys, "sequences", "export", "welcome", "--db", url)
    assert code == 0, err
    parsed = parse_text(text, "welcome.yaml")
    assert parsed.definition is not None and parsed.definition.to_json() == saved.to_json()
    with seeded_ws.engine.connect() as conn:
        before = checksum(draft_definition(conn, "welcome").to_json())
    path = tmp_path / "welcome.yaml"
    path.write_text(text)
    code, _out, err = run_cli(capsys, "sequences", "apply", str(path), "--db", url)
    assert code == 0, err
    with seeded_ws.engine.connect() as conn:
        assert checksum(draft_definition(conn, "welcome").to_json()) == before
    code, again, _err = run_cli(capsys, "sequences", "export", "welcome", "--db", url)
    assert code == 0 and again == text


async def test_live_counters_follow_the_store_on_the_timer(seeded_ws: Workspace) -> None:
    from datetime import timedelta

    from sqlalchemy import insert
    from tui_support import T0

    from nurture_tui.store import tables as t
    from nurture_tui.store.engine import write_tx

    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        await pilot.press("down", "down", "c")
        await wait_for(pilot, lambda: editor.live is not None)
        hello = editor.seq_tree.nodes_by_key[((0,), False)]
        assert "10 here" in str(hello.label)
        cursor = editor.seq_tree.cursor_key
        with write_tx(seeded_ws.engine) as conn:  # the engine enrols two more leads meanwhile
            conn.execute(insert(t.enrollment), [
                {"lead_id": i, "sequence_id": 1, "version_id": 1, "node_id": "hello", "status": "waiting",
                 "due_at": T0 + timedelta(hours=1), "entered_at": T0, "node_entered_at": T0} for i in (90, 91)])
        await wait_for(pilot, lambda: "12 here" in str(hello.label))
        assert editor.seq_tree.cursor_key == cursor
