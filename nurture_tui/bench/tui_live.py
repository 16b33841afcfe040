"""`nurture bench tui-live --leads 1000000 --json`: the leaderboard live at 4 Hz while the engine writes
(issue 18 item 1).

On a copy of `bench segments`' cached demo workspace (1M leads, 5M activities), this process records
engagement through the engine's pipeline (`engine.events.record_events`: clicks and page views of hot and
random leads, scored, segmented, qualified — the writes the engine makes) while a fresh headless process
(`python -m nurture_tui.tui.bench_live_probe`, 160×48) shows the leaderboard at 4 Hz and reports:

- refresh_ms_p99: the poll firing → the console query in its worker → the keyed diff applied → the frame
  that painted it, p99 over every refresh of the measured window (with its median, the query alone
  `fetch_ms_p99`, the diff on the UI thread `apply_ms_p99`, and the table lines drawn again per refresh);
- cpu_pct_at_4hz: the probe process's CPU (every thread) over that window, in % of one core;
- reference_ms: the bare query (the top 50 by stored score with the owner's name, on a raw sqlite3
  connection) p99, timed here while the writer runs; ratio = refresh_ms_p99 / reference_ms.
Targets: refresh p99 ≤ 50 ms, CPU ≤ 15 % of one core.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from .common import percentile
from .segments import T_NOW, _sync_indexes, _template_db

NAME = "tui-live"
TARGETS = {"refresh_ms_p99": 50.0, "cpu_pct_at_4hz": 15.0}
REFERENCE_SQL = ("SELECT lead.id, lead.email, lead.first_name, lead.last_name, lead.company, lead.score, "
                 "lead.grade, lead.stage, lead.last_activity_at, user.name, user.username FROM lead "
                 "LEFT OUTER JOIN user ON user.id = lead.owner_id ORDER BY lead.score DESC, lead.id DESC LIMIT 50")
URLS = ("https://www.example.com/pricing", "https://www.example.com/roi", "https://www.example.com/blog/nurture")


class EngineWriter:
    """Engagement recorded through the engine's pipeline in batches, each in its own write transaction."""

    def __init__(self, url: str, batch: int, interval: float) -> None:
        from ..clock import VirtualClock
        from ..config import load_settings
        from ..workspace import Workspace

        self.ws = Workspace.open(load_settings(None, url), clock=VirtualClock(T_NOW), check_schema=False)
        self.batch, self.interval = batch, interval
        self.stop = threading.Event()
        self.batches = 0
        self.events = 0
        self.thread = threading.Thread(target=self._run, name="bench-engine-writer", daemon=True)

    def _run(self) -> None:
        from sqlalchemy import select

        from ..activity import ActivityEvent
        from ..engine.events import record_events
        from ..store.engine import write_tx
        from ..store.tables import lead

        rnd = random.Random(7)
        with self.ws.engine.connect() as conn:
            hot = list(conn.execute(select(lead.c.id).order_by(lead.c.score.desc()).limit(400)).scalars())
            top_id = int(conn.execute(select(lead.c.id).order_by(lead.c.id.desc()).limit(1)).scalar_one())
        step = 0
        while not self.stop.is_set():
            step += 1
            at = T_NOW + timedelta(seconds=step)
            events = [ActivityEvent(rnd.choice(hot) if rnd.random() < 0.6 else rnd.randint(1, top_id),
                                    rnd.choice(("click", "page_view")), at, url=rnd.choice(URLS))
                      for _ in range(self.batch)]
            with write_tx(self.ws.engine) as conn:
                record_events(conn, events, at, self.ws.settings)
            self.batches += 1
            self.events += len(events)
            self.stop.wait(self.interval)

    def __enter__(self) -> EngineWriter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.ws.close()


