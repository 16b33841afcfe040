"""Building the samples in the sequence editor from nothing, by keys alone (`tui.sequence_builds`): the
settings form with its condition builder and inline templates, every step in its node form; validated with
no problems, saved, and the stored draft's canonical dump equal to the sample file's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_support import make_test_app, wait_for

from nurture_tui.mail.files import load_template_file
from nurture_tui.mail.templates import upsert_template
from nurture_tui.sequences.codec import canonical_dump, parse_text
from nurture_tui.sequences.service import draft_definition, get_row, load_version
from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen
from nurture_tui.tui.sequence_builds import BUILDS, KeyLog, templates_of
from nurture_tui.workspace import Workspace

SAMPLES = Path(__file__).resolve().parents[2] / "sequences"
SIZE = (120, 40)


def store_templates(ws: Workspace) -> None:
    """The store's templates the samples name (the template editor's job, done before: not under test)."""
    from tui_support import T0

    with ws.engine.begin() as conn:
        for spec in load_template_file(SAMPLES / "templates" / "consideration.yaml"):
            upsert_template(conn, **spec, user="alice", now=T0)


async def pick(pilot: Any, sim: Any, node: str, key: str) -> None:
    """The timeline's cursor to `node`'s decision (`↓`), then its outcome key; the timeline re-runs."""
    rows = [e.node_id for e in sim.timeline.events]
    panel = sim.query_one("#timeline")
    await pilot.press(*(["down"] * (rows.index(node) - (panel.highlighted or 0))))
    generation = sim.generation
    await pilot.press(key)
    await wait_for(pilot, lambda: sim.generation > generation and sim.simulated == sim.generation)


async def simulate_the_fast_track_then_publish(pilot: Any, editor: Any) -> None:
    """`t`: a lead through the saved draft — opens the first email, clicks pricing: the fast track, to the
    rep; `esc`, `P` publishes (v1: nothing in flight), `p`."""
    from nurture_tui.tui.screens.dialogs.sequence_publish import PublishModal
    from nurture_tui.tui.screens.sequence_simulator import SequenceSimulatorScreen

    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SequenceSimulatorScreen))
    sim = pilot.app.screen
    await pilot.press(*"lead0005")
    await wait_for(pilot, lambda: bool(sim.hits))
    await pilot.press("enter")
    await wait_for(pilot, lambda: sim.timeline is not None and sim.simulated == sim.generation)
    await pick(pilot, sim, "opened-1", "y")
    await pick(pilot, sim, "intent-1", "y")
    path = [e.node_id for e in sim.timeline.events if e.node_id]
    assert path[-6:] == ["flag-intent-1", "fast-track", "intent-points", "to-decision", "tell-rep", "fast-tracked"]
    assert "reengage" not in path and "email-3" not in path
    await pilot.press("escape")
    await wait_for(pilot, lambda: pilot.app.screen is editor)
    await pilot.press("P")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PublishModal))
    await pilot.press("p")
    await wait_for(pilot, lambda: editor.state is not None and editor.state.version == 1)


@pytest.mark.parametrize("name", sorted(BUILDS))
async def test_build_a_sample_from_nothing_by_keys(seeded_ws: Workspace, name: str) -> None:
    text = (SAMPLES / f"{name}.yaml").read_text(encoding="utf-8")
    expected = parse_text(text).definition
    assert expected is not None
    store_templates(seeded_ws)
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(getattr(app.screen, "rows", None)))
        await app.push_screen(SequenceEditorScreen(None))
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen) and app.screen.draft is not None)
        editor = app.screen
        log = KeyLog(pilot, paste_text=True)
        await BUILDS[name](log, templates_of(text))
        await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)
        assert canonical_dump(editor.draft.defn) == canonical_dump(expected)
        assert editor.problems == []
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.draft.dirty and editor.stored_name == expected.name)
        nodes = len(editor.draft.ids())
        print(f"{name}: {nodes} steps, {log.keys} keys ({log.parts}) + {log.free} free-text characters")
        if name == "consideration-nurture":
            await simulate_the_fast_track_then_publish(pilot, editor)
    with seeded_ws.engine.connect() as conn:
        stored = draft_definition(conn, name)
        version_id = get_row(conn, name)["current_version_id"]
        published = load_version(conn, version_id).definition if name == "consideration-nurture" else stored
    assert canonical_dump(stored) == canonical_dump(expected)
    assert canonical_dump(published) == canonical_dump(expected)
