"""Adaptive splits and optimal send times set up by keys in the node forms, and the editor's live counters
showing an adaptive split's allocation now (issue 23)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from tui_support import make_test_app, open_sequence_editor, wait_for

from nurture_tui.console.sequence_draft import SequenceDraft
from nurture_tui.console.sequence_nodes import adaptive_text, form_data, parse_adaptive
from nurture_tui.engine.seeding import publish_definition
from nurture_tui.sequences.model import SequenceDef, Step
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import adaptive_decision, lead, sequence
from nurture_tui.tui.screens.dialogs.node_form import NodeForm
from nurture_tui.workspace import Workspace

SIZE = (120, 40)


def test_the_adaptive_line_round_trips() -> None:
    line = "goal 14d winner floor=0.05 audience=segment pool=10 seed=3 segments=emea|apac"
    data = parse_adaptive(line)
    assert data == {"mode": "adaptive", "metric": "goal", "window": "14d", "winner": True, "floor": 0.05,
                    "audience": "segment", "pool": 10.0, "seed": 3, "segments": ["emea", "apac"]}
    assert parse_adaptive(adaptive_text(data)) == data
    nodrift = parse_adaptive("click 3d nodrift")
    assert nodrift == {"mode": "adaptive", "metric": "click", "window": "3d", "drift": False}
    assert parse_adaptive(adaptive_text(nodrift)) == nodrift
    assert parse_adaptive("") == {} and adaptive_text({"arms": []}) == ""


async def _form(pilot: Any, step: Step, names: dict[str, list[str]]) -> tuple[NodeForm, list[Step | None]]:
    results: list[Step | None] = []
    form = NodeForm(step, sequence="p", ids=[], names=names, new=True)
    pilot.app.push_screen(form, results.append)
    await wait_for(pilot, lambda: pilot.app.screen is form)
    return form, results


async def test_adaptive_split_and_optimal_send_by_keys(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(getattr(app.screen, "rows", None)))
        draft = SequenceDraft(SequenceDef(name="p", steps=[]))
        _unused, results = await _form(pilot, draft.blank("split"), {"templates": []})
        await pilot.press(*"ab", "enter", *"econ, tech", "enter", "enter")  # arms, then past the label
        assert getattr(app.focused, "id", None) == "adaptive"
        await pilot.press(*"click 2d floor=0.05 winner audience=persona", "ctrl+s")
        await wait_for(pilot, lambda: bool(results))
        step = results[0]
        assert step is not None and step.split is not None
        sp = step.split
        assert (sp.mode, sp.metric, sp.window, sp.floor, sp.winner, sp.audience) == (
            "adaptive", "click", "2d", 0.05, True, "persona")
        assert [a.name for a in sp.arms] == ["econ", "tech"]

        # a bad setting is refused in one line and the form stays open
        form, results = await _form(pilot, draft.blank("split"), {"templates": []})
        await pilot.press(*"ab", "enter", *"a, b", "enter", "enter", *"click floor=0.9", "ctrl+s")
        await wait_for(pilot, lambda: "floor must be between 0 and 1/2 arms" in str(
            form.query_one("#problem").render()))
        assert app.screen is form and not results
        await pilot.press("escape")

        form, results = await _form(pilot, draft.blank("send"), {"templates": ["welcome-1", "cn-2-guide"]})
        await pilot.press(*"hello", "enter", *"welc", "enter")  # the template, then on to the label
        await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "label")
        await pilot.press("enter", "enter", *"optimal", "ctrl+s")
        await wait_for(pilot, lambda: bool(results))
        step = results[0]
        assert step is not None and step.send is not None
        assert (step.send.template, step.send.send_time) == ("welcome-1", "optimal")
        assert form_data(step)["send"]["send_time"] == "optimal"


async def test_live_counters_show_the_adaptive_allocation(seeded_ws: Workspace) -> None:
    now = seeded_ws.clock.now()
    definition = {"name": "adaptive-demo", "steps": [{"id": "ab", "split": {"mode": "adaptive", "arms": [
        {"name": "a", "steps": [{"id": "wa", "wait": {"duration": "1d"}}]},
        {"name": "b", "steps": [{"id": "wb", "wait": {"duration": "1d"}}]}]}}]}
    with write_tx(seeded_ws.engine) as conn:
        publish_definition(conn, definition, now)
        seq_id = conn.execute(select(sequence.c.id).where(sequence.c.name == "adaptive-demo")).scalar_one()
        lead_id = conn.execute(select(lead.c.id)).scalars().first()
        for i in range(40):  # arm a: 40 settled failures; b untried
            conn.execute(insert(adaptive_decision).values(
                kind="split", sequence_id=seq_id, version_id=1, node_id="ab", lead_id=lead_id, arm="a",
                audience="all", decided_at=now - timedelta(days=9, minutes=i), closes_at=now - timedelta(days=6),
                detail={}))
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_sequence_editor(pilot, "adaptive-demo")
        await pilot.press("down")
        await wait_for(pilot, lambda: editor.seq_tree.cursor_row.step_id == "ab")
        assert "split adaptive on click within 1d: a / b" in str(editor.seq_tree.cursor_node.label)
        await pilot.press("c")
        await wait_for(pilot, lambda: "now all:" in str(editor.seq_tree.cursor_node.label))
        label = str(editor.seq_tree.cursor_node.label)
        assert "now all: a 5% (2.4% [0.1%–8.6%]) · b 95% (50.0% [2.4%–97.6%])" in label
