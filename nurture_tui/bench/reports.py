"""`nurture bench reports --leads 1000000 --activities 5000000 --json`: every report of `nurture report` on
the demo data set, each against a plain SQL query of the same core aggregate on the same data, timed in the
same run (median of `--runs` interleaved rounds after a warm-up round).

The data set is `bench segments`' cached demo workspace (benchmarks/work/, built once by the demo
generator), copied once to `reports-…db` and given what the generator does not make (then the report
rollups are created and rebuilt from the log, as `nurture init` does on an existing workspace): three published
sequences (one with a split), six templates, an outbox row per `sent` activity (1 in 97 hard-bounced, 1 in
211 soft-bounced) with the opens, clicks and unsubscribes after it pointing at it, an enrollment per mailed
lead, per-node counters, MQL decisions and stage changes. Every report runs over the default period (the
90 days before the data set's "now", i.e. all of its history) — the worst case.

Prints `{"scenario": "reports", "max_ms", "per_report_ms", "reference_ms", "ratio", …}`; target: every
report ≤ 1,000 ms at 1M leads / 5M activities.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import typer

from .segments import T_NOW, WORK, _interleaved_medians, _sync_indexes, _template_db

NAME = "reports"
TARGET_MS = 1000.0
ENRICH_VERSION = 4

WELCOME = {"name": "bench-welcome", "steps": [
    {"id": "s1", "send": {"template": "bench-1"}},
    {"id": "w", "wait_for": {"events": [{"kind": "click"}], "window": "7d", "mode": "up_to"},
     "yes": [{"id": "s2", "send": {"template": "bench-2"}}], "no": []}]}
SPLIT = {"name": "bench-split", "steps": [
    {"id": "ab", "split": {"arms": [
        {"name": "A", "weight": 50, "steps": [{"id": "a1", "send": {"template": "bench-3"}}]},
        {"name": "B", "weight": 50, "steps": [{"id": "b1", "send": {"template": "bench-4"}}]}]}},
    {"id": "s3", "send": {"template": "bench-5"}}]}
REENGAGE = {"name": "bench-reengage", "steps": [{"id": "r1", "send": {"template": "bench-6"}}]}

# sequence = 1 + lead % 3; node and template by sequence, lead and message id (a lead keeps its split arm)
_NODE = ("CASE a.lead_id % 3 WHEN 0 THEN (CASE WHEN a.id % 2 = 0 THEN 's1' ELSE 's2' END) "
         "WHEN 1 THEN (CASE WHEN a.id % 3 = 0 THEN 's3' WHEN (a.lead_id / 3) % 2 = 0 THEN 'a1' ELSE 'b1' END) "
         "ELSE 'r1' END")
_TEMPLATE = "CASE n WHEN 's1' THEN 1 WHEN 's2' THEN 2 WHEN 'a1' THEN 3 WHEN 'b1' THEN 4 WHEN 's3' THEN 5 ELSE 6 END"

ENRICH = [
    "INSERT INTO template (id, name, subject, html, category, version) VALUES "
    + ", ".join(f"({i}, 'bench-{i}', 'Bench {i}', '<p>{i}</p>', 'marketing', 1)" for i in range(1, 7)),
    "CREATE TEMP TABLE sends AS SELECT a.id AS id, a.lead_id AS lead_id, a.at AS at, 1 + a.lead_id % 3 AS seq, "
    f"{_NODE} AS n FROM activity a WHERE a.kind = 'sent'",
    "INSERT INTO outbox (id, idempotency_key, lead_id, enrollment_id, sequence_id, node_id, template_id, "
    "template_version, category, to_email, subject, html, text, headers, status, attempts, last_error, "
    "created_at, sent_at) SELECT id, 'bench-' || id, lead_id, NULL, seq, n, " + _TEMPLATE + ", 1, 'marketing', "
    "'lead' || lead_id || '@example.com', '', '', '', '{}', CASE WHEN id % 97 = 0 THEN 'bounced' "
    "WHEN id % 211 = 0 THEN 'failed' ELSE 'sent' END, 1, CASE WHEN id % 97 = 0 THEN '550 no such user' "
    "WHEN id % 211 = 0 THEN '421 try again later' END, at, at FROM sends",
    "UPDATE activity SET outbox_id = s.id, sequence_id = s.seq, version_id = s.seq, node_id = s.n "
    "FROM sends s WHERE s.id = activity.id",
    "UPDATE activity SET outbox_id = (SELECT max(s.id) FROM activity s WHERE s.kind = 'sent' "
    "AND s.lead_id = activity.lead_id AND s.at <= activity.at) WHERE kind IN ('open', 'click', 'unsubscribe')",
    "UPDATE activity SET sequence_id = o.sequence_id, version_id = o.sequence_id, node_id = o.node_id, "
    "template_id = o.template_id FROM outbox o WHERE o.id = activity.outbox_id AND activity.kind <> 'sent'",
    "INSERT INTO enrollment (lead_id, sequence_id, version_id, node_id, status, entered_at, steps, path) "
    "SELECT lead_id, seq, seq, NULL, CASE lead_id % 5 WHEN 0 THEN 'goal' WHEN 1 THEN 'exited' "
    "WHEN 2 THEN 'done' WHEN 3 THEN 'waiting' ELSE 'active' END, min(at), 1, '[]' FROM sends GROUP BY lead_id",
    "INSERT INTO node_counter (version_id, node_id, shard, entered, \"left\", yes, no, exited, goal) "
    "SELECT seq, n, 0, count(*), count(*), 0, 0, 0, 0 FROM sends GROUP BY seq, n",
    "UPDATE mql SET status = CASE id % 4 WHEN 0 THEN 'accepted' WHEN 1 THEN 'rejected' WHEN 2 THEN 'recycled' "
    "ELSE 'new' END, decided_at = CASE WHEN id % 4 < 3 THEN datetime(created_at, '+' || (id % 48) || ' hours') END, "
    "reject_reason = CASE id % 4 WHEN 1 THEN 'no budget' WHEN 2 THEN 'not a fit' END, rep_id = owner "
    "FROM (SELECT id AS lid, owner_id AS owner FROM lead) WHERE lid = mql.lead_id",
    "INSERT INTO activity (lead_id, kind, at, bot, meta) SELECT id, 'stage_change', "
    "datetime(created_at, '+' || (id % 40) || ' days'), 0, "
    "json_object('from', 'awareness', 'to', stage) FROM lead WHERE stage IN ('consideration', 'decision') "
    "AND id % 10 = 0",
]


def _reports_db(leads: int, activities: int, seed: int, echo: Any) -> Path:
    """The demo data set enriched for reports (built once per generator and enrichment version)."""
    import json

    from ..demo.generate import GENERATOR_VERSION

    src = _template_db(leads, activities, seed, echo)
    path = WORK / f"reports-{leads}-{activities}-s{seed}-g{GENERATOR_VERSION}-e{ENRICH_VERSION}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    started = time.perf_counter()
    shutil.copyfile(src, tmp)
    _sync_indexes(tmp, echo)
    from ..store import rollups
    from ..store.engine import make_engine
    from ..store.models import metadata

    engine = make_engine(f"sqlite:///{tmp}")
    try:  # the enrichment is a bulk load: the rollups are rebuilt from the log once, after it
        with engine.begin() as conn:
            rollups.uninstall(conn)
    finally:
        engine.dispose()
    con = sqlite3.connect(tmp)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA cache_size=-262144")
        now = T_NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
        with con:
            for i, (name, definition) in enumerate((("bench-welcome", WELCOME), ("bench-split", SPLIT),
                                                    ("bench-reengage", REENGAGE)), start=1):
                con.execute("INSERT INTO sequence (id, name, description, status, draft, current_version_id) "
                            "VALUES (?, ?, '', 'active', ?, ?)", (i, name, json.dumps(definition), i))
                con.execute("INSERT INTO sequence_version (id, sequence_id, number, definition, checksum, "
                            "published_at) VALUES (?, ?, 1, ?, '', ?)", (i, i, json.dumps(definition), now))
            for sql in ENRICH:
                step = time.perf_counter()
                con.execute(sql)
                echo(f"  enriching for reports: {sql[:60]}… {time.perf_counter() - step:.1f}s")
    finally:
        con.close()
    step = time.perf_counter()
    engine = make_engine(f"sqlite:///{tmp}")
    try:
        metadata.create_all(engine)  # the rollup tables, their triggers and a rebuild from the log
        with engine.begin() as conn:
            assert rollups.installed(conn)
    finally:
        engine.dispose()
    echo(f"  rollups built in {time.perf_counter() - step:.1f}s")
    con = sqlite3.connect(tmp)
    try:
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    tmp.rename(path)
    echo(f"built {path} in {time.perf_counter() - started:.1f}s")
    return path


#: Plain SQL of the same core aggregate as each report, on a raw sqlite3 connection.
REFERENCES: dict[str, str] = {
    "emails": (
        "SELECT o.sequence_id, o.node_id, o.template_id, substr(o.created_at, 1, 10), count(*), "
        "sum(o.status = 'sent'), sum(o.status = 'bounced'), sum(o.status = 'failed'), sum(e.opens > 0), "
        "sum(e.opens), sum(e.bots), sum(e.clicks > 0), sum(e.clicks), sum(e.unsubs > 0) "
        "FROM outbox o LEFT JOIN (SELECT outbox_id, sum(kind = 'open' AND NOT bot) AS opens, "
        "sum(kind = 'open' AND bot) AS bots, sum(kind = 'click' AND NOT bot) AS clicks, "
        "sum(kind = 'unsubscribe') AS unsubs FROM activity WHERE outbox_id IS NOT NULL "
        "AND kind IN ('open', 'click', 'unsubscribe') GROUP BY outbox_id) e ON e.outbox_id = o.id "
        "WHERE o.created_at >= :since AND o.created_at < :until AND o.status IN ('sent', 'bounced', 'failed') "
        "GROUP BY 1, 2, 3, 4"),
    "funnel": (
        "SELECT version_id, node_id, sum(entered), sum(\"left\"), sum(yes), sum(no), sum(exited), sum(goal) "
        "FROM node_counter GROUP BY 1, 2 UNION ALL SELECT version_id, status, count(*), 0, 0, 0, 0, 0 "
        "FROM enrollment WHERE entered_at >= :since AND entered_at < :until GROUP BY 1, 2"),
    "progression": (
        "SELECT 'mql', lead_id, min(created_at) FROM mql GROUP BY lead_id UNION ALL "
        "SELECT 'sql', lead_id, min(decided_at) FROM mql WHERE status = 'accepted' GROUP BY lead_id UNION ALL "
        "SELECT 'opp', lead_id, min(created_at) FROM opportunity WHERE lead_id IS NOT NULL GROUP BY lead_id "
        "UNION ALL SELECT 'stage', lead_id, at FROM activity WHERE kind = 'stage_change' AND at < :until "
        "UNION ALL SELECT 'leads', count(*), NULL FROM lead WHERE created_at < :until UNION ALL "
        "SELECT e.sequence_id, count(DISTINCT e.lead_id), NULL FROM enrollment e JOIN lead l ON l.id = e.lead_id "
        "WHERE e.entered_at < :until AND l.created_at < :until GROUP BY e.sequence_id"),
    "time-to-opportunity": (
        "SELECT EXISTS (SELECT 1 FROM enrollment e WHERE e.lead_id = l.id AND e.entered_at < "
        "coalesce(f.at, :until)) AS nurtured, count(*), count(f.at) FROM lead l LEFT JOIN (SELECT lead_id, "
        "min(created_at) AS at FROM opportunity WHERE lead_id IS NOT NULL GROUP BY lead_id) f "
        "ON f.lead_id = l.id WHERE l.created_at >= :since AND l.created_at < :until GROUP BY 1"),
    "influence": (
        "WITH p AS (SELECT o.id AS opp, o.lead_id AS lead, o.created_at AS at FROM opportunity o "
        "WHERE o.created_at >= :since AND o.created_at < :until AND o.lead_id IS NOT NULL UNION ALL "
        "SELECT o.id, l.id, o.created_at FROM opportunity o JOIN lead l ON l.account_id = o.account_id "
        "WHERE o.created_at >= :since AND o.created_at < :until) "
        "SELECT p.opp, a.sequence_id, min(a.at), max(a.at) FROM p JOIN activity a ON a.lead_id = p.lead "
        "WHERE a.at < p.at AND a.kind IN ('open', 'click', 'reply') AND NOT a.bot AND a.sequence_id IS NOT NULL "
        "GROUP BY 1, 2 UNION ALL SELECT p.opp, -m.campaign_id, min(m.created_at), max(m.created_at) FROM p "
        "JOIN campaign_member m ON m.lead_id = p.lead WHERE m.responded AND m.created_at < p.at GROUP BY 1, 2"),
    "splits": (
        "SELECT arm, count(*), sum(o), sum(c), sum(g) FROM (SELECT CASE WHEN a.node_id = 'a1' THEN 'A' ELSE 'B' "
        "END AS arm, a.lead_id, min(a.at) AS first, max(EXISTS (SELECT 1 FROM activity b WHERE b.outbox_id = "
        "a.outbox_id AND b.kind = 'open' AND NOT b.bot)) AS o, max(EXISTS (SELECT 1 FROM activity b WHERE "
        "b.outbox_id = a.outbox_id AND b.kind = 'click' AND NOT b.bot)) AS c, max(EXISTS (SELECT 1 FROM enrollment e "
        "WHERE e.lead_id = a.lead_id AND e.version_id = 2 AND e.status = 'goal')) AS g FROM activity a "
        "WHERE a.version_id = 2 AND a.kind = 'sent' AND a.node_id IN ('a1', 'b1') GROUP BY 1, 2) x "
        "WHERE x.first >= :since AND x.first < :until GROUP BY arm"),
    "mql": (
        "SELECT m.status, m.created_at, m.decided_at, m.snoozed_until, m.reject_reason, u.username, "
        "l.lead_source FROM mql m JOIN lead l ON l.id = m.lead_id LEFT JOIN user u ON u.id = m.rep_id "
        "WHERE m.created_at >= :since AND m.created_at < :until"),
    "adaptive": (
        "SELECT d.*, s.name, l.email FROM adaptive_decision d JOIN sequence s ON s.id = d.sequence_id "
        "JOIN lead l ON l.id = d.lead_id WHERE d.decided_at >= :since AND d.decided_at < :until "
        "ORDER BY d.decided_at DESC, d.id DESC LIMIT 500"),
}


def run(leads: int, activities: int, seed: int, runs: int, echo: Any) -> dict[str, Any]:
    from ..config import load_settings
    from ..reports.common import make_period, resolve_scope
    from ..reports.service import REPORTS, run_report
    from ..store import migrate
    from ..store.engine import make_engine
    from ..store.types import to_db

    path = _reports_db(leads, activities, seed, echo)
    _sync_indexes(path, echo)
    url = f"sqlite:///{path}"
    settings = load_settings(None, url)
    engine = make_engine(url)
    with engine.begin() as conn:  # a data set built before a rollup existed gets it (as `nurture init` does)
        step = time.perf_counter()
        if migrate.ensure_rollups(conn):
            echo(f"  rollups installed and rebuilt in {time.perf_counter() - step:.1f}s")
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA cache_size=-65536")
    raw.execute("PRAGMA mmap_size=268435456")
    period = make_period(T_NOW)
    params = {"since": to_db(period.since), "until": to_db(period.until)}
    per_report: dict[str, float] = {}
    reference: dict[str, float] = {}
    ratio: dict[str, float] = {}
    rows: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            scope = resolve_scope(conn, period, T_NOW)
            for name in REPORTS:
                report = run_report(conn, name, scope, settings)
                rows[name] = len(report.rows)
                sql = REFERENCES[name]
                ours_ms, ref_ms = _interleaved_medians(
                    [lambda n=name: run_report(conn, n, scope, settings),
                     lambda s=sql: raw.execute(s, params).fetchall()], runs)
                per_report[name], reference[name] = ours_ms, ref_ms
                ratio[name] = round(ours_ms / ref_ms, 3) if ref_ms else 0.0
                echo(f"  {name}: {rows[name]} rows, ours {ours_ms} ms, reference {ref_ms} ms")
    finally:
        raw.close()
        engine.dispose()
    worst = max(per_report.values())
    return {"scenario": "reports", "max_ms": worst, "per_report_ms": per_report, "reference_ms": reference,
            "ratio": ratio, "target_ms": TARGET_MS, "within_target": worst <= TARGET_MS, "rows": rows,
            "period": period.label, "leads": leads, "activities": activities, "seed": seed, "runs": runs}


def command(
    leads: int = typer.Option(1_000_000, "--leads", help="Leads in the demo data set."),
    activities: int = typer.Option(5_000_000, "--activities", help="Activity rows in the demo data set."),
    seed: int = typer.Option(42, "--seed"),
    runs: int = typer.Option(3, "--runs", help="Timed runs per report (median reported)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Every report of `nurture report` vs a plain SQL query of the same aggregate, on the demo data set."""
    from .common import record

    echo = (lambda msg: typer.echo(msg, err=True)) if as_json else typer.echo
    record(run(leads, activities, seed, runs, echo), as_json=as_json)
