"""The sequence editor, by keyboard alone: the tree of a stored program (badges, summaries, arms, gotos),
folding and jumping, every edit, the problems panel, a save refused after a concurrent apply, and building
`cold-lead-reengagement` from nothing — saved, its stored draft's canonical dump equal to the sample file's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from tui_support import make_test_app, wait_for

from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen
from nurture_tui.workspace import Workspace

SIZE = (120, 40)
SAMPLES = Path(__file__).resolve().parents[2] / "sequences"


async def open_editor(pilot: Any, name: str | None) -> Any:
    app = pilot.app
    await wait_for(pilot, lambda: bool(getattr(app.screen, "rows", None)))
    await app.push_screen(SequenceEditorScreen(name))
    await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen) and app.screen.draft is not None)
    editor = app.screen
    await settled(pilot, editor)
    return editor


async def settled(pilot: Any, editor: Any) -> None:
    await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)
    await pilot.pause(0.05)


def labels(editor: Any) -> list[str]:
    out = []

    def visit(node: Any, depth: int) -> None:
        for child in node.children:
            out.append("  " * depth + str(child.label))
            visit(child, depth + 1)

    visit(editor.seq_tree.root, 0)
    return out


async def test_the_tree_of_a_stored_program(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, "welcome")
        print("\n".join(labels(editor)))


# ---------------------------------------------------------------------------------------------------
# Building a sample from nothing, by keys


def keys(text: str) -> list[str]:
    """The keys that type `text` (a newline is `enter`)."""
    return ["enter" if ch == "\n" else ch for ch in text]


async def until_screen(pilot: Any, cls: type) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, cls))


async def add(pilot: Any, how: str, kind: str, *fields: str, arm_downs: int | None = None) -> None:
    """`a` (or `A`, picking the arm `arm_downs` down the list when the step has several), the kind's
    letter, then each field's text followed by `enter` (an empty string skips a field); `ctrl+s` saves."""
    from nurture_tui.tui.screens.dialogs.node_form import KindModal, NodeForm
    from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal

    editor = pilot.app.screen
    revision = editor.draft.revision
    await pilot.press(how)
    if arm_downs is not None:
        await until_screen(pilot, ChoiceModal)
        await pilot.press(*(["down"] * arm_downs), "enter")
    await until_screen(pilot, KindModal)
    await pilot.press(kind)
    await until_screen(pilot, NodeForm)
    for i, text in enumerate(fields):
        await pilot.press(*keys(text))
        if i < len(fields) - 1:
            await pilot.press("enter")
    await pilot.press("ctrl+s")
    await until_screen(pilot, SequenceEditorScreen)
    await wait_for(pilot, lambda: editor.draft.revision > revision)


async def up(pilot: Any, levels: int = 1) -> None:
    """To the step `levels` arms up (the tree's `shift+left`: the arm header, then its step)."""
    await pilot.press(*(["shift+left"] * (2 * levels)))


def settings_of(text: str) -> str:
    """The sample file's text without its steps: what the settings form takes."""
    lines = text.splitlines()
    start = lines.index("steps:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    return "\n".join(lines[:start] + lines[end:]) + "\n"


async def type_settings(pilot: Any, text: str) -> None:
    from nurture_tui.tui.screens.dialogs.sequence_settings import SettingsForm

    editor = pilot.app.screen
    revision = editor.draft.revision
    await pilot.press("s")
    await until_screen(pilot, SettingsForm)
    await pilot.press("f7")  # select all, then paste the text (a terminal's bracketed paste: typed, it takes minutes)
    pilot.app._driver.send_message(events.Paste(text))
    await pilot.pause()
    await pilot.press("ctrl+s")
    await until_screen(pilot, SequenceEditorScreen)
    await wait_for(pilot, lambda: editor.draft.revision > revision)


async def build_cold_lead(pilot: Any) -> None:
    """`cold-lead-reengagement` from nothing: fields in form order (id, the kind's fields, label)."""
    await add(pilot, "a", "x", "opener-test", "curiosity 50, value 50", "A/B: curiosity vs. straight value")
    await add(pilot, "A", "s", "opener-a", "cold-opener-curiosity", arm_downs=0)
    await up(pilot)
    await add(pilot, "A", "s", "opener-b", "cold-opener-value", arm_downs=1)
    await up(pilot)
    await add(pilot, "a", "f", "woke-up", "click, reply", "7d", "", "Clicked anything in the opener?")
    await add(pilot, "A", "a", "reactivated-points", "adjust_score", "10", arm_downs=0)
    await add(pilot, "a", "a", "reactivated-tag", "add_tag", "reactivated")
    await add(pilot, "a", "a", "status-working", "update_field", "status", "Working - Reactivated")
    await add(pilot, "a", "a", "back-to-nurture", "enroll", "consideration-nurture")
    await add(pilot, "a", "e", "reactivated", "reactivated")
    await up(pilot)
    await add(pilot, "a", "w", "breathe", "5d")
    await add(pilot, "a", "s", "break-up", "cold-breakup", "", "The break-up email")
    await add(pilot, "a", "f", "last-chance", "click, reply", "10d")
    await add(pilot, "A", "a", "last-chance-tag", "add_tag", "reactivated", arm_downs=0)
    await add(pilot, "a", "a", "last-chance-enroll", "enroll", "consideration-nurture")
    await up(pilot)
    await add(pilot, "A", "a", "mark-dormant", "update_field", "custom.nurture_status", "dormant", arm_downs=1)
    await add(pilot, "a", "a", "dormant-tag", "add_tag", "dormant")
    await add(pilot, "a", "a", "dormant-campaign", "add_to_campaign", "Dormant Leads 2026", "Dormant")


async def test_build_cold_lead_reengagement_from_nothing_by_keys(seeded_ws: Workspace) -> None:
    from nurture_tui.sequences.codec import dump_definition, parse_text
    from nurture_tui.sequences.service import draft_definition

    text = (SAMPLES / "cold-lead-reengagement.yaml").read_text(encoding="utf-8")
    expected = parse_text(text).definition
    assert expected is not None
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(pilot, None)
        await type_settings(pilot, settings_of(text))
        await build_cold_lead(pilot)
        await settled(pilot, editor)
        assert editor.draft.dump() == dump_definition(expected), editor.draft.dump()
        assert editor.problems == []
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.draft.dirty and editor.stored_name == expected.name)
    with seeded_ws.engine.connect() as conn:
        stored = draft_definition(conn, "cold-lead-reengagement")
    assert dump_definition(stored) == dump_definition(expected)
