"""`nurture bench tui --leads 1000000 --json`: how fast the TUI opens and pages over a million leads.

A SQLite workspace with N leads is built once (raw sqlite3 `executemany`, cached under
benchmarks/work/). Then, in fresh processes (`python -m nurture_tui.tui.bench_probe`, headless, 120×40):

- startup_s: process start → the first Leads screen painted and taking keys (the real composition path:
  settings, workspace open with the schema check, app, first keyset page);
- page_down_ms: median key press → every visible row loaded and repainted, over 30 page-downs;
- jump_end_ms: median cold jump to the last lead (tail evicted from the cache before each jump);
- rss_mb: the probe's peak RSS.
- startup_cpu_s: CPU seconds the probe used until ready (the machine is often shared; wall-clock start-up
  under load says more about the neighbours than about the code).

Reference, same run: the built-in DataTable loading `--reference-rows` (default 100,000) of the same leads,
time to first paint and RSS.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

NAME = "tui"
WORK = Path(os.environ.get("NURTURE_BENCH_WORK", "benchmarks/work"))
TARGETS = {"startup_s": 1.0, "rss_mb": 150.0, "page_down_ms": 50.0, "jump_end_ms": 100.0}

_STAGES = ("awareness", "consideration", "decision", "customer")
_COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES", "IT", "SE", "CA", "AU")
_GRADES = ("F", "D-", "D", "D+", "C-", "C", "C+", "B-", "B", "B+", "A-", "A", "A+")
_COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Soylent", "Tyrell")


def build_workspace(path: Path, leads: int, echo: Any = None) -> str:
    """Create (once) a workspace with `leads` leads; returns its URL."""
    url = f"sqlite:///{path}"
    marker = path.with_suffix(".ready")
    if path.exists() and marker.exists() and marker.read_text().strip() == str(leads):
        return url
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, marker, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    from ..config import load_settings
    from ..store.types import to_db
    from ..workspace import Workspace

    with Workspace.open(load_settings(None, url, data_dir=path.parent), create=True):
        pass
    rnd = random.Random(42)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    sql = ("INSERT INTO lead (email, first_name, last_name, company, country, stage, score, grade, grade_rank, "
           "last_activity_at, opted_out, bounced, custom, created_at, updated_at) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,0,0,'{}',?,?)")
    created = to_db(now - timedelta(days=90))
    batch = 50_000
    for start in range(0, leads, batch):
        rows = []
        for i in range(start, min(leads, start + batch)):
            g = rnd.randrange(13)
            rows.append((
                f"lead{i:07d}@{_COMPANIES[i % 10].lower()}.example", f"First{i % 997}", f"Last{i % 1009}",
                _COMPANIES[i % 10], _COUNTRIES[i % 10], _STAGES[i % 4], round(rnd.random() * 200, 2), _GRADES[g], g,
                to_db(now - timedelta(minutes=rnd.randrange(60 * 24 * 60))), created, created,
            ))
        con.executemany(sql, rows)
        con.commit()
        if echo:
            echo(f"  built {min(leads, start + batch):,} / {leads:,} leads")
    con.execute("ANALYZE")
    con.close()
    marker.write_text(str(leads))
    return url


def reference_rows(db_url: str, rows: int) -> list[tuple[str, ...]]:
    """The reference's data: the top `rows` leads by score as plain strings, read in one query (the probe
    times this read plus the built-in DataTable loading them)."""
    from sqlalchemy import select

    from ..store.engine import make_engine
    from ..store.tables import lead

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple("" if v is None else str(v) for v in r) for r in conn.execute(
                select(lead.c.email, lead.c.last_name, lead.c.company, lead.c.country, lead.c.stage, lead.c.score)
                .order_by(lead.c.score.desc()).limit(rows))]
    finally:
        engine.dispose()


def _probe(args: list[str]) -> tuple[float | None, list[dict[str, Any]]]:
    """Run the probe; return (seconds from spawn to its 'ready' line, every JSON line)."""
    start = time.perf_counter()
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    proc = subprocess.Popen([sys.executable, "-m", "nurture_tui.tui.bench_probe", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    ready: float | None = None
    events = []
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("event") == "ready" and ready is None:
            ready = time.perf_counter() - start
        events.append(event)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        from ..errors import NurtureError

        raise NurtureError(f"bench probe failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    return ready, events


def command(
    leads: int = typer.Option(1_000_000, "--leads", help="Leads in the benchmark workspace."),
    reference_rows: int = typer.Option(100_000, "--reference-rows",
                                       help="Rows the built-in DataTable reference loads (0 = skip)."),
    runs: int = typer.Option(3, "--runs", help="Start-ups to time (the median is reported)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Start-up, RSS, page-down and jump-to-end latency of the Leads screen over N leads, headless."""
    from statistics import median

    from .common import record

    echo = None if as_json else typer.echo
    url = build_workspace(WORK / f"tui-{leads}.db", leads, echo)
    startups, cpu = [], []
    done: dict[str, Any] = {}
    for _ in range(max(1, runs)):
        ready, events = _probe(["--db", url])
        startups.append(ready or float("nan"))
        cpu.append(next(e for e in events if e.get("event") == "ready")["cpu_s"])
        done = next(e for e in events if e.get("event") == "done")
    result: dict[str, Any] = {
        "scenario": "tui",
        "leads": done["total"],
        "startup_s": round(median(startups), 3),
        "rss_mb": done["rss_mb"],
        "page_down_ms": done["page_down_ms"],
        "jump_end_ms": done["jump_end_ms"],
        "page_down_p95_ms": done["page_down_p95_ms"],
        "startup_runs_s": [round(s, 3) for s in startups],
        # CPU seconds the process used until ready: what start-up costs regardless of neighbours
        "startup_cpu_s": round(median(cpu), 3),
    }
    if reference_rows:
        _ready, events = _probe(["--db", url, "--reference", str(min(reference_rows, leads))])
        ref = next(e for e in events if e.get("event") == "reference")
        result.update({
            "reference": f"built-in DataTable with {ref['rows']:,} rows",
            "reference_first_paint_s": ref["first_paint_s"],
            "reference_rss_mb": ref["rss_mb"],
        })
    result["targets"] = TARGETS
    result["meets_targets"] = all(result[k] <= v for k, v in TARGETS.items())
    record(result, as_json=as_json)
