"""Snapshot tests: every screen, the help screen, the palette and the confirm modal, on seeded data with a
frozen clock, animations off and the cursor blink frozen. Each `run_before` waits for the screen's data
(snap_compare waits only for animations). Update with `--snapshot-update` after reading the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static, Tree
from tui_support import make_test_app, wait_for

from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
from nurture_tui.tui.screens.dialogs.help import HelpScreen
from nurture_tui.tui.screens.lead_detail import LeadDetailScreen
from nurture_tui.tui.widgets.leads.lead_list import LeadList
from nurture_tui.workspace import Workspace

SIZE = (120, 36)


def _freeze(app: Any) -> None:
    for screen in app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False


async def _settled(pilot: Any, ready: Callable[[], bool]) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…" and ready())
    _freeze(app)
    await pilot.pause(0.2)


def _mode_ready(mode: str) -> Callable[[Any], Callable[[], bool]]:
    def ready(app: Any) -> Callable[[], bool]:
        s = app.screen
        checks: dict[str, Callable[[], bool]] = {
            "dashboard": lambda: bool(s.query("#chart-engagement")) and bool(s.query_one("#chart-funnel")._data),
            "leads": lambda: bool(s.query(LeadList)) and s.query_one(LeadList).visible_loaded(),
            "segments": lambda: s.query_one("#segments", DataTable).row_count == 1
            and s.query_one("#segments", DataTable).get_cell("Decision makers", "count") != "…",
            "sequences": lambda: len(s.query_one("#tree", Tree).root.children) == 3,
            "templates": lambda: "Subject" in str(s.query_one("#preview", Static).render()),
            "leaderboard": lambda: s.query_one("#board", DataTable).row_count == 50,
            "mql": lambda: len(s.entries) == 2 and s.panel is not None,
        }
        return checks[mode]
    return ready


# Reports and Sync & audit have their own snapshots at 80×24 and 160×48 (test_reports_screen.py,
# test_sync_audit_screen.py), on data that fills every report and every sync state.
MODE_NAMES = ["dashboard", "leads", "segments", "sequences", "templates", "leaderboard", "mql"]


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_screen(snap_compare: Any, seeded_ws: Workspace, mode: str) -> None:
    app = make_test_app(seeded_ws, initial_mode=mode)

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _mode_ready(mode)(app))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)




def test_lead_detail(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, lambda: bool(app.screen.query(LeadList)) and app.screen.query_one(LeadList).loaded)
        app.push_screen(LeadDetailScreen(5))
        await _settled(pilot, lambda: isinstance(app.screen, LeadDetailScreen) and app.screen.detail is not None)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _mode_ready("leads")(app))
        await pilot.press("question_mark")
        await _settled(pilot, lambda: isinstance(app.screen, HelpScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_palette(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="mql")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _mode_ready("mql")(app))
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: bool(app.screen.query(Input)))
        await pilot.press(*"go: ")
        await pilot.pause(0.5)
        _freeze(app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_confirm_modal(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _mode_ready("leads")(app))
        await pilot.press("space", "space", "space", "u")
        await _settled(pilot, lambda: isinstance(app.screen, ConfirmModal))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
