"""The one screen pattern: list screens show empty and error states in place, a write on one screen
reloads every screen that shows that data, and list refreshes are keyed diffs (rows keep their identity)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static
from tui_support import make_test_app, wait_for

from nurture_tui.tui.screens.dialogs.error import ErrorModal
from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal
from nurture_tui.tui.widgets.leads.lead_list import LeadList
from nurture_tui.workspace import Workspace

SIZE = (130, 40)


async def test_a_write_on_one_screen_reloads_the_others(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.screen.query(LeadList)) and app.screen.query_one(LeadList).loaded)
        lst = app.screen.query_one(LeadList)
        generation = lst._generation
        await pilot.press("7")
        await wait_for(pilot, lambda: app.current_mode == "mql" and len(getattr(app.screen, "entries", {})) == 2)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))  # the reason picker
        await pilot.press("down", "down", "down", "enter")  # student or researcher
        await wait_for(pilot, lambda: lst._generation > generation)  # the Leads screen reloaded, unseen


async def test_empty_and_error_states_are_shown_in_the_list(seeded_ws: Workspace) -> None:
    with seeded_ws.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM segment")
    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        state = app.screen.query_one("#list-state", Static)
        await wait_for(pilot, lambda: "No saved segments yet" in str(state.render()))
        assert state.display
        seeded_ws.engine.dispose()
        with seeded_ws.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE template RENAME TO template_gone")
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        modal = app.screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not modal)
        assert app.current_mode == "templates" and not isinstance(app.screen, ErrorModal)  # one error, one modal
        state = app.screen.query_one("#list-state", Static)
        assert "Could not load" in str(state.render()) and state.display


async def test_refresh_is_a_keyed_diff_that_keeps_the_cursor_row(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="mql")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        await wait_for(pilot, lambda: len(screen.entries) == 2)
        await pilot.press("down")
        key = screen.table.cursor_key()
        with seeded_ws.engine.begin() as conn:  # the other MQL leaves the queue
            conn.exec_driver_sql(f"UPDATE mql SET status = 'accepted' WHERE id != {int(key)}")
        await pilot.press("R")
        await wait_for(pilot, lambda: len(screen.entries) == 1)
        assert screen.table.cursor_key() == key and screen.table.cursor_row == 0
