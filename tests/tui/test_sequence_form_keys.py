"""The keys that make a program quick to build (issue 16's keys per node): the action type's letter, the
send form's template order and `ctrl+s` from a picker, conditions in runs in the sequence's condition
builder (a new goal starting as ANY), and the settings form moving on after `f2` and completing known
values on `enter`."""

from __future__ import annotations

from typing import Any

from tui_support import make_test_app, wait_for

from nurture_tui.console.segment_conditions import COMMON_FIRST, subjects
from nurture_tui.console.sequence_draft import SequenceDraft
from nurture_tui.console.sequence_pickers import template_order
from nurture_tui.sequences.model import ACTION_TYPES, SequenceDef, Step
from nurture_tui.tui.screens.dialogs.condition_form import ConditionForm
from nurture_tui.tui.screens.dialogs.node_form import ACTION_LETTERS, ACTION_WORDS, ActionTypeList, NodeForm
from nurture_tui.tui.screens.dialogs.sequence_settings import SettingsForm, completed
from nurture_tui.tui.screens.rule_builder import RuleBuilderScreen
from nurture_tui.tui.widgets.segments.pick_list import Choice, shortest_search
from nurture_tui.workspace import Workspace

SIZE = (100, 40)


async def _app_ready(pilot: Any) -> None:
    await wait_for(pilot, lambda: bool(getattr(pilot.app.screen, "rows", None)))


def test_every_action_type_has_one_letter_and_a_word() -> None:
    letters = [letter for letter, _kind in ACTION_LETTERS]
    assert len(set(letters)) == len(letters)
    assert sorted(kind for _letter, kind in ACTION_LETTERS) == sorted(ACTION_TYPES) == sorted(ACTION_WORDS)


def test_template_order_puts_the_programs_own_first_and_the_sent_last() -> None:
    program = SequenceDef.model_validate({
        "name": "p", "templates": [{"name": "own-2", "subject": "s", "html": "<p>t</p>"},
                                   {"name": "own-1", "subject": "s", "html": "<p>t</p>"}],
        "steps": [{"id": "one", "send": {"template": "own-2"}}, {"id": "two", "send": {"template": "b"}}]})
    names = ["a", "b", "c", "own-1", "own-2"]
    assert template_order(names, program) == ["own-1", "a", "c", "own-2", "b"]
    assert template_order(names, None) == names


def test_the_common_subjects_come_first_and_win_a_searchs_ties() -> None:
    listed = subjects()
    assert tuple(s.key for s in listed[:len(COMMON_FIRST)]) == COMMON_FIRST
    choices = [Choice(s.key, s.label, s.kind) for s in listed]
    assert {key: shortest_search(choices, key) for key in ("stage", "tags", "mql_status", "opted_out")} == {
        "stage": "s", "tags": "t", "mql_status": "m", "opted_out": "o"}


async def test_action_type_by_its_letter_then_its_parameters(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await _app_ready(pilot)
        draft = SequenceDraft(SequenceDef(name="p", steps=[]))
        results: list[Step | None] = []
        form = NodeForm(draft.blank("action"), sequence="p", ids=[], names={"templates": []}, new=True)
        app.push_screen(form, results.append)
        await wait_for(pilot, lambda: app.screen is form and form.pickers_loaded)
        await pilot.press(*"score-up", "enter")
        assert isinstance(app.focused, ActionTypeList)
        await pilot.press("a")  # adjust_score: on to its points at once
        await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "points")
        assert "adjust_score" in str(form.query_one("#type-label").render())
        assert not form.query_one("#tag").display
        await pilot.press(*"10", "ctrl+s")
        await wait_for(pilot, lambda: bool(results))
        step = results[0]
        assert step is not None and step.action is not None
        assert (step.action.type, step.action.points) == ("adjust_score", 10)

        # ↑/↓ show another type, `enter` takes it
        results.clear()
        form = NodeForm(draft.blank("action"), sequence="p", ids=[], names={"templates": []}, new=True)
        app.push_screen(form, results.append)
        await wait_for(pilot, lambda: app.screen is form and form.pickers_loaded)
        await pilot.press("enter")
        await pilot.press("down", "down", "down")  # add_tag → remove_tag → update_field → set_stage
        assert form.query_one("#value").display and "set_stage" in str(form.query_one("#type-label").render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "value")
        await pilot.press(*"decision", "ctrl+s")
        await wait_for(pilot, lambda: bool(results))
        step = results[0]
        assert step is not None and step.action is not None
        assert (step.action.type, step.action.value) == ("set_stage", "decision")


async def test_ctrl_s_in_the_template_picker_takes_the_match_enter_would(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await _app_ready(pilot)
        draft = SequenceDraft(SequenceDef(name="p", steps=[]))
        names = {"templates": ["cn-1-problem", "cn-2-guide", "welcome-1"]}
        for keys, want in ((["2"], "cn-2-guide"), ([], "cn-1-problem")):  # no search: the first
            results: list[Step | None] = []
            form = NodeForm(draft.blank("send"), sequence="p", ids=[], names=names, new=True)
            app.push_screen(form, results.append)
            await wait_for(pilot, lambda f=form: app.screen is f)  # type: ignore[misc]
            await pilot.press(*"mail", "enter", *keys, "ctrl+s")
            await wait_for(pilot, lambda r=results: bool(r))  # type: ignore[misc]
            step = results[0]
            assert step is not None and step.send is not None and step.send.template == want


async def _builder(pilot: Any, data: dict[str, Any] | None) -> RuleBuilderScreen:
    builder = RuleBuilderScreen("goal", data)
    pilot.app.push_screen(builder)
    await wait_for(pilot, lambda: pilot.app.screen is builder and builder.subjects is not None)
    return builder


async def _next_form(pilot: Any, old: Any = None) -> ConditionForm:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConditionForm) and pilot.app.screen is not old)
    form = pilot.app.screen
    assert isinstance(form, ConditionForm)
    return form


