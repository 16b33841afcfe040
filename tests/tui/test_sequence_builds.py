"""Building the samples in the sequence editor from nothing, by keys alone (`tui.sequence_builds`): the
settings form with its condition builder and inline templates, every step in its node form; validated with
no problems, saved, and the stored draft's canonical dump equal to the sample file's."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import make_test_app, wait_for

from nurture_tui.mail.files import load_template_file
from nurture_tui.mail.templates import upsert_template
from nurture_tui.sequences.codec import canonical_dump, parse_text
from nurture_tui.sequences.service import draft_definition
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
    with seeded_ws.engine.connect() as conn:
        stored = draft_definition(conn, name)
    assert canonical_dump(stored) == canonical_dump(expected)
