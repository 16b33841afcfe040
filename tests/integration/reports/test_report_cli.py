"""`nurture report`: the formats parse back to the same figures, and bad input is one line with exit 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_support import run_cli

from nurture_tui.reports.service import REPORTS
from nurture_tui.workspace import Workspace

from .report_fixture import SINCE, UNTIL, build

PERIOD = ("--since", SINCE, "--until", UNTIL)


@pytest.fixture
def db(sqlite_workspace: Workspace) -> str:
    build(sqlite_workspace)
    return sqlite_workspace.settings.db_url


@pytest.mark.parametrize("name", list(REPORTS))
def test_json_and_csv_parse_back(capsys: pytest.CaptureFixture[str], db: str, name: str) -> None:
    code, out, err = run_cli(capsys, "--db", db, "report", name, *PERIOD, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["report"] == name and data["rows"] and data["empty_reason"] is None
    code, out, err = run_cli(capsys, "--db", db, "report", name, *PERIOD, "--format", "csv")
    assert code == 0, err
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert len(parsed) == len(data["rows"])
    for got, want in zip(parsed, data["rows"], strict=True):
        assert list(got) == data["columns"]
        assert got == {k: "" if v is None else str(v) for k, v in want.items()}
    code, out, _ = run_cli(capsys, "--db", db, "report", name, *PERIOD)
    assert code == 0 and out.splitlines()[0].startswith(data["title"])


def test_table_and_output_file(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "--db", db, "report", "splits", *PERIOD)
    assert code == 0
    assert "» abtest v1 split ab, open: arm A leads by 50.0 pts, p = 0.002, n = 40 (z-test; significant)" in out
    target = tmp_path / "emails.csv"
    code, out, err = run_cli(capsys, "--db", db, "report", "emails", *PERIOD, "--sequence", "nurture",
                             "--format", "csv", "--output", str(target))
    assert code == 0 and out == "" and "to " + str(target) in err
    rows = list(csv.DictReader(target.open()))
    assert rows[0]["level"] == "total" and rows[0]["sent"] == "5" and rows[0]["open_rate"] == "66.7"


@pytest.mark.parametrize(("args", "message"), [
    (("report", "nope"), "error: report: unknown report 'nope' (one of emails, funnel, progression, "
                         "time-to-opportunity, influence, splits, mql, adaptive)"),
    (("report", "emails", "--sequence", "ghost"), "error: --sequence: no sequence named 'ghost' (e.g. abtest, "
                                                   "nurture)"),
    (("report", "funnel", "--segment", "ghost"), "error: --segment: no segment named 'ghost' (e.g. account-acme)"),
    (("report", "mql", "--since", "2026-03-01", "--until", "2026-02-01"),
     "error: --since: 2026-03-01 is after --until 2026-02-01"),
    (("report", "mql", "--since", "yesterday"), "error: --since: 'yesterday' is not a date (YYYY-MM-DD)"),
    (("report", "mql", "--format", "xml"), "error: --format: unknown format 'xml' (one of table, json, csv)"),
])
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], db: str, args: tuple[str, ...],
                                      message: str) -> None:
    code, out, err = run_cli(capsys, "--db", db, *args)
    assert code == 2 and out == ""
    assert err.strip() == message


def test_unwritable_output(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--db", db, "report", "mql", "--output", str(tmp_path / "no" / "x.csv"))
    assert code == 2 and err.startswith("error: --output: cannot write") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", list(REPORTS))
def test_empty_workspace_is_an_empty_report(capsys: pytest.CaptureFixture[str], sqlite_workspace: Workspace,
                                            name: str) -> None:
    code, out, err = run_cli(capsys, "--db", sqlite_workspace.settings.db_url, "report", name, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["rows"] == [] and data["empty_reason"]
