"""YAML codec: YAML 1.2 scalars, syntax errors with lines, pydantic errors at step paths, tidy dumps."""

from __future__ import annotations

import pytest
from seq_support import SAMPLES

from nurture_tui.sequences.codec import dump_definition, load_yaml, parse_text
from nurture_tui.sequences.model import SequenceDef


def test_yes_no_keys_and_times_stay_strings() -> None:
    data, _root, problems = load_yaml("yes: [1]\nno: [2]\nstart: 16:30\nflag: true\nzip: 010\n", "f.yaml")
    assert problems == []
    assert data == {"yes": [1], "no": [2], "start": "16:30", "flag": True, "zip": "010"}


def test_syntax_error_has_line() -> None:
    parsed = parse_text("name: x\nsteps:\n  - id: a\n    send: {template: t\n  - id: b\n", "w.yaml")
    assert parsed.definition is None
    [p] = parsed.problems
    assert p.message.startswith("YAML syntax error")
    assert p.line is not None and p.line >= 4
    assert p.format("w.yaml").startswith("w.yaml: YAML syntax error")


def test_duplicate_key_is_reported() -> None:
    parsed = parse_text("name: x\nname: y\nsteps: [{id: a, exit: {}}]\n", "d.yaml")
    assert [p.format("d.yaml") for p in parsed.problems] == ["d.yaml: duplicate key 'name' (line 2)"]


def test_not_a_mapping() -> None:
    parsed = parse_text("- just\n- a list\n", "l.yaml")
    assert parsed.problems[0].message.startswith("a sequence file must be a mapping")


TEXT = """\
name: welcome
steps:
  - id: intro
    send: {template: t1}
  - id: fast_track
    wait_for: {events: [{kind: click}], window: 3d}
    yes:
      - id: a
        send: {template: t1, templat: t2}
"""


def test_unknown_key_maps_to_step_path_and_line() -> None:
    parsed = parse_text(TEXT, "welcome.yaml")
    assert [p.format("welcome.yaml") for p in parsed.problems] == [
        "welcome.yaml: steps.fast_track.yes[0].send: unknown key 'templat' (line 9)"
    ]


def test_missing_key_two_kinds_and_bad_enum() -> None:
    text = ("name: x\nreentry: sometimes\nsteps:\n  - id: a\n    send: {}\n"
            "  - id: b\n    wait: {duration: 1d}\n    exit: {}\n  - label: no id\n    exit: {}\n")
    lines = [p.format("x.yaml") for p in parse_text(text, "x.yaml").problems]
    assert "x.yaml: steps.a.send: missing required key 'template' (line 5)" in lines
    assert any(line.startswith("x.yaml: steps.b: a step needs exactly one of") and "found wait, exit" in line
               for line in lines)
    assert "x.yaml: steps[2]: missing required key 'id' (line 9)" in lines
    assert any(line.startswith("x.yaml: reentry: 'sometimes' is not allowed") for line in lines)


def test_dump_is_tidy_and_reloads_identically() -> None:
    parsed = parse_text(TEXT.replace(", templat: t2", ""), "w.yaml")
    assert parsed.definition is not None
    text = dump_definition(parsed.definition)
    assert "send: {template: t1}" in text
    assert "\nyes:" not in text and "  yes:\n" in text  # plain yes/no keys, not quoted 'yes'
    again = parse_text(text, "w2.yaml")
    assert again.problems == [] and again.definition == parsed.definition


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_parse_and_dump_round_trip(path) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_text(path.read_text(), path.name)
    assert parsed.problems == []
    defn = parsed.definition
    assert isinstance(defn, SequenceDef)
    dumped = dump_definition(defn)
    reparsed = parse_text(dumped, path.name)
    assert reparsed.problems == []
    assert reparsed.definition is not None and reparsed.definition.to_json() == defn.to_json()
    assert dump_definition(reparsed.definition) == dumped


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)


@settings(max_examples=150, deadline=None)
@given(description=_TEXT, html=_TEXT, label=_TEXT, reason=_TEXT)
def test_any_text_round_trips_exactly(description: str, html: str, label: str, reason: str) -> None:
    defn = SequenceDef.model_validate({
        "name": "prop", "description": description,
        "steps": [{"id": "a", "label": label, "send": {"template": "t"}}, {"id": "b", "exit": {"reason": reason}}],
        "templates": [{"name": "t", "subject": "s", "html": html + "\n  trailing  \n\tx"}],
    })
    text = dump_definition(defn)
    again = parse_text(text, "p.yaml")
    assert again.problems == [] and again.definition is not None
    assert again.definition.to_json() == defn.to_json()
    assert dump_definition(again.definition) == text
