"""Housekeeping run by the leader: activity retention and the SQLite WAL checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select

from ..store.engine import write_tx
from ..store.tables import activity
from ..workspace import Workspace

PRUNE_CHUNK = 5000
WAL_RESTART_BYTES = 64 * 1024 * 1024


@dataclass
class MaintenanceResult:
    pruned: int = 0
    checkpoint: str = ""


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
    return MaintenanceResult(pruned=prune_activity(ws), checkpoint=checkpoint(ws))
