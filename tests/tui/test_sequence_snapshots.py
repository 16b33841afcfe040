"""Snapshot tests of the sequence editor: the tree of a sample at 80×24, the problems panel with the
offending node marked, a node form, and the publish dialog (diff and leads in flight). Each `run_before`
waits for the data and the validation (snap_compare waits only for animations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Input
from tui_support import T0, make_test_app, wait_for

from nurture_tui.sequences.service import apply_file
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.screens.dialogs.node_form import NodeForm
from nurture_tui.tui.screens.dialogs.sequence_publish import PublishModal
from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen
from nurture_tui.workspace import Workspace

SAMPLES = Path(__file__).resolve().parents[2] / "sequences"
SMALL = (80, 24)
SIZE = (110, 32)


def _freeze(app: Any) -> None:
    for screen in app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False


async def _open(pilot: Any, name: str) -> Any:
    app = pilot.app
    await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…"
                   and bool(getattr(app.screen, "rows", None)))
    await app.push_screen(SequenceEditorScreen(name))
    await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen) and app.screen.draft is not None)
    editor = app.screen
    await _settle(pilot, editor)
    return editor


async def _settle(pilot: Any, editor: Any) -> None:
    await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)
    _freeze(pilot.app)
    await pilot.pause(0.3)


def _with_sample(ws: Workspace, name: str) -> None:
    with write_tx(ws.engine) as conn:
        apply_file(conn, SAMPLES / name, user="alice", now=T0)


def test_tree_of_a_sample_at_80x24(snap_compare: Any, seeded_ws: Workspace) -> None:
    _with_sample(seeded_ws, "consideration-nurture.yaml")

    async def run_before(pilot: Any) -> None:
        editor = await _open(pilot, "consideration-nurture")
        await pilot.press("J", "J")  # the second branch: wait_for with yes/no arms and a goto
        await _settle(pilot, editor)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SMALL,
                        run_before=run_before)


def test_problems_panel_marks_the_node(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        editor = await _open(pilot, "welcome")
        editor.draft.replace((2, "no", 0), editor.draft.step((2, "no", 0)).model_copy(update={"goto": "nowhere"}))
        editor.draft.add_after((0,), editor.draft.blank("send"))
        editor.refresh_draft((1,))
        await _settle(pilot, editor)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SIZE,
                        run_before=run_before)


def test_node_form_of_an_action(snap_compare: Any, seeded_ws: Workspace) -> None:
    _with_sample(seeded_ws, "cold-lead-reengagement.yaml")

    async def run_before(pilot: Any) -> None:
        editor = await _open(pilot, "cold-lead-reengagement")
        editor.seq_tree.go(((4, "no", 2), False))  # add_to_campaign 'Dormant Leads 2026' status Dormant
        await pilot.pause()
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NodeForm))
        _freeze(pilot.app)
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SMALL,
                        run_before=run_before)


def test_publish_dialog_with_diff_and_leads_in_flight(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        editor = await _open(pilot, "welcome")
        await pilot.press("down", "down", "shift+up", "P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PublishModal))
        _freeze(pilot.app)
        await pilot.pause(0.3)
        assert editor.draft is not None

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SIZE,
                        run_before=run_before)


# ---------------------------------------------------------------------------------------------------
# Testing, publishing and live counters (issue 16 items 5 and 6)


def test_publish_diff_side_by_side_at_80x24(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        await _open(pilot, "welcome")
        await pilot.press("down", "down", "shift+up", "P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PublishModal))
        await pilot.press("s")
        pilot.app.clear_notifications()  # the "saved" toast would cover the dialog
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SMALL,
                        run_before=run_before)


def test_publish_diff_unified_of_a_branch_change(snap_compare: Any, seeded_ws: Workspace) -> None:
    from test_sequence_publish import published_with_leads

    published_with_leads(seeded_ws)

    async def run_before(pilot: Any) -> None:
        editor = await _open(pilot, "fit-check")
        step = editor.draft.step((2,))
        branch = step.branch.model_copy(update={"rule": {"field": "score", "ge": 80}})
        editor.draft.replace((2,), step.model_copy(update={"branch": branch}))
        editor.refresh_draft((2,))
        await _settle(pilot, editor)
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PublishModal))
        pilot.app.clear_notifications()
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SIZE,
                        run_before=run_before)


def test_tree_with_live_counters(snap_compare: Any, seeded_ws: Workspace) -> None:
    from test_sequence_publish import published_with_leads

    published_with_leads(seeded_ws)

    async def run_before(pilot: Any) -> None:
        editor = await _open(pilot, "fit-check")
        await pilot.press("c")
        await wait_for(pilot, lambda: editor.live is not None)
        await pilot.press("down", "down")
        await _settle(pilot, editor)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SMALL,
                        run_before=run_before)


async def _simulator(pilot: Any, name: str) -> Any:
    from nurture_tui.tui.screens.sequence_simulator import SequenceSimulatorScreen

    await _open(pilot, name)
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SequenceSimulatorScreen))
    return pilot.app.screen


def test_simulator_timeline_with_a_picked_outcome(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        sim = await _simulator(pilot, "welcome")
        await pilot.press(*"lead0005", "enter")
        await wait_for(pilot, lambda: sim.timeline is not None and sim.simulated == sim.generation)
        await pilot.press("down", "down", "down", "y")
        await wait_for(pilot, lambda: sim.outcomes and sim.simulated == sim.generation)
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SMALL,
                        run_before=run_before)


def test_forecast_on_a_segment(snap_compare: Any, seeded_ws: Workspace) -> None:
    async def run_before(pilot: Any) -> None:
        sim = await _simulator(pilot, "welcome")
        await pilot.press("tab", "f")
        await wait_for(pilot, lambda: sim.query_one("#segments").option_count == 1)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: sim.forecast is not None)
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SIZE,
                        run_before=run_before)


# ---------------------------------------------------------------------------------------------------
# Every node form, the settings form and the condition builder (issue 16 items 3 and 4)

FORMS = {
    "send": ("consideration-nurture", (0,)),
    "wait": ("consideration-nurture", (2,)),
    "wait_for": ("consideration-nurture", (1,)),
    "branch": ("decision-stage", (4,)),
    "split": ("cold-lead-reengagement", (0,)),
    "exit": ("consideration-nurture", (12,)),
}


async def _form(pilot: Any, sample: str, path: tuple[Any, ...]) -> Any:
    editor = await _open(pilot, sample)
    editor.seq_tree.go((path, False))
    await pilot.pause()
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NodeForm))
    form = pilot.app.screen
    if form.kind == "send":  # the template's preview arrives from a worker
        await wait_for(pilot, lambda: bool(str(form.query_one("#preview").render()).strip()))
    _freeze(pilot.app)
    await pilot.pause(0.3)
    return form


def _snap_form(snap_compare: Any, ws: Workspace, kind: str, size: tuple[int, int]) -> bool:
    sample, path = FORMS[kind]
    _with_sample(ws, f"{sample}.yaml")

    async def run_before(pilot: Any) -> None:
        await _form(pilot, sample, path)

    return bool(snap_compare(make_test_app(ws, initial_mode="sequences"), terminal_size=size,
                             run_before=run_before))


def test_node_form_send_with_its_template_preview(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_form(snap_compare, seeded_ws, "send", SIZE)


def test_node_form_wait(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_form(snap_compare, seeded_ws, "wait", SMALL)


def test_node_form_wait_for(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_form(snap_compare, seeded_ws, "wait_for", SMALL)


def test_node_form_branch(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_form(snap_compare, seeded_ws, "branch", SMALL)


def test_node_form_split(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_form(snap_compare, seeded_ws, "split", SMALL)


def test_node_form_exit(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_form(snap_compare, seeded_ws, "exit", SMALL)


def test_condition_builder_of_a_branch(snap_compare: Any, seeded_ws: Workspace) -> None:
    """`f2` in the branch form: the segment builder on the branch's condition, with its live count."""
    from nurture_tui.tui.screens.rule_builder import RuleBuilderScreen

    _with_sample(seeded_ws, "decision-stage.yaml")

    async def run_before(pilot: Any) -> None:
        form = await _form(pilot, "decision-stage", (4,))
        form.query_one("#rule").focus()
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RuleBuilderScreen))
        builder = pilot.app.screen
        await wait_for(pilot, lambda: builder.last is not None and builder.subjects is not None)
        _freeze(pilot.app)
        await pilot.pause(0.3)

    assert snap_compare(make_test_app(seeded_ws, initial_mode="sequences"), terminal_size=SIZE,
                        run_before=run_before)


def _snap_settings(snap_compare: Any, ws: Workspace, size: tuple[int, int]) -> bool:
    from nurture_tui.tui.screens.dialogs.sequence_settings import SettingsForm

    _with_sample(ws, "consideration-nurture.yaml")

    async def run_before(pilot: Any) -> None:
        await _open(pilot, "consideration-nurture")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsForm))
        _freeze(pilot.app)
        await pilot.pause(0.3)

    return bool(snap_compare(make_test_app(ws, initial_mode="sequences"), terminal_size=size,
                             run_before=run_before))


def test_settings_form_at_80x24(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_settings(snap_compare, seeded_ws, SMALL)


def test_settings_form_large(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snap_settings(snap_compare, seeded_ws, (160, 48))
