"""Claiming due enrollments: the durable schedule is the `due_at` index (finished enrollments have
due_at NULL, so the index holds only live rows).

SQLite: the whole batch runs under `BEGIN IMMEDIATE`, which takes the database's single write lock up
front, so the ordered `SELECT … LIMIT` is already an exclusive claim (no second writer can claim the same
rows; readers in WAL mode are not blocked). PostgreSQL: `FOR UPDATE SKIP LOCKED` lets any number of
workers claim disjoint batches. Either way the claim, every effect and the advance commit together: a
crash rolls all of it back and the rows are simply due again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from ..store.tables import enrollment, sequence
from ..store.types import from_db, to_db
from .bulk import driver_cursor

e = enrollment.c
CLAIM_COLUMNS = (e.id, e.lead_id, e.sequence_id, e.version_id, e.node_id, e.status, e.steps, e.wait_for,
                 e.node_entered_at, e.due_at)


class Claimed(NamedTuple):
    id: int
    lead_id: int
    sequence_id: int
    version_id: int
    node_id: str | None
    status: str
    steps: int
    wait_for: Any
    node_entered_at: datetime | None
    due_at: datetime | None


def paused_sequence_ids(conn: Connection) -> list[int]:
    return list(conn.execute(select(sequence.c.id).where(sequence.c.status != "active")).scalars())


def claim(conn: Connection, now: datetime, limit: int, paused: Sequence[int] = ()) -> list[Claimed]:
    """Up to `limit` due enrollments, oldest due first (call inside the batch's write transaction), as
    `Claimed` tuples."""
    if conn.dialect.name == "sqlite":
        return _claim_sqlite(conn, now, limit, paused)
    if conn.dialect.driver == "psycopg":
        return _claim_psycopg(conn, now, limit, paused)
    q = select(*CLAIM_COLUMNS).where(e.due_at <= now)
    if paused:
        q = q.where(e.sequence_id.not_in(list(paused)))
    q = q.order_by(e.due_at, e.id).limit(limit)
    q = q.with_for_update(skip_locked=True)
    return [Claimed._make(r) for r in conn.execute(q)]


_SQLITE_CLAIM = (f"SELECT {', '.join(c.name for c in CLAIM_COLUMNS)} FROM enrollment WHERE due_at <= ?{{paused}} "
                 "ORDER BY due_at, id LIMIT ?")


def _claim_sqlite(conn: Connection, now: datetime, limit: int, paused: Sequence[int]) -> list[Claimed]:
    """The same query through the driver: Core's result processing cost more than the query (the rows
    are converted here: datetimes from SQLite text, `wait_for` from JSON text)."""
    marks = f" AND sequence_id NOT IN ({', '.join('?' * len(paused))})" if paused else ""
    rows = conn.exec_driver_sql(_SQLITE_CLAIM.format(paused=marks), (to_db(now), *paused, limit)).all()
    return [Claimed(eid, lead_id, seq_id, ver_id, node_id, status, steps,
                    json.loads(wait_for) if wait_for is not None else None, from_db(entered), from_db(due))
            for eid, lead_id, seq_id, ver_id, node_id, status, steps, wait_for, entered, due in rows]


_PG_CLAIM = (f"SELECT {', '.join(c.name for c in CLAIM_COLUMNS)} FROM enrollment "
             "WHERE due_at <= %s AND sequence_id <> ALL(%s::bigint[]) ORDER BY due_at, id LIMIT %s "
             "FOR UPDATE SKIP LOCKED")


def _claim_psycopg(conn: Connection, now: datetime, limit: int, paused: Sequence[int]) -> list[Claimed]:
    """PostgreSQL through psycopg 3 on the connection's own transaction (the row locks are this
    transaction's, as with Core): one statement text whatever is paused, so psycopg prepares it on the
    server after a few batches; jsonb and timestamptz arrive already converted."""
    with driver_cursor(conn, _PG_CLAIM) as cur:
        cur.execute(_PG_CLAIM, (now, list(paused), limit))
        rows = cur.fetchall()
    return [Claimed(eid, lead_id, seq_id, ver_id, node_id, status, steps, wait_for,
                    entered if entered is None or entered.tzinfo is UTC else entered.astimezone(UTC),
                    due if due is None or due.tzinfo is UTC else due.astimezone(UTC))
            for eid, lead_id, seq_id, ver_id, node_id, status, steps, wait_for, entered, due in rows]


def next_due(conn: Connection) -> datetime | None:
    """The earliest due_at in the schedule (for the TUI header)."""
    return conn.execute(select(e.due_at).where(e.due_at.is_not(None)).order_by(e.due_at).limit(1)).scalar()
