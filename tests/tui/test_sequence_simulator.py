"""Testing a program before it goes live, by keyboard: `t` in the editor asks to save an edited draft,
then the simulator picks a lead by search, shows the timeline of the saved draft, re-runs it when an
outcome is picked at a decision (yes/no, a split's arms), and `f` forecasts on a segment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_support import T0, make_test_app, open_sequence_editor, wait_for

from nurture_tui.sequences.service import apply_file
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen
from nurture_tui.tui.screens.sequence_simulator import SequenceSimulatorScreen, next_outcome, outcome_spec
from nurture_tui.workspace import Workspace

SIZE = (120, 36)
SAMPLES = Path(__file__).resolve().parents[2] / "sequences"
LEAD = "lead0005@stark.example"


async def open_editor(pilot: Any, name: str) -> Any:
    return await open_sequence_editor(pilot, name)


async def simulate(pilot: Any, lead_prefix: str) -> Any:
    """`t`, type the lead's prefix, `enter`: the timeline of the first match."""
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SequenceSimulatorScreen))
    sim = pilot.app.screen
    await pilot.press(*lead_prefix)
    await wait_for(pilot, lambda: bool(sim.hits))
    await pilot.press("enter")
    await wait_for(pilot, lambda: sim.timeline is not None and sim.simulated == sim.generation)
    return sim


def timeline(sim: Any) -> list[tuple[str | None, str]]:
    return [(e.node_id, e.text) for e in sim.timeline.events]


async def rerun(pilot: Any, sim: Any, *keys: str) -> None:
    generation = sim.generation
    await pilot.press(*keys)
    await wait_for(pilot, lambda: sim.generation > generation and sim.simulated == sim.generation)


def test_outcome_helpers() -> None:
    assert outcome_spec({"engaged": "yes", "ab": "b"}) == "engaged=yes,ab=b"
    assert next_outcome("wait_for", None, []) == "yes"
    assert next_outcome("branch", "yes", []) == "no"
    assert next_outcome("wait_for", "no", []) == "yes"
    assert next_outcome("split", "a", ["a", "b", "c"]) == "b"
    assert next_outcome("split", "c", ["a", "b", "c"]) == "a"


async def test_simulate_a_lead_and_pick_outcomes_by_key(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await open_editor(pilot, "welcome")
        sim = await simulate(pilot, "lead0005")
        assert sim.email == LEAD
        steps = timeline(sim)
        assert [n for n, _t in steps] == [None, "hello", "pause", "engaged", "nudge", None]
        assert "no" in steps[3][1] and sim.timeline.outcome == "done"
        # the cursor to the wait_for (◆), `y`: the lead clicks, and the yes arm runs instead
        await pilot.press("down", "down", "down")
        assert sim._decision() == ("engaged", "wait_for")
        await rerun(pilot, sim, "y")
        assert sim.outcomes == {"engaged": "yes"}
        assert [n for n, _t in timeline(sim)] == [None, "hello", "pause", "engaged", "hot", None]
        assert "(your pick)" in str(sim.query_one("#timeline").get_option_at_index(3).prompt)
        await rerun(pilot, sim, "o")  # the next outcome: no
        assert sim.outcomes == {"engaged": "no"} and timeline(sim)[4][0] == "nudge"
        await rerun(pilot, sim, "x")  # the simulator decides again
        assert sim.outcomes == {}
        await pilot.press("up")  # not a decision: y says where to go
        await pilot.press("y")
        await wait_for(pilot, lambda: any("decision" in n.message for n in app._notifications))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen))


async def test_a_split_cycles_its_arms_and_an_edited_draft_is_saved_first(seeded_ws: Workspace) -> None:
    with write_tx(seeded_ws.engine) as conn:
        apply_file(conn, SAMPLES / "cold-lead-reengagement.yaml", user="alice", now=T0)
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "cold-lead-reengagement")
        await pilot.press("down", "shift+down")  # an unsaved edit: the simulator runs on the saved draft
        await wait_for(pilot, lambda: editor.draft.dirty)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceSimulatorScreen))
        assert not editor.draft.dirty
        sim = app.screen
        await pilot.press(*"lead0005")
        await wait_for(pilot, lambda: bool(sim.hits))
        await pilot.press("enter")
        await wait_for(pilot, lambda: sim.timeline is not None and sim.simulated == sim.generation)
        splits = [i for i, e in enumerate(sim.timeline.events) if e.kind == "split"]
        assert splits, timeline(sim)
        panel = sim.query_one("#timeline")
        panel.highlighted = splits[0]
        node = sim.timeline.events[splits[0]].node_id
        arms = sim.arms[node]
        shown = sim.timeline.events[splits[0]].text.rsplit("arm ", 1)[-1]
        await rerun(pilot, sim, "o")
        picked = sim.outcomes[node]
        assert picked == arms[(arms.index(shown) + 1) % len(arms)]
        assert sim.timeline.events[splits[0]].text == f"split: arm {picked}"
        await pilot.press("y")  # yes/no mean nothing to a split
        await wait_for(pilot, lambda: any("is a split" in n.message for n in app._notifications))


async def test_forecast_on_a_segment(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await open_editor(pilot, "welcome")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceSimulatorScreen))
        sim = app.screen
        await pilot.press("f")  # typed into the lead search, which has the focus
        assert sim.query_one("#lead-search").value == "f"
        await pilot.press("tab", "f")  # out of the search box: the forecast
        segments = sim.query_one("#segments")
        await wait_for(pilot, lambda: segments.option_count == 1)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: sim.forecast is not None or bool(app._notifications))
        assert sim.forecast is not None, [n.message for n in app._notifications]
        result = sim.forecast
        assert result.segment == "Decision makers" and result.sample == result.members == 40
        reach = {n.node_id: n.reach for n in result.nodes}
        assert reach["hello"] == 40 - result.left_at_entry
        assert reach["hot"] + reach["nudge"] == pytest.approx(reach["engaged"])
        table = sim.query_one("#reach")
        assert table.row_count == len(result.nodes)
        assert "forecast on 'Decision makers'" in str(sim.query_one("#sim-title").render())
        await pilot.press("f")  # back to the simulator
        assert sim.query_one("#panes").current == "simulate"


async def test_an_unknown_lead_is_one_line_and_the_title_says_so(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await open_editor(pilot, "welcome")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceSimulatorScreen))
        sim = app.screen
        await pilot.press(*"nobody@nowhere.example", "enter")
        await wait_for(pilot, lambda: any("no lead with that email" in n.message for n in app._notifications))
        await wait_for(pilot, lambda: sim.simulated == sim.generation)
        assert sim.timeline is None and "could not be simulated" in str(sim.query_one("#sim-title").render())
        assert isinstance(app.screen, SequenceSimulatorScreen)  # a toast, not the error modal
