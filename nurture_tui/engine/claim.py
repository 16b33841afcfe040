"""Claiming due enrollments: the durable schedule is the `due_at` index (finished enrollments have
due_at NULL, so the index holds only live rows).

SQLite: the whole batch runs under `BEGIN IMMEDIATE`, which takes the database's single write lock up
front, so the ordered `SELECT … LIMIT` is already an exclusive claim (no second writer can claim the same
rows; readers in WAL mode are not blocked). PostgreSQL: `FOR UPDATE SKIP LOCKED` lets any number of
workers claim disjoint batches. Either way the claim, every effect and the advance commit together: a
crash rolls all of it back and the rows are simply due again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..store.tables import enrollment, sequence

e = enrollment.c
CLAIM_COLUMNS = (e.id, e.lead_id, e.sequence_id, e.version_id, e.node_id, e.status, e.steps, e.wait_for,
                 e.node_entered_at, e.due_at)


def paused_sequence_ids(conn: Connection) -> list[int]:
    return list(conn.execute(select(sequence.c.id).where(sequence.c.status != "active")).scalars())


def claim(conn: Connection, now: datetime, limit: int, paused: Sequence[int] = ()) -> list[Any]:
    """Up to `limit` due enrollments, oldest due first (call inside the batch's write transaction)."""
    q = select(*CLAIM_COLUMNS).where(e.due_at <= now)
    if paused:
        q = q.where(e.sequence_id.not_in(list(paused)))
    q = q.order_by(e.due_at, e.id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(conn.execute(q).all())


def next_due(conn: Connection) -> datetime | None:
    """The earliest due_at in the schedule (for the TUI header)."""
    return conn.execute(select(e.due_at).where(e.due_at.is_not(None)).order_by(e.due_at).limit(1)).scalar()
