"""`nurture leads import|export` through the real command line: exit codes and output lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import run_cli


@pytest.fixture
def db(db_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert run_cli(capsys, "init", "--db", db_url)[0] == 0
    return db_url


def test_import_summary_and_exit_codes(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    good.write_text("Email,First Name,Shoe Size\na@ex.com,A\nbad,B\n")
    code, out, err = run_cli(capsys, "leads", "import", str(good), "--db", db)
    assert code == 0
    assert out.strip() == f"good.csv: imported 1, updated 0, rejected 1 (reasons in {tmp_path / 'good.errors.csv'})"
    assert "ignored columns Shoe Size" in err and "\r" not in err  # no progress line off a TTY

    code, out, _ = run_cli(capsys, "--db", db, "leads", "import", str(good), "--map", "Shoe Size=custom.shoe",
                           "--dry-run")
    assert code == 0 and "would import 0, updated 1, rejected 1" in out

    allbad = tmp_path / "allbad.csv"
    allbad.write_text("email\nnope\nnever\n")
    code, out, err = run_cli(capsys, "leads", "import", str(allbad), "--db", db)
    assert code == 2 and "rejected 2" in out
    reasons = tmp_path / "allbad.errors.csv"
    assert err.strip().splitlines() == [f"error: {allbad}: no row could be imported; see {reasons}"]


@pytest.mark.parametrize(
    ("body", "extra", "needle"),
    [
        ("name\nAnn\n", [], "no email column"),
        ("email\na@ex.com\n", ["--map", "email=wat"], "unknown field 'wat'"),
        ("email\na@ex.com\n", ["--encoding", "klingon"], "unknown encoding"),
    ],
)
def test_unusable_file_is_one_line_exit_2(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          body: str, extra: list[str], needle: str) -> None:
    path = tmp_path / "u.csv"
    path.write_text(body)
    code, out, err = run_cli(capsys, "leads", "import", str(path), "--db", db, *extra)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_export_then_import_round_trips(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email,stage,custom.plan\na@ex.com,decision,gold\nb@ex.com,,\n")
    assert run_cli(capsys, "leads", "import", str(src), "--db", db)[0] == 0
    out = tmp_path / "out.csv"
    code, text, _ = run_cli(capsys, "leads", "export", str(out), "--db", db)
    assert code == 0 and text.strip() == f"{out}: exported 2 leads"
    code, text, _ = run_cli(capsys, "leads", "import", str(out), "--db", db)
    assert code == 0 and "imported 0, updated 2, rejected 0" in text
    assert "custom.plan" in out.read_text().splitlines()[0]


def test_export_segment(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nurture_tui.segments import service
    from nurture_tui.store.engine import write_tx
    from nurture_tui.workspace import Workspace

    src = tmp_path / "in.csv"
    src.write_text("email,stage\na@ex.com,decision\nb@ex.com,awareness\nc@ex.com,decision\n")
    assert run_cli(capsys, "leads", "import", str(src), "--db", db)[0] == 0
    ws = Workspace.open(db_url=db)
    with write_tx(ws.engine) as conn:
        service.save_segment(conn, "Deciders", {"field": "stage", "op": "eq", "value": "decision"},
                             user="t", now=ws.clock.now())
    ws.close()
    out = tmp_path / "seg.csv"
    code, text, _ = run_cli(capsys, "leads", "export", str(out), "--segment", "deciders", "--db", db)
    assert code == 0 and text.strip() == f"{out}: exported 2 leads in segment 'deciders'"
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == ["a@ex.com", "c@ex.com"]
    code, _, err = run_cli(capsys, "leads", "export", str(out), "--segment", "nope", "--db", db)
    assert code == 2 and "no such segment" in err


def test_demo_no_tui_builds_then_reuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "demo", "--no-tui", "--leads", "150", "--seed", "4")
    demo_db = tmp_path / "data" / "demo.db"  # <data_dir>/demo.db (conftest points NURTURE_DATA_DIR here)
    assert code == 0 and f"demo workspace: sqlite:///{demo_db}" in out
    assert "built the demo workspace" in out and "150 leads" in out and "300 activities" in out
    code, out, _ = run_cli(capsys, "demo", "--no-tui", "--leads", "150", "--seed", "4")
    assert code == 0 and "reused the demo workspace" in out
    code, out, _ = run_cli(capsys, "demo", "--no-tui", "--leads", "80", "--seed", "4")
    assert code == 0 and "built the demo workspace" in out and "80 leads" in out
    other = tmp_path / "real.db"
    assert run_cli(capsys, "init", "--db", f"sqlite:///{other}")[0] == 0
    src = tmp_path / "real.csv"
    src.write_text("email\nreal@customer.com\n")
    assert run_cli(capsys, "leads", "import", str(src), "--db", f"sqlite:///{other}")[0] == 0
    code, _, err = run_cli(capsys, "demo", "--no-tui", "--db", f"sqlite:///{other}")
    assert code == 2 and "not a nurture demo" in err
