"""`nurture bench adaptive` end to end on a small N and two seeds (a smoke test of the keys and the
arithmetic — the printed share is the worst case and seed's; the targets are checked on the full run,
recorded under benchmarks/results/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli

from nurture_tui.bench import common

KEYS = ["scenario", "adaptive_clicks", "uniform_clicks", "oracle_clicks", "gain_vs_uniform_pct",
        "share_of_oracle_gain", "sto_open_rate_gain_pct", "sto_share_of_oracle_gain"]


def test_bench_adaptive_prints_the_issue_keys_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    code, out, err = run_cli(capsys, "bench", "adaptive", "--leads", "600", "--sto-leads", "300", "--seed", "5",
                              "--seeds", "2", "--json")
    assert code == 0, err
    printed = json.loads(out.strip().splitlines()[-1])
    assert list(printed) == KEYS and printed["scenario"] == "adaptive"
    (saved,) = (tmp_path / "results").glob("adaptive-*.json")
    result = json.loads(saved.read_text())
    assert {k: result[k] for k in KEYS} == printed
    cases = result["cases"]
    assert set(cases) == {"stationary", "by_persona", "drift"} and result["seeds"] == [5, 6]
    assert all(set(per_seed) == {"5", "6"} for per_seed in cases.values())
    runs = [run for per_seed in cases.values() for run in per_seed.values()]
    worst = cases[result["worst_case"]][str(result["worst_seed"])]
    assert result["share_of_oracle_gain"] == worst["share_of_oracle_gain"] == min(
        r["share_of_oracle_gain"] for r in runs)
    assert result["adaptive_clicks"] == worst["adaptive_clicks"]
    for name, per_seed in cases.items():
        assert result["share_by_case"][name]["min"] == min(r["share_of_oracle_gain"] for r in per_seed.values())
    for case in runs:
        gain = case["oracle_clicks"] - case["uniform_clicks"]
        assert gain > 0 and case["share_of_oracle_gain"] == round(
            (case["adaptive_clicks"] - case["uniform_clicks"]) / gain, 3)
    sto = result["sto"]
    assert sto["plain_open_rate"] < sto["sto_open_rate"] <= sto["oracle_open_rate"]
    assert set(sto["sto_histogram_sources"]) <= {"lead", "persona"}
