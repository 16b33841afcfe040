"""`nurture bench scoring`: incremental scoring of an activity burst, and a full rescore after a rule change.

1. Workspace: the demo generator's (`demo.generate.build_demo`) when it exists, else a minimal one built
   here with raw sqlite3 (N leads, ~3 activities each over 60 days); cached under benchmarks/work/ and
   copied for every run, so runs start from the same state.
2. Burst: 100,000 new activities on random leads, inserted and scored in batches of 1,000 (one
   transaction each, like the engine's `record_events`); `burst_per_s` counts activities through
   `apply_activities` (rules, caps against history, decay scale, MQL check, account refresh).
3. Rule change (`email click` 3 → 4 points) → `rescore_all` over every lead: `rescore_s`.
References in the same run, plain sqlite3 with the same meaning minus caps/resets/MQL: per batch, points
× decay weight summed per lead in Python and an executemany `UPDATE lead SET score = score + ?` (timed
like ours: the scoring, not the activity insert), and for the rescore one aggregate
`UPDATE … FROM (SELECT … GROUP BY lead_id)` over the whole activity table.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ..activity import ActivityEvent

NAME = "scoring"
WORK = Path("benchmarks/work")
KIND_MIX = [("sent", 40), ("open", 28), ("click", 15), ("page_view", 10), ("form", 3), ("reply", 2),
            ("unsubscribe", 1), ("bounce", 1)]
URLS = ["https://example.com/blog/post", "https://example.com/pricing", "https://example.com/docs",
        "https://example.com/case-studies/acme"]
COUNTRIES = ["United States", "Germany", "United Kingdom", "France", "Canada", "Japan", "Brazil", "India"]
INDUSTRIES = ["Software", "Financial Services", "Healthcare", "Retail", "Manufacturing", "Education"]
T_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _mix(rnd: random.Random, n: int) -> list[str]:
    kinds, weights = zip(*KIND_MIX, strict=True)
    return rnd.choices(kinds, weights=weights, k=n)


def _build_minimal(path: Path, leads: int, seed: int) -> None:
    from ..store.engine import make_engine
    from ..store.models import metadata
    from ..store.types import to_db

    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    rnd = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    created = to_db(T_NOW - timedelta(days=90))
    con.executemany(
        "INSERT INTO lead (id, email, first_name, last_name, country, industry, stage, score, grade, grade_rank, "
        "opted_out, bounced, custom, created_at) VALUES (?, ?, 'Lead', ?, ?, ?, 'awareness', 0, 'C', 5, 0, 0, "
        "'{}', ?)",
        ((i, f"lead{i}@bench.example", f"N{i}", rnd.choice(COUNTRIES), rnd.choice(INDUSTRIES), created)
         for i in range(1, leads + 1)))
    n_acts = leads * 3
    kinds = _mix(rnd, n_acts)

    def rows() -> Any:
        for i in range(n_acts):
            kind = kinds[i]
            at = T_NOW - timedelta(seconds=rnd.randint(0, 60 * 86400))
            url = rnd.choice(URLS) if kind in ("click", "page_view") else None
            yield (rnd.randint(1, leads), kind, to_db(at), url)

    con.executemany("INSERT INTO activity (lead_id, kind, at, url, bot, meta) VALUES (?, ?, ?, ?, 0, '{}')", rows())
    con.commit()
    con.close()


def _demo_builder() -> Any:
    try:
        from ..demo import generate
    except ImportError:
        return None
    return getattr(generate, "build_demo", None)


def _template_db(leads: int, seed: int, echo: Any) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    build_demo = _demo_builder()
    path = WORK / f"scoring-{leads}-{seed}-{'demo' if build_demo else 'minimal'}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    started = time.perf_counter()
    from ..clock import VirtualClock
    from ..config import load_settings

    if build_demo is not None:
        from ..workspace import Workspace

        ws = Workspace.open(load_settings(None, f"sqlite:///{tmp}"), clock=VirtualClock(T_NOW), create=True)
        with ws:
            build_demo(ws, leads=leads, seed=seed)  # scores and grades through the scoring code
    else:
        _build_minimal(tmp, leads, seed)
        # Initial scores from the default rules, so the burst starts from a consistent workspace.
        from ..scoring.rescore import rescore_all
        from ..store.engine import make_engine

        engine = make_engine(f"sqlite:///{tmp}")
        rescore_all(engine, load_settings(None, f"sqlite:///{tmp}"), VirtualClock(T_NOW))
        engine.dispose()
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    tmp.rename(path)
    echo(f"built {path} in {time.perf_counter() - started:.1f}s")
    return path


def _copy(src: Path, name: str) -> Path:
    dst = WORK / name
    for p in (dst, Path(f"{dst}-wal"), Path(f"{dst}-shm")):
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _burst_events(leads: int, n: int, seed: int, now: datetime) -> list[ActivityEvent]:
    from ..activity import ActivityEvent

    rnd = random.Random(seed + 1)
    kinds = [k for k in _mix(rnd, n * 2) if k != "sent"][:n]
    return [ActivityEvent(rnd.randint(1, leads), k, now - timedelta(seconds=rnd.randint(0, 3600)),
                          url=rnd.choice(URLS) if k in ("click", "page_view") else None)
            for k in kinds]


def run(leads: int, burst: int, batch: int, seed: int, echo: Any) -> dict[str, Any]:
    from sqlalchemy import insert, update

    from ..clock import VirtualClock
    from ..config import load_settings
    from ..scoring import rules as R
    from ..scoring.rescore import rescore_all
    from ..scoring.service import apply_activities
    from ..store.engine import make_engine, write_tx
    from ..store.tables import activity, score_rule
    from ..store.types import to_db

    template = _template_db(leads, seed, echo)
    db = _copy(template, "scoring-run.db")
    url = f"sqlite:///{db}"
    settings = load_settings(None, url)
    settings.scoring.mql_score = 1e12  # measure scoring, not thousands of hand-offs
    clock = VirtualClock(T_NOW + timedelta(hours=1))
    now = clock.now()
    engine = make_engine(url)
    events = _burst_events(leads, burst, seed, now)

    scoring_s = scoring_cpu = 0.0
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        part = events[i : i + batch]
        with write_tx(engine) as conn:
            ids = conn.execute(insert(activity).returning(activity.c.id, sort_by_parameter_order=True),
                               [e.row() for e in part]).scalars().all()
            rows = [e.stored(aid, e.at or now) for aid, e in zip(ids, part, strict=True)]
            t0, c0 = time.perf_counter(), time.process_time()
            apply_activities(conn, rows, now, settings)
            scoring_s += time.perf_counter() - t0
            scoring_cpu += time.process_time() - c0
    total_s = time.perf_counter() - started

    with write_tx(engine) as conn:
        R.load_rules(conn)
        conn.execute(update(score_rule).where(score_rule.c.name == "email click").values(points=4.0))
    seen: list[tuple[int, int]] = []
    c0 = time.process_time()
    result = rescore_all(engine, settings, clock, lambda d, t: seen.append((d, t)))
    rescore_cpu = time.process_time() - c0
    engine.dispose()

    # Reference: plain sqlite3, same meaning without caps/resets/MQL/accounts.
    ref_db = _copy(template, "scoring-ref.db")
    con = sqlite3.connect(ref_db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    points = {"open": 1, "click": 3, "page_view": 1, "form": 15, "reply": 10, "unsubscribe": -20, "bounce": -10}
    raw_epoch = con.execute("SELECT value FROM meta WHERE key = 'score_epoch'").fetchone()[0]
    epoch = datetime.fromisoformat(json.loads(raw_epoch))
    epoch_jd = (epoch - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400.0 + 2440587.5
    half_life = settings.scoring.half_life_days
    ref_burst_s = ref_burst_cpu = 0.0
    for i in range(0, len(events), batch):
        part = events[i : i + batch]
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO activity (lead_id, kind, at, url, bot, meta) VALUES (?, ?, ?, ?, 0, '{}')",
                        [(e.lead_id, e.kind, to_db(e.at or now), e.url) for e in part])
        t0, c0 = time.perf_counter(), time.process_time()
        deltas: dict[int, float] = {}
        for e in part:
            days = ((e.at or now) - epoch).total_seconds() / 86400.0
            weight = math.pow(2.0, days / half_life)
            deltas[e.lead_id] = deltas.get(e.lead_id, 0.0) + points.get(e.kind, 0) * weight
        con.executemany("UPDATE lead SET score = score + ? WHERE id = ?", [(d, k) for k, d in deltas.items()])
        ref_burst_s += time.perf_counter() - t0
        ref_burst_cpu += time.process_time() - c0
        con.execute("COMMIT")
    case_sql = " ".join(f"WHEN '{k}' THEN {v}" for k, v in points.items())
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute("BEGIN IMMEDIATE")
    con.execute(f"CREATE TEMP TABLE t AS SELECT lead_id, SUM(CASE kind {case_sql} ELSE 0 END "
                f"* exp((julianday(at) - {epoch_jd}) * {math.log(2) / half_life})) AS total "
                "FROM activity WHERE bot = 0 GROUP BY lead_id")
    con.execute("UPDATE lead SET score = t.total FROM t WHERE t.lead_id = lead.id")
    con.execute("COMMIT")
    ref_rescore_s = time.perf_counter() - t0
    ref_rescore_cpu = time.process_time() - c0
    con.close()

    burst_per_s = burst / scoring_s
    ref_burst_per_s = burst / ref_burst_s
    return {
        "scenario": "scoring",
        "leads": leads,
        "burst": burst,
        "batch": batch,
        "burst_per_s": round(burst_per_s),
        "burst_with_insert_per_s": round(burst / total_s),
        "rescore_s": round(result.seconds, 2),
        # CPU seconds of this process: on a machine shared with other work, wall time mostly measures the
        # queue for a core; CPU time (both phases' threads for the rescore) is what the code costs.
        "burst_cpu_per_s": round(burst / scoring_cpu),
        "rescore_cpu_s": round(rescore_cpu, 2),
        "reference_burst_cpu_per_s": round(burst / ref_burst_cpu),
        "reference_rescore_cpu_s": round(ref_rescore_cpu, 2),
        "load_average": round(os.getloadavg()[0], 2),
        "rescore_changed": result.changed,
        "rescore_progress_reports": len(seen),
        "reference_burst_per_s": round(ref_burst_per_s),
        "reference_rescore_s": round(ref_rescore_s, 2),
        "burst_ratio_vs_reference": round(burst_per_s / ref_burst_per_s, 2),
        "rescore_ratio_vs_reference": round(result.seconds / ref_rescore_s, 2),
        "targets": {"burst_per_s": 20000, "rescore_s": 15},
    }


def command(
    leads: int = typer.Option(1_000_000, "--leads", help="Leads in the benchmark workspace."),
    burst: int = typer.Option(100_000, "--burst", help="New activities to score incrementally."),
    batch: int = typer.Option(1_000, "--batch", help="Activities per scoring transaction."),
    seed: int = typer.Option(42, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Score a burst of new activities, then rescore every lead after a rule change."""
    from .common import record

    result = run(leads, burst, batch, seed, echo=lambda m: typer.echo(m, err=True))
    record(result, as_json=as_json, echo=typer.echo)
