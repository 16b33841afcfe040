"""The tree editor's draft, headless: the samples built from nothing with the edit API alone, every edit,
undo/redo, ids and gotos, problems at their node, and the one-line summaries — what the sequence editor does
on each key, without a terminal or a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nurture_tui.console.sequence_draft import SETTINGS, SequenceDraft, summary
from nurture_tui.errors import ValidationError
from nurture_tui.sequences.codec import dump_definition, load_yaml, parse_text
from nurture_tui.sequences.model import SequenceDef, Step
from nurture_tui.sequences.problems import ProblemsError
from nurture_tui.sequences.service import read_templates_dir
from nurture_tui.sequences.validate import Catalog, default_rule_parser

SAMPLES = Path(__file__).resolve().parents[3] / "sequences"
BUILT = ("consideration-nurture.yaml", "decision-stage.yaml", "cold-lead-reengagement.yaml")


def sample(name: str) -> tuple[str, SequenceDef]:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    defn = parse_text(text, name).definition
    assert defn is not None
    return text, defn


def catalog(defn: SequenceDef) -> Catalog:
    library, problems = read_templates_dir(SAMPLES / "templates")
    assert not problems
    return Catalog(templates=set(library), segment_exists=None, parse_rule=default_rule_parser())


def draft(name: str) -> SequenceDraft:
    text, defn = sample(name)
    return SequenceDraft.from_yaml(text, name, catalog(defn))


def own(step: Step) -> Step:
    """What the node form holds for a step: its own fields, not its children."""
    out = step.model_copy(deep=True, update={"yes": None, "no": None})
    if out.split is not None:
        for arm in out.split.arms:
            arm.steps = []
    return out


def build(text: str) -> SequenceDraft:
    """Build the file's program from nothing the way the keyboard editor does: name it, fill the settings
    form, then for each step `a`/`A` (a blank step of the chosen kind right after the cursor, or first in an
    arm), fill its node form (`replace`), and descend into its arms."""
    data, _root, problems = load_yaml(text, "sample")
    assert not problems
    defn = parse_text(text).definition
    assert defn is not None
    d = SequenceDraft.new(data["name"])
    for key in SETTINGS:
        if key == "send_window" and key in data:
            d.set_window(**data[key])
        elif key in data and key != "name":
            d.set_settings(**{key: data[key]})

    def fill(steps: list[Step], cursor: tuple[Any, ...]) -> None:
        for step in steps:
            cursor = d.add_after(cursor, d.blank(step.kind))
            assert d.step(cursor).id.startswith(step.kind.replace("_", "-") + "-")
            d.replace(cursor, own(step))
            children: dict[str, list[Step]] = {"yes": step.yes or [], "no": step.no or []}
            if step.split is not None:
                children = {a.name: a.steps for a in step.split.arms}
            for arm, items in children.items():
                if items:
                    assert arm in d.arms(cursor)
                    fill(items, (*cursor, arm))

    fill(defn.steps, ())
    return d


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.yaml")))
def test_loading_and_dumping_is_the_canonical_export(name: str) -> None:
    text, defn = sample(name)
    d = SequenceDraft.from_yaml(text, name)
    assert d.dump() == dump_definition(defn)
    assert not d.dirty and d.problems() == []


@pytest.mark.parametrize("name", BUILT)
def test_each_sample_is_built_from_nothing_with_the_edit_api(name: str) -> None:
    text, defn = sample(name)
    d = build(text)
    d.catalog = catalog(defn)
    assert d.dump() == dump_definition(defn)
    assert d.problems() == [] and d.publishable and d.dirty
    # every edit is undoable, back to the blank program, and redoable
    built = d.dump()
    while d.undo():
        pass
    assert d.defn == SequenceDef(name=defn.name, steps=[]) and not d.dirty
    while d.redo():
        pass
    assert d.dump() == built


def test_paths_address_steps_and_arm_lists() -> None:
    d = draft("cold-lead-reengagement.yaml")
    assert d.step((0, "curiosity", 0)).id == "opener-a"
    assert d.step((1, "yes", 4)).id == "reactivated"
    assert d.find("dormant-campaign") == (4, "no", 2)
    assert d.arms((0,)) == ["curiosity", "value"] and d.arms((1,)) == ["yes", "no"] and d.arms((2,)) == []
    assert [s.id for s in d.steps_at((0, "value"))] == ["opener-b"]
    assert d.steps_at((1, "no")) == []  # a list that does not exist yet reads empty
    rows = d.rows()
    assert [(r.path, r.kind, r.summary) for r in rows[:5]] == [
        ((0,), "split", "split curiosity 50 / value 50"),
        ((0, "curiosity"), "arm", "curiosity 50%"),
        ((0, "curiosity", 0), "send", "send cold-opener-curiosity"),
        ((0, "value"), "arm", "value 50%"),
        ((0, "value", 0), "send", "send cold-opener-value"),
    ]
    with pytest.raises(ValidationError, match="no arm 'c'"):
        d.step((0, "c", 0))
    with pytest.raises(ValidationError, match="a send step has no 'yes' list"):
        d.add_first_child((3,), "yes", d.blank("exit"))


def test_add_after_and_first_child_return_the_cursor_and_ids_are_generated() -> None:
    d = SequenceDraft.new("t")
    assert d.add_after((), d.blank("send")) == (0,)
    assert d.add_after((0,), d.blank("wait_for")) == (1,)
    assert d.step((1,)).id == "wait-for-1" and d.new_id("send") == "send-2"
    assert d.add_first_child((1,), "no", d.blank("send")) == (1, "no", 0)
    assert d.step((1, "no", 0)).id == "send-2"
    assert d.add_after((1, "no", 0), d.blank("wait")) == (1, "no", 1)
    assert d.add_first_child((1,), "no", d.blank("exit")) == (1, "no", 0)  # first, before the others
    assert [s.id for s in d.steps_at((1, "no"))] == ["exit-1", "send-2", "wait-1"]
    d.rename((0,), "send-3")
    assert d.new_id("send") == "send-4"  # the counter skips ids in use
    with pytest.raises(ValidationError, match="already used"):
        d.add_after((0,), Step.model_validate({"id": "wait-1", "exit": {}}))
    with pytest.raises(ValidationError, match="unknown step kind"):
        d.blank("jump")


def test_move_within_its_list_only() -> None:
    d = draft("decision-stage.yaml")
    assert d.move((3, "no", 1), -1) == (3, "no", 0)
    assert d.step((3, "no", 0)).id == "expert-wait"
    changes = d.changes
    assert d.move((3, "no", 0), -1) == (3, "no", 0) and d.changes == changes  # first already: no edit
    assert d.move((10,), 1) == (10,)  # last top-level step
    assert d.move((0,), 1) == (1,) and d.step((1,)).id == "case-study"
    assert d.move((3, "no"), 1) == (3, "no")  # an arm header does not move


def test_delete_reports_goto_referrers_and_leaves_a_problem_at_each() -> None:
    d = draft("consideration-nurture.yaml")
    fast = d.find("fast-track")
    assert fast == (13,)
    assert d.referrers(fast) == ["flag-intent-1", "flag-intent-2"]
    assert d.referrers((0,)) == ["opened-1"]  # email-1 is the node its wait_for watches
    assert d.referrers((1,)) == []  # `reengaged` watches `reengage`, but both go together
    assert d.delete(fast) == (13,) and d.step((13,)).id == "intent-points"
    gotos = [(p.path, p.detail, p.message) for p in d.problems() if p.detail == "goto"]
    assert gotos == [((4, "yes", 0), "goto", "unknown step id 'fast-track'"),
                     ((8, "yes", 0), "goto", "unknown step id 'fast-track'")]
    assert not d.publishable
    # a subtree goes with its parent; an emptied yes list disappears, the cursor lands on its header
    assert d.delete((1,)) == (1,) and d.find("reengage") is None and d.find("stop-unengaged") is None
    assert d.delete((3, "yes", 0)) == (3, "yes") and d.step((3,)).yes is None


def test_copy_paste_makes_ids_unique_and_rewrites_gotos_inside_the_subtree() -> None:
    d = SequenceDraft.from_yaml("""
