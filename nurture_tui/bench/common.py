"""Shared benchmark plumbing: timing, medians, and recording results under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(os.environ.get("NURTURE_BENCH_RESULTS", "benchmarks/results"))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run `fn` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_ms(fn: Callable[[], Any], runs: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        seconds, _ = timed(fn)
        samples.append(seconds * 1000.0)
    return round(statistics.median(samples), 3)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100.0 * (len(ordered) - 1))))
    return ordered[k]


def record(result: dict[str, Any], *, as_json: bool, echo: Callable[[str], None] = print) -> Path:
    """Print the result (one JSON object with --json, else key: value lines) and save it to
    benchmarks/results/<scenario>-<UTC timestamp>.json with machine facts."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # clock-ok: a file name, not domain time
    path = RESULTS_DIR / f"{result['scenario']}-{stamp}.json"
    saved = dict(result)
    saved["_machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    path.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    if as_json:
        echo(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            echo(f"{key:>28}: {value}")
        echo(f"{'saved':>28}: {path}")
    return path
