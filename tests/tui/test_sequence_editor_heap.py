"""The sequence editor freezes the heap once its program is loaded (the GC's full passes then skip what was
alive at that point: the app, Textual, the program) and thaws it when the last editor closes, so a closed
editor's widgets and drafts can be collected again. Editing meanwhile works as ever."""

from __future__ import annotations

import gc

from tui_support import make_test_app, open_sequence_editor, wait_for

from nurture_tui.workspace import Workspace


async def test_the_heap_is_frozen_while_an_editor_is_open(seeded_ws: Workspace) -> None:
    gc.unfreeze()
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=(120, 40)) as pilot:
        editor = await open_sequence_editor(pilot, "welcome")
        assert gc.get_freeze_count() > 0
        tree = editor.seq_tree
        tree.focus()
        await pilot.press("down", "shift+down")
        await wait_for(pilot, lambda: [s.id for s in editor.draft.defn.steps][:2] == ["pause", "hello"])
        await pilot.press("u")
        await wait_for(pilot, lambda: [s.id for s in editor.draft.defn.steps][:2] == ["hello", "pause"])
        await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not editor)
        await pilot.pause()
        assert gc.get_freeze_count() == 0
