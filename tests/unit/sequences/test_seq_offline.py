"""`nurture sequences validate` without a workspace (issue 20 item 11): everything that needs none is
checked, references to stored templates and saved segments are listed as not checked (exit 0), and
`--strict` makes them errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_seq_cli import REPO_SEQUENCES, cli


@pytest.fixture
def no_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A process with no config file and no default database (a git hook, a CI job)."""
    for name in ("NURTURE_CONFIG", "NURTURE_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "data"


REFS = """\
name: refs
entry: {type: segment, segment: trial-users}
steps:
  - {id: hello, send: {template: stored-hello}}
  - id: check
    branch: {rule: {any: [{in_segment: vips}, {field: score, ge: 30}]}}
    yes:
      - {id: local, send: {template: inline-one}}
templates:
  - {name: inline-one, subject: Hi, html: "<p>Hello</p>"}
"""


def test_the_library_validates_without_a_workspace_and_creates_none(
        no_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(REPO_SEQUENCES.glob("*.yaml"))]
    code, out, err = cli(capsys, "sequences", "validate", *files)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "note: abm-named-accounts.yaml: entry.segment: segment 'named-accounts' not checked (no workspace) (line 6)",
        f"ok: {len(files)} files valid; 1 reference not checked (no workspace)",
    ]
    assert not no_workspace.exists()  # the default SQLite workspace was not created


def test_unchecked_references_are_listed_and_real_problems_still_fail(
        no_workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "refs.yaml"
    good.write_text(REFS)
    code, out, _ = cli(capsys, "sequences", "validate", str(good))
    assert code == 0
    assert out.splitlines() == [
        "note: refs.yaml: entry.segment: segment 'trial-users' not checked (no workspace) (line 2)",
        "note: refs.yaml: steps.hello.send: template 'stored-hello' not checked (no workspace) (line 4)",
        "note: refs.yaml: steps.check.branch.rule: segment 'vips' not checked (no workspace) (line 6)",
        "ok: 1 file valid; 3 references not checked (no workspace)",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(REFS.replace("{id: local, send: {template: inline-one}}", "{id: pause, wait: {duration: 0d}}"))
    code, out, _ = cli(capsys, "sequences", "validate", str(good), str(bad))
    assert code == 2
    assert "bad.yaml: steps.check.yes[0].wait: duration must be > 0 (line 8)" in out.splitlines()
    assert not out.splitlines()[-1].startswith("ok")


def test_strict_makes_unchecked_references_errors(no_workspace: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(REPO_SEQUENCES, lib)
    code, out, _ = cli(capsys, "sequences", "validate", str(lib / "welcome.yaml"), "--strict")
    assert (code, out.strip()) == (0, "ok: 1 file valid")  # its templates are all in templates/
    code, out, _ = cli(capsys, "sequences", "validate", str(lib / "abm-named-accounts.yaml"), "--strict")
    assert code == 2
    assert out.splitlines() == ["error: abm-named-accounts.yaml: entry.segment: segment 'named-accounts' not "
                                "checked (no workspace) (line 6)"]


def test_a_workspace_named_on_the_command_line_must_open(no_workspace: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = cli(capsys, "sequences", "validate", str(REPO_SEQUENCES / "welcome.yaml"),
                          "--db", f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert code == 2 and "not a nurture workspace yet" in err and len(err.strip().splitlines()) == 1
