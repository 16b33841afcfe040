"""Housekeeping run by the leader: adaptive decision and activity retention, and the SQLite WAL checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from ..sequences.adaptive_store import adaptive_splits, fold_old_decisions
from ..store.engine import write_tx
from ..store.tables import activity, adaptive_decision
from ..workspace import Workspace

PRUNE_CHUNK = 5000
WAL_RESTART_BYTES = 64 * 1024 * 1024


@dataclass
class MaintenanceResult:
    pruned: int = 0
    checkpoint: str = ""
    decisions_pruned: int = 0  # adaptive decisions past their retention (split ones folded into adaptive_daily)


def prune_adaptive_decisions(ws: Workspace, max_rows: int = 200_000) -> int:
    """Adaptive decisions older than `engine.adaptive_decision_retention_days` (docs/adaptive.md, "Retention"),
    in short transactions. A split's decisions are folded into per-day counts (`adaptive_daily`) first, so its
    posteriors stay the same: only closed ones, and never one its lookback (+ 1 day) still reads row by row.
    Send-time decisions, and split decisions of a node no published version has, are only deleted (nothing
    reads them but the timeline and the report)."""
    days = ws.settings.engine.adaptive_decision_retention_days
    if days <= 0:
        return 0
    now = ws.clock.now()
    cutoff = now - timedelta(days=days)
    with ws.engine.connect() as conn:
        nodes = adaptive_splits(conn)
        old = {(int(sid), str(nid)) for sid, nid in conn.execute(
            select(adaptive_decision.c.sequence_id, adaptive_decision.c.node_id).distinct()
            .where(adaptive_decision.c.kind == "split", adaptive_decision.c.decided_at < cutoff))}
    total = 0
    for (sequence_id, node_id), settings in sorted(nodes.items()):
        if (sequence_id, node_id) not in old:
            continue
        before = cutoff if settings.lookback is None else min(cutoff, now - settings.lookback - timedelta(days=1))
        while total < max_rows:
            with write_tx(ws.engine) as conn:
                n = fold_old_decisions(conn, sequence_id, node_id, settings.metric, before, now, PRUNE_CHUNK)
            total += n
            if n < PRUNE_CHUNK:
                break
    d = adaptive_decision.c
    for sequence_id, node_id in sorted(old - set(nodes)):
        total += _delete_chunks(ws, (d.kind == "split") & (d.sequence_id == sequence_id) & (d.node_id == node_id)
                                & (d.decided_at < cutoff), max_rows - total)
    return total + _delete_chunks(ws, (d.kind == "send_time") & (d.decided_at < cutoff), max_rows - total)


def _delete_chunks(ws: Workspace, where: Any, max_rows: int) -> int:
    d = adaptive_decision
    total = 0
    while total < max_rows:
        with write_tx(ws.engine) as conn:
            ids = select(d.c.id).where(where).order_by(d.c.decided_at).limit(PRUNE_CHUNK)
            n = conn.execute(delete(d).where(d.c.id.in_(ids.scalar_subquery()))).rowcount
        total += n
        if n < PRUNE_CHUNK:
            break
    return total


def prune_activity(ws: Workspace, max_rows: int = 200_000) -> int:
    """Delete activity older than `engine.activity_retention_days`, in short transactions."""
    days = ws.settings.engine.activity_retention_days
    if days <= 0:
        return 0
    cutoff = ws.clock.now() - timedelta(days=days)
    total = 0
    while total < max_rows:
        with write_tx(ws.engine) as conn:
            ids = select(activity.c.id).where(activity.c.at < cutoff).order_by(activity.c.at).limit(PRUNE_CHUNK)
            n = conn.execute(delete(activity).where(activity.c.id.in_(ids.scalar_subquery()))).rowcount
        total += n
        if n < PRUNE_CHUNK:
            break
    return total


def checkpoint(ws: Workspace) -> str:
    """PASSIVE checkpoint normally; RESTART when the -wal file has grown big (readers starving it)."""
    if not ws.is_sqlite:
        return ""
    db = ws.engine.url.database
    wal = Path(f"{db}-wal") if db else None
    mode = "RESTART" if wal is not None and wal.exists() and wal.stat().st_size > WAL_RESTART_BYTES else "PASSIVE"
    with ws.engine.connect() as conn:
        busy, log, done = conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})").one()
    return f"{mode} busy={busy} log={log} checkpointed={done}"


def run_maintenance(ws: Workspace) -> MaintenanceResult:
    decisions = prune_adaptive_decisions(ws)  # before the activity its successes are read from goes
    return MaintenanceResult(pruned=prune_activity(ws), checkpoint=checkpoint(ws), decisions_pruned=decisions)