async def test_conditions_come_in_runs_and_ctrl_s_hands_the_rule_back(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await _app_ready(pilot)
        builder = await _builder(pilot, {"any": []})
        await pilot.press("a")
        first = await _next_form(pilot)
        await pilot.press(*"score", "enter", *"ge", "enter", *"50", "enter")  # added: the next form opens
        second = await _next_form(pilot, first)
        assert second.more == 2 and "Condition 2" in str(second.query_one("#title").render())
        assert len(builder.draft.root.items) == 1
        await pilot.press(*"grade", "enter", "enter", *"B", "ctrl+s")  # added, and the rule handed back
        await wait_for(pilot, lambda: app.screen is not second and app.screen is not builder)
        result = builder.result
        assert result is not None and result["any"][0] == {"field": "score", "op": "ge", "value": 50}
        assert len(result["any"]) == 2 and result["any"][1]["field"] == "grade"

        # `esc` on the next form stops adding; `ctrl+s` on a form left untouched only hands the rule back
        builder = await _builder(pilot, None)
        assert builder.draft.root.op == "all"
        await pilot.press("a")
        first = await _next_form(pilot)
        await pilot.press(*"score", "enter", *"ge", "enter", *"50", "enter")
        second = await _next_form(pilot, first)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is builder)
        assert len(builder.draft.root.items) == 1
        await pilot.press("a")
        third = await _next_form(pilot, second)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not third and app.screen is not builder)
        assert builder.result == {"all": [{"field": "score", "op": "ge", "value": 50}]}


async def test_settings_complete_known_values_and_f2_moves_on(seeded_ws: Workspace) -> None:
    assert completed("reentry", "a") == "anytime" and completed("reentry", "af") == "after_exit"
    assert completed("stage", "c") == "consideration" and completed("stage", "cu") == "customer"
    assert completed("stage", "nurture") == "nurture" and completed("name", "a") == "a"
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await _app_ready(pilot)
        draft = SequenceDraft(SequenceDef(name="p", steps=[]))
        applied: list[Any] = []
        form = SettingsForm(draft, lambda v: draft.set_settings(**v))
        app.push_screen(form, applied.append)
        await wait_for(pilot, lambda: app.screen is form)
        await pilot.press("enter", "enter", "c", "enter")  # name, description, stage: consideration
        assert form.value("stage") == "consideration" and getattr(app.focused, "id", None) == "entry"
        await pilot.press("enter", "a", "f", "enter")  # entry; re-entry: after_exit
        assert form.value("reentry") == "after_exit" and getattr(app.focused, "id", None) == "goal"
        await pilot.press("f2")  # a new goal: an ANY group
        await wait_for(pilot, lambda: isinstance(app.screen, RuleBuilderScreen))
        builder = app.screen
        assert isinstance(builder, RuleBuilderScreen) and builder.draft.root.op == "any"
        await wait_for(pilot, lambda: builder.subjects is not None)
        await pilot.press("a")
        await _next_form(pilot)
        await pilot.press(*"score", "enter", *"ge", "enter", *"50", "ctrl+s")
        await wait_for(pilot, lambda: app.screen is form and getattr(app.focused, "id", None) == "exit_when")
        assert "score" in form.value("goal")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(applied))
        assert draft.defn.goal == {"any": [{"field": "score", "op": "ge", "value": 50}]}
        assert draft.defn.stage == "consideration" and draft.defn.reentry == "after_exit"


async def test_f1_in_the_forms_explains_their_keys(seeded_ws: Workspace) -> None:
    from nurture_tui.tui.screens.dialogs.help import HelpScreen

    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await _app_ready(pilot)
        draft = SequenceDraft(SequenceDef(name="p", steps=[]))
        form = NodeForm(draft.blank("action"), sequence="p", ids=[], names={"templates": []}, new=True)
        app.push_screen(form)
        await wait_for(pilot, lambda: app.screen is form and form.pickers_loaded)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert app.screen.query("#about") and "one letter" in NodeForm.HELP
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is form)


async def test_a_branch_built_with_f2_moves_on_to_the_label(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await _app_ready(pilot)
        draft = SequenceDraft(SequenceDef(name="p", steps=[]))
        results: list[Step | None] = []
        form = NodeForm(draft.blank("branch"), sequence="p", ids=[], names={"templates": []}, new=True)
        app.push_screen(form, results.append)
        await wait_for(pilot, lambda: app.screen is form)
        await pilot.press(*"hot", "enter", "f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RuleBuilderScreen))
        builder = app.screen
        assert isinstance(builder, RuleBuilderScreen)
        await wait_for(pilot, lambda: builder.subjects is not None)
        await pilot.press("a")
        await _next_form(pilot)
        await pilot.press(*"score", "enter", *"ge", "enter", *"50", "ctrl+s")
        await wait_for(pilot, lambda: app.screen is form and getattr(app.focused, "id", None) == "label")
        assert form.value("rule") == "score>=50"
        await pilot.press(*"Hot?", "ctrl+s")
        await wait_for(pilot, lambda: bool(results))
        step = results[0]
        assert step is not None and step.branch is not None and step.label == "Hot?"
