"""Hostile sequence files (issue 20 item 3): aliases, deep nesting, long chains, huge or broken files,
bounded echo, and a multi-file `validate` that reports every file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml
from test_seq_cli import cli

from nurture_tui.errors import ValidationError
from nurture_tui.sequences import codec
from nurture_tui.sequences.codec import load_yaml, parse_text
from nurture_tui.sequences.service import check_text
from nurture_tui.yamlfile import ECHO_LIMIT, MAX_FILE_BYTES, read_text

ALIAS_BOMB = "\n".join(
    ["name: bomb", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["steps: [{id: s, exit: {}}]", "description: *a9", ""]
)


def chain(n: int, *, loop: bool = False) -> str:
    """A program of n consecutive action steps (no waits); with loop=True the last one jumps back."""
    lines = ["name: long", "steps:"]
    for i in range(n):
        lines.append(f"  - {{id: s{i}, action: {{type: add_tag, tag: t{i}}}}}")
    if loop:
        lines[-1] = lines[-1][:-1] + ", goto: s0}"
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once_with_its_line() -> None:
    assert len(ALIAS_BOMB) < 5000
    start = time.perf_counter()
    parsed = parse_text(ALIAS_BOMB, "bomb.yaml")
    assert time.perf_counter() - start < 2
    assert parsed.definition is None
    [p] = parsed.problems
    assert p.format("bomb.yaml") == "bomb.yaml: YAML aliases are not allowed (*a0); write the value out (line 3)"


def test_a_single_alias_is_refused_too() -> None:
    _data, _root, [p] = load_yaml("name: x\nx: &t hello\ndescription: *t\nsteps: [{id: a, exit: {}}]\n", "a.yaml")
    assert "aliases are not allowed" in p.message and p.line == 3


def test_deep_nesting_is_refused_with_a_line() -> None:
    text = "name: x\ndescription: " + "[" * 500 + "]" * 500 + "\n"
    [p] = parse_text(text, "deep.yaml").problems
    assert p.message == f"nested deeper than {codec.MAX_DEPTH} levels" and p.line == 2


@pytest.mark.parametrize("loop", [False, True])
def test_a_thousand_consecutive_steps_validate_without_recursion_error(loop: bool) -> None:
    n = max(1000, sys.getrecursionlimit() + 100)
    fc = check_text(None, chain(n, loop=loop), "long.yaml")
    if not loop:
        assert fc.problems == []
    else:
        [p] = fc.problems
        assert p.message.startswith("loop without a wait: s0 → s1 → ") and p.where == f"steps.s{n - 1}"
        assert p.line == n + 2


def test_the_c_loader_is_used_where_available_keeping_yaml12_scalars_and_duplicates() -> None:
    if yaml.__with_libyaml__:
        assert issubclass(codec._Loader, yaml.CSafeLoader)
    data, _root, problems = load_yaml("yes: [1]\nno: on\nstart: 16:30\nyes: [2]\n", "c.yaml")
    assert data["no"] == "on" and data["start"] == "16:30"
    assert [p.message for p in problems] == ["duplicate key 'yes'"]


def test_offending_values_are_echoed_bounded() -> None:
    huge = "x" * 100_000
    fc = check_text(None, f"name: ok\nstage: {huge}\nsteps: [{{id: a, exit: {{}}}}]\n", "s.yaml")
    [line] = fc.lines()
    assert line.startswith("s.yaml: stage: unknown stage 'xxx") and line.endswith("(line 2)")
    assert len(line) < ECHO_LIMIT + 200
    fc = check_text(None, f"name: ok\nsteps: [{{id: a, exit: {{}}, wait: [{huge}]}}]\n", "t.yaml")
    assert fc.problems and all(len(x) < ECHO_LIMIT + 300 for x in fc.lines())


def test_read_text_refuses_by_size_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(5_000_000)
    with pytest.raises(ValidationError, match=r"file too large \(5 MB; the limit is 1 MB\)"):
        read_text(big)
    assert MAX_FILE_BYTES == 1_000_000


def test_read_text_names_the_line_of_a_bad_byte_or_a_nul(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: x\nsteps: []\ndescription: caf\xe9\n")
    with pytest.raises(ValidationError) as exc:
        read_text(latin)
    assert exc.value.message == "line 3: not UTF-8 text"
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"name: x\n\nsteps: [a\x00]\n")
    with pytest.raises(ValidationError) as exc:
        read_text(nul)
    assert exc.value.message == "line 3: a NUL byte is not allowed"


def test_a_nul_in_parsed_text_has_a_line_not_an_offset() -> None:
    [p] = parse_text("name: x\nsteps:\n  - id: a\x00\n", "n.yaml").problems
    assert p.format("n.yaml") == "n.yaml: YAML syntax error: a NUL byte is not allowed (line 3)"


def test_multi_file_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {
        "1-bomb.yaml": ALIAS_BOMB.encode(),
        "2-latin.yaml": b"name: x\nsteps: [{id: a, exit: {}}]\ndescription: caf\xe9\n",
        "3-nul.yaml": b"name: x\nsteps: [{id: a, exit: {}}]\n\x00\n",
        "4-good.yaml": b"name: good\nsteps: [{id: a, exit: {}}]\n",
        "5-huge.yaml": b"name: huge\ndescription: " + b"x" * 5_000_000 + b"\nsteps: [{id: a, exit: {}}]\n",
        "6-missing-step.yaml": b"name: bad\nsteps: []\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    start = time.perf_counter()
    code, out, err = cli(capsys, "sequences", "validate", *(str(tmp_path / n) for n in files), "--no-db")
    assert time.perf_counter() - start < 10
    assert code == 2 and err == ""
    assert out.splitlines() == [
        "1-bomb.yaml: YAML aliases are not allowed (*a0); write the value out (line 3)",
        "2-latin.yaml: line 3: not UTF-8 text",
        "3-nul.yaml: line 3: a NUL byte is not allowed",
        "5-huge.yaml: file too large (5 MB; the limit is 1 MB)",
        "6-missing-step.yaml: steps: a sequence needs at least one step (line 2)",
    ]


def test_validate_with_a_workspace_and_apply_report_every_unreadable_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'ws.db'}"
    assert cli(capsys, "init", "--db", db)[0] == 0
    bomb, latin, good = tmp_path / "bomb.yaml", tmp_path / "latin.yaml", tmp_path / "good.yaml"
    bomb.write_text(ALIAS_BOMB)
    latin.write_bytes(b"name: x\nsteps: [{id: a, exit: {}}]\ndescription: caf\xe9\n")
    good.write_text("name: good\nsteps: [{id: a, exit: {}}]\n")
    code, out, _ = cli(capsys, "sequences", "validate", str(bomb), str(latin), str(good), "--db", db)
    assert code == 2 and out.splitlines() == [
        "bomb.yaml: YAML aliases are not allowed (*a0); write the value out (line 3)",
        "latin.yaml: line 3: not UTF-8 text",
    ]
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(5_000_000)
    code, out, err = cli(capsys, "sequences", "apply", str(big), str(latin), str(good), "--db", db)
    assert (code, out) == (2, "")
    assert err.splitlines() == ["big.yaml: file too large (5 MB; the limit is 1 MB)",
                                "latin.yaml: line 3: not UTF-8 text"]
    code, out, _ = cli(capsys, "sequences", "list", "--db", db)
    assert "good" not in out  # all or nothing
