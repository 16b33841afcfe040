"""The segment builder's draft, headless: every edit, undo/redo, problems at their condition, and the
condition form's value parsing — what the TUI does on each key, without a terminal."""

from __future__ import annotations

import pytest

from nurture_tui.console.segment_conditions import build, split, subjects
from nurture_tui.console.segment_draft import Group, RuleDraft
from nurture_tui.errors import ValidationError
from nurture_tui.segments.rules import parse_rule

S = {s.key: s for s in subjects(names={"segments": ("customers",)})}
SOFTWARE = {"field": "industry", "op": "in", "value": ["Software", "Fintech"]}
SCORE = {"field": "score", "op": "ge", "value": 50}
GRADE = {"field": "grade", "op": "ge", "value": "B-"}
OPENED = {"activity": "open", "within": "14d"}


def test_building_nested_groups_gives_the_rule_data() -> None:
    d = RuleDraft()
    at = d.add((), SOFTWARE)
    group = d.add(at, Group("any", []))
    d.add(group, SCORE)
    d.add((*group, 0), GRADE)
    d.add(group, OPENED)  # cursor on the group: into it, last
    d.outdent((1, 2))  # …then out of it, right after the group
    none = d.add((2,), Group("none", []))
    d.add(none, {"in_segment": "customers"})
    assert d.data() == {"all": [SOFTWARE, {"any": [SCORE, GRADE]}, OPENED, {"none": [{"in_segment": "customers"}]}]}
    assert parse_rule(d.data()).render() == d.rendering()
    assert d.problems() == []


def test_move_indent_delete_and_undo_redo() -> None:
    d = RuleDraft({"all": [SOFTWARE, {"any": [SCORE]}, OPENED]})
    assert d.move((2,), -1) == (1,)
    assert d.data()["all"][1] == OPENED
    assert d.move((0,), -1) == (0,)  # already first: stays, and is not an edit
    assert d.indent((1,)) == (1,)  # the node above is a condition: nothing to indent into
    assert d.indent((2,)) == (2,)
    d.move((1,), 1)  # the group is above the activity again
    assert d.indent((2,)) == (1, 1)
    assert d.data() == {"all": [SOFTWARE, {"any": [SCORE, OPENED]}]}
    assert d.delete((1,)) == (0,)
    assert d.data() == {"all": [SOFTWARE]}
    assert d.undo() and d.data() == {"all": [SOFTWARE, {"any": [SCORE, OPENED]}]}
    assert d.redo() and d.data() == {"all": [SOFTWARE]}
    while d.undo():
        pass
    assert d.data() == {"all": [SOFTWARE, {"any": [SCORE]}, OPENED]} and not d.dirty
    with pytest.raises(ValidationError):
        d.delete(())


def test_problems_sit_at_their_condition_and_block_the_rule() -> None:
    d = RuleDraft({"all": [SOFTWARE, {"field": "score", "op": "ge", "value": "lots"}, {"any": []}]})
    problems = {p.path: p.message for p in d.problems()}
    assert set(problems) == {(1,), (2,)}
    assert "expected a number" in problems[(1,)] and "empty any group" in problems[(2,)]
    with pytest.raises(ValidationError):
        d.rule()
    assert "industry" in d.rendering()  # still readable while invalid


def test_the_form_builds_canonical_conditions_and_refuses_bad_values() -> None:
    assert build(S["industry"], "in", "Software, Fintech") == SOFTWARE
    assert build(S["score"], "ge", "50") == SCORE
    assert build(S["grade"], "ge", "b-") == GRADE
    assert build(S["activity:open"], "within", "14d") == OPENED
    assert build(S["activity:click"], "at_least", "2 within 7d") == {"activity": "click", "within": "7d", "at_least": 2}
    assert build(S["in_segment"], "is", "customers") == {"in_segment": "customers"}
    for data in (SOFTWARE, SCORE, GRADE, OPENED, {"in_segment": "customers"}):
        key, op, text = split(data)
        assert build(S[key], op, text) == data
    with pytest.raises(ValidationError, match="expected a number"):
        build(S["score"], "ge", "lots")
    with pytest.raises(ValidationError, match="too long"):
        build(S["industry"], "eq", "x" * 10_000)
    with pytest.raises(ValidationError, match="bad regular expression"):
        build(S["email"], "regex", "([a-z")
    with pytest.raises(ValidationError, match="does not apply"):
        build(S["score"], "contains", "5")


def test_every_demo_segment_can_be_written_in_the_form() -> None:
    """The done-when of the builder: each sample segment of the demo is expressible condition by condition."""
    from nurture_tui.demo.live import DEMO_SEGMENTS

    for _name, (_description, rule) in DEMO_SEGMENTS.items():
        data = parse_rule(rule).to_data()
        for item in data.get("all", [data]):
            key, op, text = split(item)
            assert build(S[key], op, text) == item


def test_behaviour_filters_and_several_kinds() -> None:
    clicked = build(S["activity:click"], "at_least", "2 within 30d url:*pricing* template:welcome-1")
    assert clicked == {"activity": "click", "template": "welcome-1", "url": "*pricing*", "within": "30d",
                       "at_least": 2}
    assert build(S["activity:open"], "within", "7d also:click") == {"activity": ["open", "click"], "within": "7d"}
    assert build(S["activity:click"], *split(clicked)[1:]) == clicked