name: loop
steps:
  - id: hello
    send: {template: t}
  - id: watch-1
    wait_for: {events: [{kind: open, node: hello}], window: 3d}
    yes:
      - id: again-1
        action: {type: add_tag, tag: opened}
        goto: watch-1
      - id: dead
        exit: {}
    no:
      - id: out
        goto: hello
        action: {type: add_tag, tag: cold}
""")
    subtree = d.copy((1,))
    at = d.paste_after((1,), subtree)
    assert at == (2,)
    pasted = d.step(at)
    assert pasted.id == "watch-2" and pasted.wait_for is not None
    assert pasted.wait_for.events[0].node == "hello"  # outside the subtree: kept
    assert [(s.id, s.goto) for s in pasted.yes or []] == [("again-2", "watch-2"), ("dead-2", None)]
    assert [(s.id, s.goto) for s in pasted.no or []] == [("out-2", "hello")]
    assert d.step((1, "yes", 0)).goto == "watch-1"  # the original is untouched
    # cut and paste elsewhere: ids not in use any more are kept, so outside gotos still land
    cut = d.copy((1,))
    d.delete((1,))
    d.paste_after((1, "no", 0), cut)
    assert d.find("watch-1") == (1, "no", 1) and d.step((1, "no", 1, "yes", 0)).goto == "watch-1"
    # pasting into an arm header puts it first in that list
    assert d.paste_after((1, "yes"), d.copy((0,))) == (1, "yes", 0) and d.step((1, "yes", 0)).id == "hello-2"


def test_undo_redo_and_dirty() -> None:
    d = draft("welcome.yaml")
    before = d.dump()
    d.delete((0,))
    d.set_settings(reentry="anytime")
    assert d.dirty and d.defn.reentry == "anytime"
    assert d.undo() and d.defn.reentry == "never"
    assert d.redo() and d.defn.reentry == "anytime"
    d.mark_saved()
    assert not d.dirty
    assert d.undo() and d.dirty  # back past the save point: differs from what was saved
    assert d.undo() and d.dump() == before
    assert not d.undo()
    d.move((1,), 1)
    assert not d.redo()  # a new edit clears the redo stack


def test_rename_rewrites_gotos_and_event_nodes() -> None:
    d = draft("consideration-nurture.yaml")
    d.rename((13,), "fast")
    assert d.step((4, "yes", 0)).goto == "fast" and d.step((8, "yes", 0)).goto == "fast"
    d.rename((0,), "intro")
    wf = d.step((1,)).wait_for
    assert wf is not None and [e.node for e in wf.events] == ["intro", "intro"]
    assert d.problems() == []
    with pytest.raises(ValidationError, match="already used"):
        d.rename((0,), "gap-1")
    with pytest.raises(ValidationError, match="slug"):
        d.rename((0,), "Intro Email")
    # renaming through the node form (replace) does the same
    d.replace((13,), d.step((13,)).model_copy(update={"id": "fast-track"}))
    assert d.step((4, "yes", 0)).goto == "fast-track"


def test_replace_keeps_children_and_refuses_to_drop_them_silently() -> None:
    d = draft("decision-stage.yaml")
    path = d.find("sales-ready")
    assert path == (4,)
    new_rule = {"all": [{"field": "score", "ge": 50}, {"field": "grade", "ge": "B-"}]}
    d.replace(path, Step.model_validate({"id": "sales-ready", "branch": {"rule": new_rule}}))
    assert summary(d.step(path)) == "branch score ≥ 50 AND grade ≥ B-"
    assert len(d.steps_at((4, "no"))) == 5 and d.step((4, "no", 4, "no", 2)).id == "not-ready"
    with pytest.raises(ValidationError, match="would delete 8 step"):
        d.replace(path, Step.model_validate({"id": "sales-ready", "send": {"template": "ds-roi"}}))
    d.replace(path, Step.model_validate({"id": "sales-ready", "wait": {"duration": "1d"}}), drop_children=True)
    assert d.find("not-ready") is None and d.step(path).no is None
    # a split keeps its arms' steps by name; a renamed arm takes the steps of the arm whose name is gone
    c = draft("cold-lead-reengagement.yaml")
    c.replace((0,), Step.model_validate({"id": "opener-test", "split": {"arms": [
        {"name": "value", "weight": 40}, {"name": "curious", "weight": 60}]}}))
    assert [s.id for s in c.steps_at((0, "value"))] == ["opener-b"]
    assert [s.id for s in c.steps_at((0, "curious"))] == ["opener-a"]


def test_problems_sit_at_their_node_or_setting() -> None:
    d = draft("cold-lead-reengagement.yaml")
    assert d.problems() == [] and d.publishable
    d.replace((0,), Step.model_validate({"id": "opener-test", "split": {"arms": [
        {"name": "curiosity", "weight": 60}, {"name": "value", "weight": 50}]}}))
    d.replace((0, "value", 0), Step.model_validate({"id": "opener-b", "send": {"template": "nope"}}))
    d.replace((3,), Step.model_validate({"id": "break-up", "wait": {"duration": "3 fortnights"}}))
    d.set_window(days=["tue", "someday"])
    d.set_settings(goal={"any": [{"field": "shoe_size", "eq": 9}]})
    found = {(p.path, p.setting, p.detail): p.message for p in d.problems()}
    assert found[((0,), None, "split")] == "arm weights must sum to 100 (they sum to 110)"
    assert found[((0, "value", 0), None, "send")].startswith("unknown template 'nope'")
    assert "not a duration" in found[((3,), None, "wait")]
    assert found[(None, "send_window", "days[1]")].startswith("unknown day 'someday'")
    assert "shoe_size" in next(m for (p, s, _), m in found.items() if s == "goal")
    assert not d.publishable
    assert [p.message for p in d.problems_at((3,))] == [found[((3,), None, "wait")]]
    where = {p.where for p in d.problems()}
    assert "steps.opener-test.split" in where and "steps.break-up.wait" in where
    # without a catalog templates are not checked; rules still are
    assert not any("template" in p.message for p in d.problems(Catalog(parse_rule=default_rule_parser())))
    # an empty program says so at the step list
    assert [(p.path, p.setting) for p in SequenceDraft.new("x").problems()] == [(None, "steps")]


def test_settings_edits_are_checked_and_undoable() -> None:
    d = SequenceDraft.new("x")
    d.set_settings(entry={"type": "segment", "segment": "named-accounts"}, reentry="after_exit")
    d.set_window(default_timezone="Europe/Berlin", holidays=False, country="DE")
    d.set_settings(caps={"per_week": 2}, exit_when=[{"field": "bounced", "eq": True}])
    assert d.defn.entry.segment == "named-accounts" and d.defn.send_window is not None
    assert d.defn.send_window.days == ["mon", "tue", "wed", "thu", "fri"] and not d.defn.send_window.holidays
    with pytest.raises(ValidationError, match="reentry"):
        d.set_settings(reentry="sometimes")
    with pytest.raises(ValidationError, match="unknown setting 'steps'"):
        d.set_settings(steps=[])
    assert d.defn.reentry == "after_exit" and d.changes == 3
    d.set_settings(send_window=None)
    assert d.defn.send_window is None and d.undo() and d.defn.send_window is not None


def test_a_file_that_does_not_parse_is_not_loaded() -> None:
    with pytest.raises(ProblemsError, match="unknown key 'templat'"):
        SequenceDraft.from_yaml("name: x\nsteps:\n  - id: a\n    send: {templat: t}\n", "x.yaml")


SUMMARIES = {
    "consideration-nurture.yaml": {
        "email-1": "send cn-1-problem",
        "opened-1": "wait_for open of email-1 or click of email-1 up to 5d",
        "gap-1": "wait 6d",
        "intent-1": "wait_for click '*/pricing*' or click '*/demo*' up to 7d",
        "intent-2": "wait_for click '*/demo*' or form 'webinar-registration' or page_view '*/pricing*' up to 7d",
        "flag-intent-1": "action add_tag high-intent",
        "to-cold": "action enroll cold-lead-reengagement",
        "intent-points": "action adjust_score +25",
        "to-decision": "action set_stage decision",
        "tell-rep": "action notify_rep 'High-intent click in the consideration nurture: follow up today'",
        "completed": "exit 'completed consideration nurture'",
    },
    "decision-stage.yaml": {
        "used-roi": "wait_for click of roi '*/roi*' or form 'roi-calculator' up to 5d",
        "sales-ready": "branch score ≥ 60 AND grade ≥ B-",
        "check-in-later": "wait until tue 10:00",
        "recycle-status": "action update_field status = 'Recycled'",
        "mql-campaign": "action add_to_campaign 'Decision Stage Nurture' status Responded",
        "mql-task": "action create_task 'MQL from decision-stage nurture: call within 24h'",
    },
    "cold-lead-reengagement.yaml": {
        "opener-test": "split curiosity 50 / value 50",
        "woke-up": "wait_for click or reply up to 7d",
        "mark-dormant": "action update_field custom.nurture_status = 'dormant'",
    },
    "abm-named-accounts.yaml": {},
    "customer-renewal.yaml": {},
    "welcome.yaml": {},
}


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_summaries_of_every_node_in_the_samples(name: str) -> None:
    d = draft(name)
    for path, step in d.walk():
        line = summary(step)
        assert line.split(" ")[0] == step.kind and "None" not in line, (path, line)
        if step.id in SUMMARIES[name]:
            assert line == SUMMARIES[name][step.id]
    goto_rows = [r for r in d.rows() if r.kind == "goto"]
    assert all(r.summary == f"goto {d.step(r.path).goto}" and r.badge == "GOTO" for r in goto_rows)


def test_summaries_of_the_issue() -> None:
    def s(data: dict[str, Any]) -> str:
        return summary(Step.model_validate({"id": "x", **data}))

    assert s({"send": {"template": "welcome-1"}}) == "send welcome-1"
    assert s({"wait": {"duration": "2d"}}) == "wait 2d"
    assert s({"wait_for": {"events": [{"kind": "click", "url": "pricing*"}], "window": "3d"}}) \
        == "wait_for click 'pricing*' up to 3d"
    assert s({"wait_for": {"events": [{"kind": "open"}], "window": "5d", "mode": "exactly"}}) \
        == "wait_for open exactly 5d"
    assert s({"branch": {"rule": {"all": [{"field": "score", "ge": 50}, {"field": "grade", "ge": "B-"}]}}}) \
        == "branch score ≥ 50 AND grade ≥ B-"
    assert s({"split": {"arms": [{"name": "A", "weight": 50}, {"name": "B", "weight": 50}]}}) == "split A 50 / B 50"
    assert s({"action": {"type": "add_to_campaign", "campaign": "Webinar", "status": "Responded"}}) \
        == "action add_to_campaign 'Webinar' status Responded"
    assert s({"exit": {}}) == "exit"
    assert s({"branch": {"segment": "named-accounts"}}) == "branch in segment 'named-accounts'"
    assert s({"wait": {"until": "2026-12-01"}}) == "wait until 2026-12-01"
    assert s({"action": {"type": "adjust_score", "points": -5}}) == "action adjust_score -5"
    assert s({"branch": {"rule": {"all": [{"field": "shoe", "eq": 1}]}}}).startswith("branch {")


def test_node_forms_refuse_bad_values_in_one_line_and_round_trip_their_data() -> None:
    from nurture_tui.console.sequence_nodes import build_step, form_data

    def refused(data: dict[str, Any], match: str, **kw: Any) -> None:
        with pytest.raises(ValidationError, match=match) as info:
            build_step({"id": "x", **data}, **kw)
        assert "\n" not in str(info.value)

    refused({"wait": {"duration": "3 fortnights"}}, r"^wait: duration: not a duration")
    refused({"wait": {"duration": "0d"}}, "duration must be > 0")
    refused({"wait": {"weekday": "someday"}}, "unknown weekday")
    refused({"wait": {}}, "exactly one of duration, until, weekday")
    refused({"wait_for": {"events": [{"kind": "open"}]}}, "needs a window")
    refused({"wait_for": {"events": [{"kind": "sniff"}], "window": "3d"}}, "unknown event kind")
    refused({"split": {"arms": [{"name": "a", "weight": 60}, {"name": "b", "weight": 50}]}}, "sum to 110")
    refused({"split": {"arms": [{"name": "a", "weight": 100}]}}, "at least 2 arms")
    refused({"action": {"type": "adjust_score"}}, "adjust_score needs points")
    refused({"action": {"type": "update_field", "field": "shoe_size", "value": 9}}, "unknown field 'shoe_size'")
    refused({"action": {"type": "webhook", "url": "ftp://x"}}, "must start with http")
    refused({"action": {"type": "enroll", "sequence": "me"}}, "cannot enroll leads into itself", sequence="me")
    refused({"branch": {"rule": {"all": [{"field": "shoe_size", "eq": 9}]}}}, "shoe_size")
    refused({"send": {"template": ""}}, "pick a template")
    refused({"send": {"templat": "t"}}, "unknown key 'templat'")
    refused({"goto": "Not A Slug", "exit": {}}, "slug")
    with pytest.raises(ValidationError, match="slug"):
        build_step({"id": "Bad Id", "exit": {}})
    # what depends on the rest of the program is the draft's business, not the form's
    ok = build_step({"id": "x", "label": "", "goto": "later",
                     "wait_for": {"events": [{"kind": "open", "node": "elsewhere"}], "window": "3d"}})
    assert ok.goto == "later" and ok.label is None and ok.wait_for is not None and ok.wait_for.events[0].node
    for name in BUILT:
        for _path, step in draft(name).walk():
            data = form_data(step)
            assert "yes" not in data and "no" not in data
            assert build_step(data, sequence=name.removesuffix(".yaml")) == own(step)
