"""`nurture bench segment-builder` end to end on 2,000 leads (a smoke test: the probe drives both editors in
a fresh process; no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli

from nurture_tui.bench import common, segments

pytestmark = pytest.mark.slow


def test_bench_segment_builder_prints_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(segments, "WORK", tmp_path / "work")
    code, out, err = run_cli(capsys, "bench", "segment-builder", "--leads", "2000", "--rounds", "1",
                             "--counts", "2", "--previews", "2", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert list(result)[:4] == ["scenario", "keystroke_p99_ms", "count_p95_ms", "preview_p95_ms"]
    assert result["scenario"] == "segment-builder" and result["leads"] == 2000
    assert result["keys_typed"] > 100 and result["count"] >= 0
    assert all(result[k] > 0 for k in ("keystroke_p99_ms", "count_p95_ms", "preview_p95_ms"))
    assert set(result["ratio"]) == {"keystroke", "count", "preview"}
    assert len(list((tmp_path / "results").glob("segment-builder-*.json"))) == 1
