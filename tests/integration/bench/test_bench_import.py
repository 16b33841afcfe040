"""`nurture bench import` end to end on a small N (a smoke test: no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli

from nurture_tui.bench import common


def test_bench_import_prints_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    code, out, err = run_cli(capsys, "bench", "import", "--rows", "2000", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert list(result) == ["scenario", "rows", "seconds", "rows_per_s", "reference_rows_per_s", "ratio"]
    assert result["scenario"] == "import" and result["rows"] == 2000
    assert result["rows_per_s"] > 0 and result["reference_rows_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["rows_per_s"] / result["reference_rows_per_s"], rel=0.01)
    saved = list((tmp_path / "results").glob("import-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["rows"] == 2000


def test_generated_csv_imports_cleanly(sqlite_workspace: object, tmp_path: Path) -> None:
    from nurture_tui.demo.csvgen import lead_rows, write_csv
    from nurture_tui.leads.importer import import_csv

    rows = lead_rows(500, seed=3)
    assert len({r[0] for r in rows}) == 500 and rows == lead_rows(500, seed=3)
    write_csv(tmp_path / "g.csv", rows)
    result = import_csv(sqlite_workspace, tmp_path / "g.csv")  # type: ignore[arg-type]
    assert (result.imported, result.rejected, result.ignored_columns) == (500, 0, ())
