"""The segment builder, by keyboard alone: build a nested rule, see the live count equal the service's,
save, reopen, move a condition, undo, save again — and the stored rule is exactly the expected YAML."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import update
from textual.widgets import Static
from tui_support import T0, make_test_app, wait_for

from nurture_tui.segments.compiler import count
from nurture_tui.segments.quick import parse_quick
from nurture_tui.segments.service import get_segment, list_segments, save_segment
from nurture_tui.store import tables as t
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.screens.dialogs.condition_form import ConditionForm
from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal, PromptModal
from nurture_tui.tui.screens.segment_editor import SegmentEditorScreen
from nurture_tui.workspace import Workspace

SIZE = (130, 40)
EXPECTED = yaml.safe_load("""
all:
  - {field: industry, op: in, value: [Software, Fintech]}
  - any:
      - {field: score, op: ge, value: 50}
      - {field: grade, op: ge, value: B-}
  - {activity: open, within: 14d}
  - none:
      - {in_segment: customers}
""")


def _prepare(ws: Workspace) -> None:
    with write_tx(ws.engine) as conn:
        conn.execute(update(t.lead).where(t.lead.c.id % 3 == 0).values(industry="Software"))
        conn.execute(update(t.lead).where(t.lead.c.id % 3 == 1).values(industry="Fintech"))
        save_segment(conn, "customers", {"field": "stage", "op": "eq", "value": "customer"}, user="alice", now=T0)


async def _condition(pilot: Any, subject: str, op: str | None, value: str) -> None:
    """A condition by keys; `op` None: the subject has one operator, which the form takes by itself."""
    app = pilot.app
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, ConditionForm))
    await pilot.press(*subject, "enter")
    if op is not None:
        await pilot.press(*op, "enter")
    if value:
        await pilot.press(*value, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))


async def _group(pilot: Any, downs: int) -> None:
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ChoiceModal))
    await pilot.press(*(["down"] * downs), "enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SegmentEditorScreen))


async def test_build_the_rule_by_keyboard_save_reopen_move_undo(seeded_ws: Workspace) -> None:
    _prepare(seeded_ws)
    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "rows", None))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen) and app.screen.subjects)
        editor: Any = app.screen
        await _condition(pilot, "industry", "in", "Software, Fintech")
        await _group(pilot, 1)  # ANY of, after the industry condition
        await _condition(pilot, "score", "ge", "50")  # cursor on the group: into it
        await _condition(pilot, "grade", "ge", "B-")  # after the score condition, in the group
        await _condition(pilot, "activity: open", "within", "14d")
        await pilot.press("less_than_sign")  # out of the group, right after it
        await _condition(pilot, "in segment", None, "customers")
        await pilot.press("exclamation_mark")  # NOT: into a NONE group of its own
        await wait_for(pilot, lambda: editor.draft.data() == EXPECTED)
        with seeded_ws.engine.connect() as conn:
            expected_count = count(conn, EXPECTED, T0, half_life_days=seeded_ws.settings.scoring.half_life_days)
        await wait_for(pilot, lambda: editor.last is not None and editor.last.count == expected_count
                       and editor.generation and not editor.draft.problems())
        assert f"{expected_count:,}" in str(editor.query_one("#count", Static).render())
        assert "NOT" in str(editor.query_one("#rendering", Static).render())

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        await pilot.press(*"Target buyers", "enter")
        await wait_for(pilot, lambda: not editor.draft.dirty and editor.segment_name == "Target buyers")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SegmentEditorScreen))
        await wait_for(pilot, lambda: "Target buyers" in app.screen.table.rows)  # type: ignore[attr-defined]

        app.screen.table.move_cursor(row=app.screen.table.get_row_index("Target buyers"))  # type: ignore[attr-defined]
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))
        editor = app.screen
        await pilot.press("down", "shift+down")  # the industry condition moves below the group
        await wait_for(pilot, lambda: editor.draft.data()["all"][1] == EXPECTED["all"][0])
        await pilot.press("u")
        await wait_for(pilot, lambda: editor.draft.data() == EXPECTED)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.draft.dirty)
        await pilot.pause(0.2)
    with seeded_ws.engine.connect() as conn:
        stored = get_segment(conn, "Target buyers")
    assert stored.rule.to_data() == EXPECTED


async def test_a_bad_value_is_refused_in_the_form_and_nothing_is_saved(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "rows", None))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen) and app.screen.subjects)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConditionForm))
        form: Any = app.screen
        await pilot.press(*"score", "enter", *"ge", "enter", *"lots", "enter")
        await wait_for(pilot, lambda: "expected a number" in str(form.query_one("#problem").render()))
        assert isinstance(app.screen, ConditionForm)  # still open: the value was refused
        await pilot.press(*(["backspace"] * 4), *"55", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))
        editor: Any = app.screen
        assert editor.draft.data() == {"all": [{"field": "score", "op": "ge", "value": 55}]}
        await pilot.press("escape")  # unsaved: asks
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("down", "enter")  # discard
        await wait_for(pilot, lambda: not isinstance(app.screen, (ChoiceModal, SegmentEditorScreen)))
    with seeded_ws.engine.connect() as conn:
        assert [s.name for s in list_segments(conn)] == ["Decision makers"]


async def test_the_quick_filter_line_turns_into_the_rule_and_back(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "rows", None))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))
        editor: Any = app.screen
        await pilot.press("colon")
        quick = editor.query_one("#quick")
        await wait_for(pilot, lambda: quick.has_focus and quick.value)
        assert parse_quick(quick.value).to_data() == {"all": [{"field": "stage", "op": "eq", "value": "decision"}]}
        quick.value = ""
        await pilot.press(*"industry=Software score>=50 opened<14d", "enter")
        await wait_for(pilot, lambda: editor.draft.data() == {"all": [
            {"field": "industry", "op": "eq", "value": "Software"}, {"field": "score", "op": "ge", "value": 50},
            {"activity": "open", "within": "14d"}]})
        await pilot.press("u")  # the whole replacement is one edit
        await wait_for(pilot, lambda: editor.draft.data() == {"all": [
            {"field": "stage", "op": "eq", "value": "decision"}]})


async def test_quitting_with_an_unsaved_rule_asks_first(seeded_ws: Workspace) -> None:
    from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal

    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "rows", None))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))
        await pilot.press("down", "d")  # delete the only condition: unsaved
        await wait_for(pilot, lambda: app.screen.draft.dirty)  # type: ignore[attr-defined]
        await pilot.press("1")  # another mode keeps the editor open in its own
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "segment Decision makers" in str(app.screen.query_one("#scope").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert app.is_running
        await pilot.press("ctrl+q")  # Textual's own quit key asks too
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)


async def test_an_unknown_field_is_named_in_one_line(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "rows", None))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentEditorScreen) and app.screen.subjects)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConditionForm))
        form: Any = app.screen
        await pilot.press(*"zzqqxx", "enter")
        await wait_for(pilot, lambda: "no field, behaviour or membership matches 'zzqqxx'"
                       in str(form.query_one("#problem").render()))
