"""`nurture bench engine`: due steps per second through claim → execute → advance.

Seeds `--steps` enrollments due now on a send→wait sequence (template with merge fields, a condition and
a loop), then in the same run measures:
(a) our engine (`engine.advance.run_batch`, batches of `--batch`): sustained steps/s and p99 batch latency;
    every step renders the template through the mail composer (tracked links, unsubscribe headers) and
    writes outbox + activity + score + advance + node counters in one transaction;
(b) a reference pipeline in plain `sqlite3` + Jinja2 (template compiled once) doing the same writes per
    step (claim, render subject+html, outbox row, activity row, score update, enrollment advance), no
    framework;
(c) the naive design: one APScheduler 3 job per lead (date trigger, SQLAlchemy job store on SQLite,
    default job settings), each job doing the reference's step for its lead, on `--naive-leads` leads all
    due at the same moment: runs executed per second of the time until every run was resolved (runs
    dropped as misfired count in the time, not in the steps) and how many were dropped;
(d) our engine on PostgreSQL (`--pg-steps`, when `--pg-url`/NURTURE_TEST_PG_URL is reachable).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..config import Settings
    from ..workspace import Workspace

NAME = "engine"
T_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# -- (a) our engine ----------------------------------------------------------------------------------

def _workspace(url: str, data_dir: Path) -> Workspace:
    from ..clock import VirtualClock
    from ..config import load_settings
    from ..store.engine import make_engine
    from ..store.models import metadata
    from ..workspace import Workspace

    engine = make_engine(url)
    metadata.create_all(engine)
    return Workspace(load_settings(None, url, data_dir=data_dir), engine, VirtualClock(T_NOW))


def _drain(ws: Workspace, batch: int) -> tuple[int, list[float], float, float]:
    """Run batches until none is due, under what the scheduler runs under (background checkpoints, frozen
    GC): (steps, each batch's seconds, start, end on the monotonic clock)."""
    from ..engine.advance import run_batch
    from ..engine.tuning import HotPathTuning

    lat: list[float] = []
    done = 0
    with HotPathTuning(ws.engine):
        start = time.perf_counter()
        while True:
            res = run_batch(ws.engine, ws.clock.now(), ws.settings, batch)
            if not res.claimed:
                break
            done += res.steps
            lat.append(res.seconds)
        end = time.perf_counter()
    return done, lat, start, end


def run_ours(ws: Workspace, steps: int, batch: int) -> dict[str, float]:
    from ..engine.seeding import seed_due

    seed_due(ws.engine, steps, T_NOW)
    done, lat, start, end = _drain(ws, batch)
    elapsed = end - start
    from .common import percentile

    return {"steps": done, "steps_per_s": done / elapsed if elapsed else 0.0,
            "p99_batch_ms": percentile(lat, 99) * 1000, **_counter_reads(ws)}


def _counter_reads(ws: Workspace) -> dict[str, float]:
    """Per-node counts for the TUI: our counters table vs an indexed GROUP BY over the enrollments."""
    from sqlalchemy import func, select

    from ..engine.node_stats import node_counts
    from ..store.tables import enrollment
    from .common import median_ms

    e = enrollment.c
    with ws.engine.connect() as conn:
        counters = median_ms(lambda: node_counts(conn, [1]))
        group_by = median_ms(lambda: conn.execute(
            select(e.node_id, e.status, func.count()).where(e.version_id == 1).group_by(e.node_id, e.status)
        ).all())
    return {"counters_read_ms": counters, "group_by_read_ms": group_by}


# -- (b) reference: plain sqlite3 ---------------------------------------------------------------------

class Reference:
    """The same step in plain sqlite3 + Jinja2, on the same schema and data."""

    def __init__(self, path: Path) -> None:
        from jinja2.sandbox import SandboxedEnvironment

        from ..engine.seeding import WELCOME_HTML, WELCOME_SUBJECT

        env = SandboxedEnvironment(autoescape=True)
        self.subject = env.from_string(WELCOME_SUBJECT)
        self.html = env.from_string(WELCOME_HTML)
        self.path = path
        self.local = threading.local()
        self.composer: Any = None

    def use_mail_composer(self, settings: Settings) -> None:
        """Render with the mail composer (reads through its own connection) instead of bare Jinja2."""
        from ..mail.compose import SendRequest, compose_outbox_rows
        from ..store.engine import make_engine

        reader = make_engine(f"sqlite:///{self.path}")

        def compose(rows: list[tuple[int, int]], now: datetime) -> list[dict[str, Any]]:
            sends = [SendRequest(lead_id=lid, template_name="welcome", category=None, enrollment_id=eid,
                                 sequence_id=1, node_id="s1", idempotency_key=f"e{eid}:s1:0") for eid, lid in rows]
            with reader.connect() as conn:
                return compose_outbox_rows(conn, sends, settings, now)

        self.composer = compose

    def con(self) -> sqlite3.Connection:
        con = getattr(self.local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=30000")
            self.local.con = con
        return con

    def step(self, rows: list[tuple[int, int]], now: datetime) -> int:
        """rows = (enrollment id, lead id) already claimed; write every effect in one transaction."""
        from ..store.types import to_db

        con = self.con()
        ts = to_db(now)
        due = to_db(now + timedelta(days=3))
        acts = [(lid, "sent", ts, 1, 1, "s1", 0, "{}") for _eid, lid in rows]
        if self.composer is None:
            marks = ",".join("?" * len(rows))
            leads = {r[0]: r for r in con.execute(
                f"SELECT id, email, first_name, company, title FROM lead WHERE id IN ({marks})",
                [r[1] for r in rows])}
            sender = {"name": "Nurture"}
            outbox = []
            for eid, lid in rows:
                _id, email, first, company, title = leads[lid]
                ctx = {"lead": {"first_name": first, "company": company, "title": title}, "sender": sender}
                subject = self.subject.render(ctx)
                html = self.html.render(ctx)
                outbox.append((f"e{eid}:s1:0", lid, eid, 1, "s1", email, subject, html, "", "{}", "queued", 0, ts,
                               ts))
            con.executemany(
                "INSERT INTO outbox (idempotency_key, lead_id, enrollment_id, sequence_id, node_id, to_email, "
                "subject, html, text, headers, status, attempts, next_try_at, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", outbox)
        else:  # the same message as ours (mail composer: tracked links, text part, compliance headers)
            full = self.composer(rows, now)
            keys = list(full[0])
            con.executemany(f"INSERT INTO outbox ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                            [tuple(_plain(r[k]) for k in keys) for r in full])
        con.executemany("INSERT INTO activity (lead_id, kind, at, sequence_id, version_id, node_id, bot, meta) "
                        "VALUES (?,?,?,?,?,?,?,?)", acts)
        con.executemany("UPDATE lead SET score = score + 1.0 WHERE id = ?", [(r[1],) for r in rows])
        con.executemany("UPDATE enrollment SET node_id = 'w1', status = 'waiting', due_at = ?, steps = steps + 1, "
                        "node_entered_at = ? WHERE id = ?", [(due, ts, r[0]) for r in rows])
        return len(rows)

    def run(self, batch: int, now: datetime, max_steps: int | None = None) -> dict[str, float]:
        from ..store.types import to_db
        from .common import percentile

        con = self.con()
        lat: list[float] = []
        done = 0
        start = time.perf_counter()
        while max_steps is None or done < max_steps:
            t0 = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            rows = con.execute(
                "UPDATE enrollment SET due_at = NULL WHERE id IN (SELECT id FROM enrollment WHERE due_at <= ? "
                "ORDER BY due_at LIMIT ?) RETURNING id, lead_id", (to_db(now), batch)).fetchall()
            if not rows:
                con.execute("COMMIT")
                break
            done += self.step(rows, now)
            con.execute("COMMIT")
            lat.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        return {"steps_per_s": done / elapsed if elapsed else 0.0, "p99_batch_ms": percentile(lat, 99) * 1000}


def _plain(value: Any) -> Any:
    import json

    from ..store.types import to_db

    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


# -- (c) naive: one APScheduler job per lead -----------------------------------------------------------

_NAIVE: dict[str, Any] = {}


def naive_job(enrollment_id: int, lead_id: int) -> None:
    """One lead's step, in its own transaction (module-level so the job store can pickle a reference)."""
    ref: Reference = _NAIVE["ref"]
    con = ref.con()
    con.execute("BEGIN IMMEDIATE")
    try:
        ref.step([(enrollment_id, lead_id)], T_NOW)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def run_naive(path: Path, jobs_db: Path, leads: int) -> dict[str, float]:
    import logging

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)  # one "missed" line per dropped run
    _NAIVE["ref"] = Reference(path)
    con = sqlite3.connect(path)
    pairs = con.execute("SELECT id, lead_id FROM enrollment WHERE due_at IS NOT NULL ORDER BY id LIMIT ?",
                        (leads,)).fetchall()
    con.close()
    counts = {"executed": 0, "missed": 0, "error": 0}
    last = [0.0]  # when the last of the runs was resolved (executed, missed or failed)
    lock = threading.Lock()

    def listener(event: Any) -> None:
        with lock:
            last[0] = time.perf_counter()
            if event.code == EVENT_JOB_EXECUTED:
                counts["executed"] += 1
            elif event.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            else:
                counts["error"] += 1

    sched = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{jobs_db}")},
                                timezone=UTC)
    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    sched.start(paused=True)
    # Measure the add rate, then give every job the same run date just after the last add: "all due now".
    probe = time.perf_counter()
    sample = pairs[:200]
    far = datetime.now(UTC) + timedelta(days=1)  # clock-ok: APScheduler runs on real time
    for eid, lid in sample:
        sched.add_job(naive_job, "date", run_date=far, args=(eid, lid), id=f"p{eid}")
    per_add = (time.perf_counter() - probe) / max(len(sample), 1)
    for eid, _ in sample:
        sched.remove_job(f"p{eid}")
    fire = datetime.now(UTC) + timedelta(seconds=per_add * len(pairs) * 1.5 + 5)  # clock-ok
    for eid, lid in pairs:
        sched.add_job(naive_job, "date", run_date=fire, args=(eid, lid), id=f"e{eid}")
    slack = (fire - datetime.now(UTC)).total_seconds()  # clock-ok: > 0 means every add beat the run date
    sched.resume()
    fire_perf = time.perf_counter() + max((fire - datetime.now(UTC)).total_seconds(), 0)  # clock-ok
    deadline = fire_perf + 300
    while time.perf_counter() < deadline:
        with lock:
            if counts["executed"] + counts["missed"] + counts["error"] >= len(pairs):
                break
        time.sleep(0.1)
    sched.shutdown(wait=True)
    # Executed steps per second of the time it took the design to get through all the due runs: runs it
    # dropped as missed took that time too but did no work, so they don't count.
    elapsed = max(last[0] - fire_perf, 1e-9) if counts["executed"] else 0.0
    return {"per_s": counts["executed"] / elapsed if elapsed else 0.0, "executed": counts["executed"],
            "dropped": counts["missed"], "errors": counts["error"], "slack_s": round(slack, 1)}


# -- (d) PostgreSQL -----------------------------------------------------------------------------------

class PgSchema:
    """A fresh schema on the PostgreSQL server (search_path set in the URL), dropped on exit."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        sep = "&" if "?" in pg_url else "?"
        self.url = f"{pg_url}{sep}options=-csearch_path%3D{self.name}"
        self.admin: Any = None

    def __enter__(self) -> PgSchema:
        from sqlalchemy import text

        from ..store.engine import make_engine

        self.admin = make_engine(self.pg_url)
        with self.admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.name}"))
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import text

        with self.admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.name} CASCADE"))
        self.admin.dispose()


def _pg_reachable(pg_url: str) -> bool:
    from sqlalchemy import text

    from ..store.engine import make_engine

    try:
        eng = make_engine(pg_url)
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            eng.dispose()
    except Exception:
        return False
    return True


class PgReference:
    """The reference step in plain psycopg 3 + Jinja2 (bare render, template compiled once), on the same
    schema, triggers and data as ours: per batch one claim (`FOR UPDATE SKIP LOCKED`), one lead read, ids
    for the outbox rows from their sequence, outbox and activity rows by `COPY`, one score update and one
    advance update for the batch, one commit. The template, sequence and version ids are the seed's."""

    def __init__(self, url: str) -> None:
        from jinja2.sandbox import SandboxedEnvironment

        from ..engine.seeding import WELCOME_HTML, WELCOME_SUBJECT

        env = SandboxedEnvironment(autoescape=True)
        self.subject = env.from_string(WELCOME_SUBJECT)
        self.html = env.from_string(WELCOME_HTML)
        self.url = url

    def run(self, batch: int, now: datetime) -> dict[str, float]:
        import psycopg

        from .common import percentile

        dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
        due = now + timedelta(days=3)
        lat: list[float] = []
        done = 0
        with psycopg.connect(dsn) as con:
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                with con.transaction(), con.cursor() as cur:
                    cur.execute("SELECT id, lead_id FROM enrollment WHERE due_at <= %s ORDER BY due_at, id LIMIT %s "
                                "FOR UPDATE SKIP LOCKED", (now, batch))
                    rows = cur.fetchall()
                    if not rows:
                        break
                    done += self.step(cur, rows, now, due)
                lat.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
        return {"steps_per_s": done / elapsed if elapsed else 0.0, "p99_batch_ms": percentile(lat, 99) * 1000}

    def step(self, cur: Any, rows: list[tuple[int, int]], now: datetime, due: datetime) -> int:
        lead_ids = [r[1] for r in rows]
        cur.execute("SELECT id, email, first_name, company, title FROM lead WHERE id = ANY(%s)", (lead_ids,))
        leads = {r[0]: r for r in cur.fetchall()}
        cur.execute("SELECT id FROM template WHERE name = 'welcome'")
        template_id = cur.fetchone()[0]
        cur.execute("SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, %s)",
                    (len(rows),))
        ids = sorted(r[0] for r in cur.fetchall())
        sender = {"name": "Nurture"}
        with cur.copy("COPY outbox (id, idempotency_key, lead_id, enrollment_id, sequence_id, node_id, template_id, "
                      "category, to_email, subject, html, text, headers, status, attempts, next_try_at, created_at) "
                      "FROM STDIN") as copy:
            for oid, (eid, lid) in zip(ids, rows, strict=True):
                _id, email, first, company, title = leads[lid]
                ctx = {"lead": {"first_name": first, "company": company, "title": title}, "sender": sender}
                copy.write_row((oid, f"e{eid}:s1:0", lid, eid, 1, "s1", template_id, "marketing", email,
                                self.subject.render(ctx), self.html.render(ctx), "", "{}", "queued", 0, now, now))
        with cur.copy("COPY activity (lead_id, kind, at, sequence_id, version_id, node_id, template_id, outbox_id, "
                      "bot, meta) FROM STDIN") as copy:
            for oid, (_eid, lid) in zip(ids, rows, strict=True):
                copy.write_row((lid, "sent", now, 1, 1, "s1", template_id, oid, False, "{}"))
        cur.execute("UPDATE lead SET score = score + 1.0 WHERE id = ANY(%s)", (lead_ids,))
        cur.execute("UPDATE enrollment SET node_id = 'w1', status = 'waiting', due_at = %s, steps = steps + 1, "
                    "node_entered_at = %s WHERE id = ANY(%s)", (due, now, [r[0] for r in rows]))
        return len(rows)


def _pg_worker(url: str, data_dir: str, batch: int, go: Any, out: Any) -> None:
    """One engine worker process for the two-worker run: waits for `go`, drains the due steps, reports
    (steps, first batch start, last batch end) on the system-wide monotonic clock."""
    ws = _workspace(url, Path(data_dir))
    try:
        go.wait()
        done, _lat, start, end = _drain(ws, batch)
        out.put((done, start, end))
    finally:
        ws.close()


def run_pg_workers(url: str, steps: int, batch: int, data_dir: Path, workers: int) -> float:
    """Steps/s of `workers` engine processes draining `steps` due enrollments together (wall time from
    the first worker's start to the last one's end)."""
    import multiprocessing

    from ..engine.seeding import seed_due

    ws = _workspace(url, data_dir)
    seed_due(ws.engine, steps, T_NOW)
    ws.close()
    mp = multiprocessing.get_context("spawn")
    go = mp.Event()
    out = mp.Queue()
    procs = [mp.Process(target=_pg_worker, args=(url, str(data_dir), batch, go, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # let every worker import and connect before the start signal
    go.set()
    import queue

    results: list[tuple[int, float, float]] = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1.0))
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and out.empty():
                raise RuntimeError("bench engine: a PostgreSQL worker process died") from None
    for p in procs:
        p.join()
    done = sum(r[0] for r in results)
    elapsed = max(r[2] for r in results) - min(r[1] for r in results)
    return done / elapsed if elapsed > 0 else 0.0


def run_pg(pg_url: str, steps: int, batch: int, data_dir: Path) -> dict[str, float] | None:
    """On fresh PostgreSQL schemas (dropped afterwards), each seeded with `steps` due enrollments: our
    engine in this process, the plain-psycopg reference, and our engine in two worker processes.
    None when the server is unreachable."""
    if not _pg_reachable(pg_url):
        return None
    from ..engine.seeding import seed_due
    from ..store.planner_stats import StatisticsKeeper

    with PgSchema(pg_url) as schema:
        ws = _workspace(schema.url, data_dir)
        try:
            ours = run_ours(ws, steps, batch)
        finally:
            ws.close()
    with PgSchema(pg_url) as schema:
        ws = _workspace(schema.url, data_dir)
        try:
            seed_due(ws.engine, steps, T_NOW)
            # the reference runs under the same planner statistics as ours (where autovacuum is off, the
            # keeper our engine runs with analyses its tables; see store/planner_stats.py)
            with StatisticsKeeper(ws.engine):
                ref = PgReference(schema.url).run(batch, T_NOW)
        finally:
            ws.close()
    with PgSchema(pg_url) as schema:
        two = run_pg_workers(schema.url, steps, batch, data_dir, 2)
    return {"steps_per_s": ours["steps_per_s"], "p99_batch_ms": ours["p99_batch_ms"],
            "reference_steps_per_s": ref["steps_per_s"], "two_workers_steps_per_s": two}


def command(
    steps: Annotated[int, typer.Option("--steps", help="Enrollments due now.")] = 200_000,
    batch: Annotated[int, typer.Option("--batch", help="Enrollments per claim batch.")] = 500,
    naive_leads: Annotated[int, typer.Option("--naive-leads", help="Leads for the one-job-per-lead run.")] = 10_000,
    pg_steps: Annotated[int, typer.Option("--pg-steps", help="Steps for the PostgreSQL run (0 = skip).")] = 20_000,
    pg_url: Annotated[str | None, typer.Option("--pg-url", help="PostgreSQL URL for (d).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Engine throughput vs a plain-sqlite3 reference and the one-APScheduler-job-per-lead design."""
    from .common import record

    work = Path(tempfile.mkdtemp(prefix="nurture-bench-engine-"))
    try:
        ours_db = work / "ours.db"
        ws = _workspace(f"sqlite:///{ours_db}", work)
        ours = run_ours(ws, steps, batch)
        ws.close()

        ref_db = work / "ref.db"
        ref_ws = _workspace(f"sqlite:///{ref_db}", work)
        from ..engine.seeding import seed_due

        seed_due(ref_ws.engine, steps, T_NOW)
        ref_settings = ref_ws.settings
        ref_ws.close()
        naive_db = work / "naive.db"
        shutil.copy(ref_db, naive_db)  # same seeded state for the naive run
        half = steps // 2
        ref = Reference(ref_db).run(batch, T_NOW, max_steps=half)  # first half: bare Jinja2 render
        same = Reference(ref_db)
        same.use_mail_composer(ref_settings)
        ref_same = same.run(batch, T_NOW)  # second half: the same message as ours

        naive = run_naive(naive_db, work / "jobs.db", naive_leads)
        pg = None
        url = pg_url or os.environ.get("NURTURE_TEST_PG_URL")
        if pg_steps and url:
            pg = run_pg(url, pg_steps, batch, work)
        pg_ours = pg["steps_per_s"] if pg else 0.0
        result = {
            "scenario": "engine",
            "steps": steps,
            "batch": batch,
            "steps_per_s": round(ours["steps_per_s"]),
            "p99_batch_ms": round(ours["p99_batch_ms"], 1),
            "reference_steps_per_s": round(ref["steps_per_s"]),
            "ratio": round(ours["steps_per_s"] / ref["steps_per_s"], 3) if ref["steps_per_s"] else None,
            "reference_same_message_steps_per_s": round(ref_same["steps_per_s"]),
            "ratio_same_message": round(ours["steps_per_s"] / ref_same["steps_per_s"], 3)
            if ref_same["steps_per_s"] else None,
            "naive_apscheduler_per_s": round(naive["per_s"], 1),
            "naive_dropped": naive["dropped"],
            "naive_executed": naive["executed"],
            "naive_add_slack_s": naive["slack_s"],
            "vs_naive": round(ours["steps_per_s"] / naive["per_s"], 1) if naive["per_s"] else None,
            "postgres_steps": pg_steps if pg else None,
            "postgres_steps_per_s": round(pg_ours) if pg else None,
            "postgres_p99_batch_ms": round(pg["p99_batch_ms"], 1) if pg else None,
            "postgres_reference_steps_per_s": round(pg["reference_steps_per_s"]) if pg else None,
            "pg_ratio": round(pg_ours / pg["reference_steps_per_s"], 3) if pg and pg["reference_steps_per_s"]
            else None,
            "postgres_two_workers_steps_per_s": round(pg["two_workers_steps_per_s"]) if pg else None,
            "pg_two_workers_speedup": round(pg["two_workers_steps_per_s"] / pg_ours, 2) if pg and pg_ours else None,
            "node_counters_read_ms": ours["counters_read_ms"],
            "node_group_by_read_ms": ours["group_by_read_ms"],
        }
        record(result, as_json=as_json, echo=typer.echo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