def _probe(url: str, seconds: float, rate: int) -> list[dict[str, Any]]:
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    proc = subprocess.run([sys.executable, "-m", "nurture_tui.tui.bench_live_probe", "--db", url,
                           "--now", T_NOW.isoformat(), "--seconds", str(seconds), "--rate", str(rate)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        from ..errors import NurtureError

        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)
        raise NurtureError(f"tui-live probe failed: {tail}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _reference(path: Path, runs: int) -> list[float]:
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA cache_size=-16384")
    try:
        raw.execute(REFERENCE_SQL).fetchall()
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            raw.execute(REFERENCE_SQL).fetchall()
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)
        return out
    finally:
        raw.close()


def _add_new_columns(url: str, echo: Any) -> None:
    """Columns the models gained since the cached data set was built (nullable or defaulted ones, as a
    migration would add them), so the current code runs on the copy."""
    from sqlalchemy import inspect, text

    from ..store.engine import make_engine
    from ..store.models import metadata

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            have = inspect(conn)
            for table in metadata.sorted_tables:
                if not have.has_table(table.name):
                    continue
                present = {c["name"] for c in have.get_columns(table.name)}
                for col in table.columns:
                    if col.name in present:
                        continue
                    scalar = col.default is not None and col.default.is_scalar
                    default = getattr(col.default, "arg", None) if scalar else None
                    ddl = f'ALTER TABLE "{table.name}" ADD COLUMN "{col.name}" {col.type.compile(engine.dialect)}'
                    if default is not None:
                        ddl += f" DEFAULT {default!r}" if not isinstance(default, bool) else f" DEFAULT {int(default)}"
                    conn.execute(text(ddl))
                    echo(f"  added {table.name}.{col.name} (newer than the cached data set)")
    finally:
        engine.dispose()


def run(leads: int, activities: int, seed: int, seconds: float, rate: int, batch: int, interval: float,
        echo: Any) -> dict[str, Any]:
    template = _template_db(leads, activities, seed, echo)
    _sync_indexes(template, echo)
    path = template.with_name(f"tui-live-{leads}.db")
    echo(f"  copying {template.name} (the writer changes it)…")
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    _add_new_columns(url, echo)
    try:
        with EngineWriter(url, batch, interval) as writer:
            echo(f"  leaderboard at {rate} Hz for {seconds:g} s in a fresh process, the engine writing…")
            events = _probe(url, seconds, rate)
            echo("  the bare query on raw sqlite3…")
            reference = _reference(path, 200)
            written = {"batches": writer.batches, "events": writer.events}
    finally:
        for suffix in ("", "-wal", "-shm", "-writers.lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    refresh = next(e for e in events if e["event"] == "refresh")
    cpu = next(e for e in events if e["event"] == "cpu")
    p99 = round(percentile(refresh["ms"], 99), 2)
    ref = round(percentile(reference, 99), 3)
    return {
        "scenario": NAME,
        "refresh_ms_p99": p99,
        "cpu_pct_at_4hz": cpu["pct"],
        "reference_ms": ref,
        "ratio": round(p99 / ref, 2) if ref else None,
        "reference": "the top-50 query with the owner join on a raw sqlite3 connection, p99, same run",
        "refresh_ms_median": round(percentile(refresh["ms"], 50), 2),
        "fetch_ms_p99": round(percentile(refresh["fetch_ms"], 99), 2),
        "apply_ms_p99": round(percentile(refresh.get("apply_ms", []), 99), 2),
        "lines_drawn_median": percentile(refresh.get("lines_drawn", []), 50),
        "refreshes": cpu["refreshes"], "seconds": cpu["seconds"], "rate_hz": rate,
        "engine_writes": written, "leads": leads, "activities": activities, "seed": seed,
        "targets": TARGETS,
        "meets_targets": {"refresh_ms_p99": p99 <= TARGETS["refresh_ms_p99"],
                          "cpu_pct_at_4hz": cpu["pct"] <= TARGETS["cpu_pct_at_4hz"]},
    }


def command(
    leads: int = typer.Option(1_000_000, "--leads", help="Leads in the demo data set."),
    activities: int = typer.Option(0, "--activities", help="Activity rows (0: 5 a lead)."),
    seed: int = typer.Option(42, "--seed"),
    seconds: float = typer.Option(30.0, "--seconds", help="The measured window."),
    rate: int = typer.Option(4, "--rate", min=1, max=4, help="Leaderboard refreshes a second."),
    batch: int = typer.Option(20, "--batch", help="Events per engine write transaction."),
    interval: float = typer.Option(0.1, "--interval", help="Seconds between two engine writes."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The leaderboard's refresh latency and CPU at 4 Hz on the demo data set while the engine writes."""
    from .common import record

    echo = (lambda msg: typer.echo(msg, err=True)) if as_json else typer.echo
    record(run(leads, activities or 5 * leads, seed, seconds, rate, batch, interval, echo), as_json=as_json)
