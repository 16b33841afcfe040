"""`nurture bench sync`'s `continuous_push` scenario: score changes keep arriving while the push runs every
push interval, through the real change capture (store/sf_capture.py) and the real push (salesforce/live.py,
push.py) to the emulated org over HTTPS.

A writer process commits `changes` score changes on `leads` leads (random leads, transactions of
`CHANGES_PER_TX`, like the tracking writer's group commits) spread over `change_seconds`; the main thread
does what the scheduler's sync job does between full syncs (salesforce/sync.py `scheduler_hook`): every tick
it asks `live.push_due` — is the oldest unpushed change about to be one push interval old? — and pushes
alone when it is; once more after the last change. Measured:

- end-to-end lag of every change: from its commit to the end of the first push that *started* after it (a
  conservative bound: a change committed while a push was reading may already have gone out with it);
- API calls used by the pushes, per 200 distinct records pushed (the same lead pushed in two cycles counts
  twice: it was two writes);
- correctness: every lead's `Nurture_Score__c` in the org equals its live score afterwards.

Targets (issue 19): lag p95 ≤ one push interval, ≤ 1 API call per 200 distinct records.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import random
import time
from typing import Any

CHANGES_PER_TX = 200


def write_scores(db_url: str, ids: list[int], changes: int, change_seconds: float, seed: int, out: Any) -> None:
    """The writer, in its own process (as the tracking writer is in the web server's): `changes` score changes
    on random leads of `ids`, `CHANGES_PER_TX` per transaction, evenly over `change_seconds`; sends back the
    commit times (unix seconds) and sizes."""
    from sqlalchemy import bindparam, update

    from ..store.engine import make_engine, write_tx
    from ..store.tables import lead

    try:
        engine = make_engine(db_url)
        rng = random.Random(seed)
        stmt = (update(lead).where(lead.c.id == bindparam("b_id"))
                .values(score=lead.c.score + bindparam("b_points")))
        commits: list[tuple[float, int]] = []
        txs = max(1, changes // CHANGES_PER_TX)
        pause = change_seconds / txs
        start = time.perf_counter()
        for t in range(txs):
            batch = [{"b_id": rng.choice(ids), "b_points": 1.0} for _ in range(CHANGES_PER_TX)]
            with write_tx(engine) as conn:  # queued like every writer (the push settles meanwhile)
                conn.execute(stmt, batch)
            commits.append((time.time(), len(batch)))
            ahead = start + (t + 1) * pause - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        engine.dispose()
        out.send({"commits": commits})
    except BaseException as exc:  # reported by the parent
        out.send({"error": f"{type(exc).__name__}: {exc}"})
TICK = 0.05  # how often the loop asks whether a push is due (the scheduler's job ticks every 5 s)


def _org_scores(emu: Any, session: Any, token: str) -> dict[str, float]:
    """Id → Nurture_Score__c of every Lead, read with a plain Bulk 2.0 query (not through the sync)."""
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = f"{emu.url}/services/data/v59.0/jobs/query"
    job = session.post(base, headers=h, data=json.dumps({"operation": "query",
                                                         "query": "SELECT Id, Nurture_Score__c FROM Lead"})).json()
    for _ in range(600):
        if session.get(f"{base}/{job['id']}", headers=h).json().get("state") == "JobComplete":
            break
        time.sleep(0.05)
    out: dict[str, float] = {}
    locator = ""
    while True:
        params: dict[str, Any] = {"maxRecords": 50000, **({"locator": locator} if locator else {})}
        r = session.get(f"{base}/{job['id']}/results", headers=h, params=params)
        rows = csv.reader(io.StringIO(r.text))
        next(rows, None)
        for rid, score in rows:
            out[rid] = float(score) if score else 0.0
        locator = r.headers.get("Sforce-Locator", "null")
        if locator == "null":
            return out


def run(ws: Any, emu: Any, session: Any, *, leads: int, changes: int, interval: float,
        change_seconds: float, seed: int) -> dict[str, Any]:
    from sqlalchemy import select

    from ..salesforce.live import push_due, push_margin
    from ..salesforce.sync import run_sync
    from ..scoring.scale import read_scale
    from ..store.tables import lead
    from .common import percentile

    with ws.engine.connect() as conn:
        ids = [int(r[0]) for r in conn.execute(select(lead.c.id).where(lead.c.sf_type == "Lead")
                                               .order_by(lead.c.id).limit(leads))]
    if len(ids) < leads:
        raise SystemExit(f"continuous_push needs {leads} mirrored leads, the org has {len(ids)} (raise --records)")
    assert run_sync(ws, pull=False, push=True).ok  # settle anything the pull left dirty: start from clean
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    writer = ctx.Process(target=write_scores, name="bench-score-writer",
                         args=(ws.settings.db_url, ids, changes, change_seconds, seed, child))
    emu.admin("reset-stats")
    pushes: list[tuple[float, float, int, int]] = []  # (start, end, records, api calls)
    writer.start()
    child.close()
    while True:
        alive = writer.is_alive()
        if alive:
            time.sleep(TICK)
            with ws.engine.connect() as conn:
                if not push_due(conn, interval, time.time(), pushes[-1][1] - pushes[-1][0] if pushes else 0.0):
                    continue
        start = time.time()
        rep = run_sync(ws, pull=False, push=True)
        end = time.time()
        if rep.error or rep.pushed is None:
            raise SystemExit(f"continuous push failed: {rep.error}")
        pushes.append((start, end, rep.pushed.records, rep.api_calls))
        if not alive:
            break
    writer.join()
    result: dict[str, Any] = parent.recv() if parent.poll(5) else {"error": "no result from the writer process"}
    if "error" in result:
        raise SystemExit(f"score writer failed: {result['error']}")
    commits: list[tuple[float, int]] = list(result["commits"])
    lags: list[float] = []
    for at, n in commits:
        done = next((e for s, e, _r, _c in pushes if s >= at), None)
        if done is not None:
            lags.extend([done - at] * n)
    calls = sum(c for *_x, c in pushes)
    records = sum(r for _s, _e, r, _c in pushes)
    writer_s = (commits[-1][0] - commits[0][0]) if len(commits) > 1 else 0.0

    with ws.engine.connect() as conn:  # the org now has every lead's live score
        factor = read_scale(conn, ws.settings.scoring.half_life_days).factor(ws.clock.now())
        local = {str(sf): round(float(score) * factor) for sf, score in conn.execute(
            select(lead.c.sf_id, lead.c.score).where(lead.c.id.in_(ids)))}
    org = _org_scores(emu, session, emu.token())
    wrong = sum(1 for sf, score in local.items() if abs(org.get(sf, -1.0) - score) > 1)
    return {
        "changes": len(lags), "leads": leads, "push_interval_s": interval,
        "push_margin_s": round(push_margin(interval, max((e - s for s, e, _r, _c in pushes), default=0.0)), 3),
        "pushes": len(pushes),
        "records_pushed": records, "api_calls": calls,
        "api_calls_per_200_records": round(calls / max(1, records / 200), 4),
        "lag_p50_s": round(percentile(lags, 50), 3), "lag_p95_s": round(percentile(lags, 95), 3),
        "lag_max_s": round(max(lags), 3) if lags else 0.0,
        "lag_p95_in_intervals": round(percentile(lags, 95) / interval, 3),
        "push_seconds_max": round(max(e - s for s, e, _r, _c in pushes), 3),
        "writer_changes_per_s": round(len(lags) / writer_s) if writer_s else 0,
        "org_scores_wrong": wrong,
        "targets": {"lag_p95_in_intervals": 1, "api_calls_per_200_records": 1, "org_scores_wrong": 0},
    }
