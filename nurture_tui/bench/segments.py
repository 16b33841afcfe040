"""`nurture bench segments`: segment counts on the seeded demo data set, each against a hand-written
reference query of the same meaning, timed in the same run (median of `--runs` interleaved rounds, after
one warm-up round).

Scenarios (SQLite workspace built by `demo.generate.build_demo`, cached under benchmarks/work/ keyed by
size, seed and generator version, so reruns skip the build):
- attribute: stage = decision AND country = "united states" AND live score between 5 and 40;
- behaviour: opened an email within 14 days AND clicked at least twice (ever);
- mixed: stage in [consideration, decision] AND industry = software AND score ≥ 5 AND opened within 30d;
- hot: the behaviour rule saved as a materialised segment, counted through `in_segment: <name>`
  (reference: the name lookup joined to the membership count).
"Ours" (`<scenario>_ms`, `ratio`) is the full path a caller pays: `compiler.count()` (parse, segment
lookup, set-size estimates, compile, execute) over SQLAlchemy; `query_ms`/`query_ratio` time the compiled
statement alone. References run as plain SQL text on a raw sqlite3 connection to the same file.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import typer

NAME = "segments"
WORK = Path("benchmarks/work")
T_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOT_NAME = "bench hot openers-clickers"

ATTRIBUTE = {"all": [{"field": "stage", "op": "eq", "value": "decision"},
                     {"field": "country", "op": "eq", "value": "united states"},
                     {"field": "score", "op": "between", "value": [5, 40]}]}
BEHAVIOUR = {"all": [{"activity": "open", "within": "14d"}, {"activity": "click", "at_least": 2}]}
MIXED = {"all": [{"field": "stage", "op": "in", "value": ["consideration", "decision"]},
                 {"field": "industry", "op": "eq", "value": "software"},
                 {"field": "score", "op": "ge", "value": 5},
                 {"activity": "open", "within": "30d"}]}

REF_ATTRIBUTE = ("SELECT count(*) FROM lead WHERE stage = 'decision' AND lower(country) = 'united states' "
                 "AND score BETWEEN :lo AND :hi")
REF_BEHAVIOUR = ("SELECT count(*) FROM lead l WHERE EXISTS (SELECT 1 FROM activity a WHERE a.lead_id = l.id "
                 "AND a.kind = 'open' AND a.at >= :since14 AND a.bot = 0) "
                 "AND l.id IN (SELECT lead_id FROM activity WHERE kind = 'click' AND bot = 0 "
                 "GROUP BY lead_id HAVING count(*) >= 2)")
REF_MIXED = ("SELECT count(*) FROM lead l WHERE l.stage IN ('consideration', 'decision') "
             "AND lower(l.industry) = 'software' AND l.score >= :min5 AND EXISTS (SELECT 1 FROM activity a "
             "WHERE a.lead_id = l.id AND a.kind = 'open' AND a.at >= :since30 AND a.bot = 0)")
# Same meaning as counting `in_segment: <name>`: resolve the name, then count its membership rows.
REF_HOT = ("SELECT count(*) FROM segment_member m JOIN segment s ON s.id = m.segment_id "
           "WHERE s.name = :segment_name AND s.materialized")


def _interleaved_medians(fns: list[Any], runs: int) -> list[float]:
    """Median ms of each function over `runs` rounds, the functions taking turns within a round (after one
    warm-up round), so load changes on a shared machine hit ours and the reference alike."""
    samples: list[list[float]] = [[] for _ in fns]
    for round_no in range(runs + 1):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            if round_no:
                samples[i].append((time.perf_counter() - started) * 1000.0)
    return [round(statistics.median(s), 3) for s in samples]


def _execute_scalar(conn: Any, stmt: Any) -> Any:
    return conn.execute(stmt).scalar_one()


def _fetch_one(raw: sqlite3.Connection, sql: str, params: dict[str, Any]) -> Any:
    return raw.execute(sql, params).fetchone()


def _template_db(leads: int, activities: int, seed: int, echo: Any) -> Path:
    """The cached demo workspace for these parameters (built once)."""
    from ..clock import VirtualClock
    from ..config import load_settings
    from ..demo.generate import GENERATOR_VERSION, build_demo
    from ..workspace import Workspace

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"segments-{leads}-{activities}-s{seed}-g{GENERATOR_VERSION}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    started = time.perf_counter()
    last = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 5:
            last[0] = time.perf_counter()
            echo(f"  building demo data: {phase} {done:,}/{total:,}")

    ws = Workspace.open(load_settings(None, f"sqlite:///{tmp}"), clock=VirtualClock(T_NOW), create=True)
    with ws:
        build_demo(ws, leads=leads, seed=seed, activities=activities, progress=progress)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    tmp.rename(path)
    echo(f"built {path} in {time.perf_counter() - started:.1f}s")
    return path


def _sync_indexes(path: Path, echo: Any) -> None:
    """Bring a cached workspace's indexes in line with the models (they change more often than the
    generator), then refresh the planner statistics of the tables that changed."""
    from sqlalchemy import inspect

    from ..store.engine import make_engine
    from ..store.models import metadata

    engine = make_engine(f"sqlite:///{path}")
    try:
        inspector = inspect(engine)
        changed = set()
        with engine.begin() as conn:
            tables = set(inspector.get_table_names())
            for table in metadata.sorted_tables:
                if table.name not in tables:
                    continue  # a table newer than the cached data set (e.g. a report rollup)
                existing = {ix["name"] for ix in inspector.get_indexes(table.name)}
                wanted = {ix.name for ix in table.indexes}
                for name in sorted(n for n in existing - wanted if n and n.startswith("ix_")):
                    conn.exec_driver_sql(f"DROP INDEX {name}")
                    changed.add(table.name)
                for index in table.indexes:
                    if index.name not in existing:
                        echo(f"  creating index {index.name} on the cached workspace")
                        index.create(conn)
                        changed.add(table.name)
            for name in sorted(changed):
                conn.exec_driver_sql(f"ANALYZE {name}")
    finally:
        engine.dispose()


def _ensure_hot_segment(url: str, half_life: float) -> int:
    from ..segments import service
    from ..store.engine import make_engine, write_tx

    engine = make_engine(url)
    try:
        with write_tx(engine) as conn:
            info = service.find_segment(conn, HOT_NAME)
            if info is None or not info.materialized:
                info = service.save_segment(conn, HOT_NAME, BEHAVIOUR, user="bench", now=T_NOW, materialize=True,
                                            half_life_days=half_life,
                                            description="nurture bench segments: materialised behaviour rule")
            return info.id
    finally:
        engine.dispose()


def run(leads: int, activities: int, seed: int, runs: int, echo: Any) -> dict[str, Any]:
    from ..config import load_settings
    from ..scoring.decay import EPOCH_KEY, ScoreScale
    from ..segments import compiler
    from ..store import meta
    from ..store.engine import make_engine
    from ..store.types import to_db

    path = _template_db(leads, activities, seed, echo)
    _sync_indexes(path, echo)
    url = f"sqlite:///{path}"
    half_life = load_settings(None, url).scoring.half_life_days
    _ensure_hot_segment(url, half_life)
    engine = make_engine(url)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA cache_size=-65536")
    raw.execute("PRAGMA mmap_size=268435456")
    try:
        with engine.connect() as conn:
            epoch = meta.get(conn, EPOCH_KEY)
            factor = 1.0 if epoch is None else \
                ScoreScale(datetime.fromisoformat(epoch), half_life).factor(T_NOW)
            params = {"lo": 5 / factor, "hi": 40 / factor, "min5": 5 / factor, "segment_name": HOT_NAME,
                      "since14": to_db(T_NOW - timedelta(days=14)), "since30": to_db(T_NOW - timedelta(days=30))}
            scenarios: dict[str, tuple[dict[str, Any], str]] = {
                "attribute": (ATTRIBUTE, REF_ATTRIBUTE),
                "behaviour": (BEHAVIOUR, REF_BEHAVIOUR),
                "mixed": (MIXED, REF_MIXED),
                "hot": ({"in_segment": HOT_NAME}, REF_HOT),
            }
            result: dict[str, Any] = {"scenario": "segments"}
            reference: dict[str, float] = {}
            ratio: dict[str, float] = {}
            query: dict[str, float] = {}
            query_ratio: dict[str, float] = {}
            counts: dict[str, int] = {}
            for name, (rule, sql) in scenarios.items():
                ours = compiler.count(conn, rule, T_NOW, half_life_days=half_life)
                ref = raw.execute(sql, params).fetchone()[0]
                if ours != ref:
                    raise RuntimeError(f"{name}: compiled count {ours} != reference count {ref}")
                counts[name] = ours
                # The compiled SQL alone (built once, executed through SQLAlchemy) separates the query the
                # compiler emits from the fixed per-call cost of parsing and compiling the rule.
                stmt = compiler.count_statement(conn, rule, T_NOW, half_life_days=half_life)
                ours_ms, query_ms, ref_ms = _interleaved_medians(
                    [partial(compiler.count, conn, rule, T_NOW, half_life_days=half_life),
                     partial(_execute_scalar, conn, stmt), partial(_fetch_one, raw, sql, params)], runs)
                result[f"{name}_ms"], query[name], reference[name] = ours_ms, query_ms, ref_ms
                ratio[name] = round(ours_ms / ref_ms, 2) if ref_ms else 0.0
                query_ratio[name] = round(query_ms / ref_ms, 2) if ref_ms else 0.0
                echo(f"  {name}: {counts[name]:,} leads, ours {result[f'{name}_ms']} ms (query {query[name]} ms), "
                     f"reference {reference[name]} ms")
            result["reference_ms"] = reference
            result["ratio"] = ratio
            result["query_ms"] = query
            result["query_ratio"] = query_ratio
            result["counts"] = counts
            result["leads"], result["activities"], result["seed"] = leads, activities, seed
    finally:
        raw.close()
        engine.dispose()
    return result


def command(
    leads: int = typer.Option(1_000_000, "--leads", help="Leads in the demo data set."),
    activities: int = typer.Option(5_000_000, "--activities", help="Activity rows in the demo data set."),
    seed: int = typer.Option(42, "--seed"),
    runs: int = typer.Option(5, "--runs", help="Timed runs per query (median reported)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Segment counts (attribute, behaviour, mixed, hot) vs hand-written SQL on the demo data set."""
    from .common import record

    echo = (lambda msg: typer.echo(msg, err=True)) if as_json else typer.echo
    record(run(leads, activities, seed, runs, echo), as_json=as_json)
