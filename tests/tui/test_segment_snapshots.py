"""Snapshot tests of the segment builder: empty, a nested rule with its live count, the error state, and the
condition form mid-search. Each `run_before` waits for the data (snap_compare waits only for animations)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input
from tui_support import T0, make_test_app, wait_for

from nurture_tui.segments.service import get_segment, save_segment
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.screens.dialogs.condition_form import ConditionForm
from nurture_tui.tui.screens.segment_editor import SegmentEditorScreen
from nurture_tui.workspace import Workspace

SIZE = (120, 36)
NESTED = {"all": [{"field": "stage", "op": "in", "value": ["consideration", "decision"]},
                  {"any": [{"field": "score", "op": "ge", "value": 50}, {"field": "grade", "op": "ge", "value": "B-"}]},
                  {"activity": "open", "within": "14d"},
                  {"none": [{"in_segment": "Decision makers"}]}]}


def _freeze(app: Any) -> None:
    for screen in app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False


async def _open_editor(pilot: Any, segment: Any = None) -> Any:
    app = pilot.app
    await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…"
                   and getattr(app.screen, "rows", None))
    await app.push_screen(SegmentEditorScreen(segment))
    await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen) and app.screen.subjects is not None)
    return app.screen


async def _settle(pilot: Any, editor: Any) -> None:
    await wait_for(pilot, lambda: editor.last is not None or bool(editor.draft.problems()))
    _freeze(pilot.app)
    await pilot.pause(0.3)


def test_empty_builder(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot, await _open_editor(pilot))

    assert snap_compare(make_test_app(seeded_ws, initial_mode="segments"), terminal_size=SIZE,
                        run_before=run_before)


def test_nested_rule_with_live_count(snap_compare: Any, seeded_ws: Workspace) -> None:
    with write_tx(seeded_ws.engine) as conn:
        save_segment(conn, "Warm buyers", NESTED, user="alice", now=T0)
        segment = get_segment(conn, "Warm buyers")

    async def run_before(pilot: Any) -> None:
        await _settle(pilot, await _open_editor(pilot, segment))

    assert snap_compare(make_test_app(seeded_ws, initial_mode="segments"), terminal_size=SIZE,
                        run_before=run_before)


def test_error_state_marks_the_condition(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        editor = await _open_editor(pilot)
        editor.draft.add((), {"field": "country", "op": "eq", "value": "DE"})
        editor.draft.add((0,), {"field": "score", "op": "ge", "value": "lots"})
        editor.refresh_draft((1,))
        await _settle(pilot, editor)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="segments"), terminal_size=SIZE,
                        run_before=run_before)


def test_condition_form_searching(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        await _open_editor(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConditionForm))
        await pilot.press(*"gra", "enter", *"ge")
        _freeze(pilot.app)
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="segments"), terminal_size=SIZE,
                        run_before=run_before)
