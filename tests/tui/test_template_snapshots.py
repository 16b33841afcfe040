"""Snapshot tests of the template editor: at 80×24 with a lead's preview, at 120×36 with problems listed at
their lines, and the merge-field picker. Seeded data, frozen clock, animations off, cursor blink frozen; each
`run_before` waits for the editor's preview to show the current draft. Update with `--snapshot-update`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets import Input, TextArea
from tui_support import make_test_app, wait_for

from nurture_tui.tui.screens.dialogs.merge_fields import MergeFieldModal
from nurture_tui.tui.screens.template_editor import TemplateEditorScreen
from nurture_tui.workspace import Workspace


def _freeze(app: Any) -> None:
    for screen in app.screen_stack:
        for widget in (*screen.query(Input), *screen.query(TextArea)):
            widget.cursor_blink = False


async def _settled(pilot: Any, ready: Callable[[], bool]) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…" and ready())
    _freeze(app)
    await pilot.pause(0.2)


def _editor_ready(app: Any) -> Callable[[], bool]:
    def ready() -> bool:
        s = app.screen_stack[-1] if app.screen_stack else None
        editors = [x for x in app.screen_stack if isinstance(x, TemplateEditorScreen)]
        return bool(editors) and s is not None and editors[0].opened \
            and editors[0].shown_generation == editors[0].generation
    return ready


async def _open_editor(pilot: Any, lead: str | None = None) -> TemplateEditorScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.query("#list") and app.screen.query_one("#list").row_count == 2)
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, TemplateEditorScreen) and app.screen.opened)
    editor: TemplateEditorScreen = app.screen
    if lead:
        await pilot.press("ctrl+l", *lead, "enter")
        await wait_for(pilot, lambda: editor.lead is not None)
    await pilot.pause()
    return editor


def test_editor_80x24_with_a_lead(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")

    async def run_before(pilot: Any) -> None:
        await _open_editor(pilot, lead="5")
        await _settled(pilot, _editor_ready(app))

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_editor_with_problems(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")

    async def run_before(pilot: Any) -> None:
        await _open_editor(pilot, lead="lead0012@hooli.example")
        await pilot.press("end", "enter", *"{{ lead.frist_name }}", "enter", *"{{ lead.__class__ }}")
        await _settled(pilot, _editor_ready(app))

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_merge_field_picker(snap_compare: Any, seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")

    async def run_before(pilot: Any) -> None:
        await _open_editor(pilot)
        await _settled(pilot, _editor_ready(app))
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, MergeFieldModal))
        await pilot.press(*"own")
        await _settled(pilot, lambda: isinstance(app.screen, MergeFieldModal))

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
