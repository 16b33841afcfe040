"""The Sequences list by keyboard: a new program from a sample, copy, export and import YAML, and delete —
refused while leads are enrolled, allowed for a program nobody was in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Static
from tui_support import make_test_app, wait_for

from nurture_tui.sequences import service
from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal, PromptModal
from nurture_tui.workspace import Workspace

SIZE = (130, 40)


def _names(ws: Workspace) -> list[str]:
    with ws.engine.connect() as conn:
        return [s.name for s in service.list_sequences(conn)]


async def _prompt(pilot: Any, text: str, *, clear: bool = False) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptModal))
    if clear:
        pilot.app.screen.query_one("#answer").value = ""
    await pilot.press(*text, "enter")


async def test_new_copy_export_import_delete(seeded_ws: Workspace, tmp_path: Path) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen: Any = app.screen
        await wait_for(pilot, lambda: "welcome" in screen.shown)
        assert screen.table.get_cell("welcome", "draft") == "●"  # the seed's draft was never published as is

        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("down", "down", "enter")  # after "blank": the second sample, cold-lead-reengagement
        await _prompt(pilot, "winback")
        await wait_for(pilot, lambda: "winback" in screen.shown)
        with seeded_ws.engine.connect() as conn:
            assert service.draft_definition(conn, "winback").name == "winback"

        screen.table.move_cursor(row=screen.table.get_row_index("winback"))
        await pilot.press("c")
        await _prompt(pilot, "winback-b", clear=True)
        await wait_for(pilot, lambda: "winback-b" in screen.shown)

        await pilot.press("x")
        target = tmp_path / "out.yaml"
        await _prompt(pilot, str(target), clear=True)
        await wait_for(pilot, lambda: target.exists())
        with seeded_ws.engine.connect() as conn:
            assert target.read_text() == service.export(conn, "winback")

        edited = tmp_path / "renamed.yaml"
        edited.write_text(target.read_text().replace("name: winback", "name: winback-c", 1))
        await pilot.press("i")
        await _prompt(pilot, str(edited))
        await wait_for(pilot, lambda: "winback-c" in screen.shown)

        screen.table.move_cursor(row=screen.table.get_row_index("welcome"))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: any("leads are enrolled" in n.message for n in app._notifications))
        assert "welcome" in _names(seeded_ws)

        screen.table.move_cursor(row=screen.table.get_row_index("winback-b"))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: "winback-b" not in screen.shown)
    assert sorted(_names(seeded_ws)) == ["welcome", "winback", "winback-c"]


async def test_a_bad_import_path_is_one_line(seeded_ws: Workspace, tmp_path: Path) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen: Any = app.screen
        await wait_for(pilot, lambda: "welcome" in screen.shown)
        await pilot.press("i")
        await _prompt(pilot, str(tmp_path / "missing.yaml"))
        await wait_for(pilot, lambda: any("missing.yaml" in n.message for n in app._notifications))
        assert isinstance(screen.query_one("#tree"), object) and app.is_running
        assert not any(isinstance(s, Static) and "Traceback" in str(s.render()) for s in app.screen.query(Static))
