"""Every step of every program in `sequences/` opens in its node form and comes back unchanged when the
form is saved as it is, and every program's settings do the same through the settings form: nothing a
sample uses is beyond the editor's forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_support import make_test_app, wait_for

from nurture_tui.console.sequence_draft import SequenceDraft
from nurture_tui.sequences.codec import canonical_dump, parse_text
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.tui.screens.dialogs.node_form import NodeForm
from nurture_tui.tui.screens.dialogs.sequence_settings import SettingsForm
from nurture_tui.workspace import Workspace

SAMPLES = Path(__file__).resolve().parents[2] / "sequences"
NAMES = sorted(p.stem for p in SAMPLES.glob("*.yaml"))


def _steps(steps: list[Any]) -> list[Any]:
    out = []
    for step in steps:
        out.append(step)
        out += _steps(step.yes or []) + _steps(step.no or [])
        for arm in step.split.arms if step.split else []:
            out += _steps(arm.steps)
    return out


def _dump(step: Any) -> str:
    """A step alone, its conditions in canonical shape (`{field: x, ge: 1}` reads as `op: ge, value: 1`)."""
    return canonical_dump(SequenceDef(name="one", steps=[step]))


@pytest.mark.parametrize("name", NAMES)
async def test_every_form_of_a_sample_saves_back_what_it_showed(seeded_ws: Workspace, name: str) -> None:
    defn = parse_text((SAMPLES / f"{name}.yaml").read_text(encoding="utf-8")).definition
    assert defn is not None
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: bool(getattr(app.screen, "rows", None)))
        for step in _steps(defn.steps):
            results: list[Any] = []
            form = NodeForm(step, sequence=defn.name, ids=[], names={"templates": []})
            app.push_screen(form, results.append)
            await wait_for(pilot, lambda: app.screen is form and form.pickers_loaded)  # noqa: B023 - awaited here
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: bool(results))  # noqa: B023 - awaited here
            got = results[0]
            assert got is not None, f"{name}: the form refused {step.id}"
            want = step.model_copy(update={"yes": None, "no": None})
            if want.split is not None:
                want = want.model_copy(update={"split": want.split.model_copy(update={
                    "arms": [a.model_copy(update={"steps": []}) for a in want.split.arms]})})
            assert _dump(got) == _dump(want), step.id
        draft = SequenceDraft(defn)
        applied: list[Any] = []
        app.push_screen(SettingsForm(draft, lambda v: draft.set_settings(**v)), applied.append)
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsForm))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(applied))
        assert applied[0] is not None
        assert canonical_dump(draft.defn) == canonical_dump(defn)
