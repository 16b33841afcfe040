"""Bulk writes for the batch hot path.

- `insert_with_ids`: SQLAlchemy's ordered `INSERT … RETURNING` runs row by row on SQLite (RETURNING order
  is unspecified there). So on SQLite the first row goes in alone (which takes the write lock, if the
  transaction didn't hold it yet) and the rest get the next ids explicitly in one executemany: while we
  hold the lock nobody else can insert, and a table without AUTOINCREMENT hands out max(rowid)+1.
  PostgreSQL keeps the batched, ordered RETURNING.
- On SQLite the executemany goes straight to the driver (`store.fastwrite`), values converted per column
  the way the column types would (aware datetimes → UTC text, JSON → text): Core's per-row parameter
  processing cost more than SQLite's own work for these wide rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, insert

from ..store.fastwrite import insert_many


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all carry the same keys (apart from column defaults, which must be given)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    keys = [k for k in rows[0] if k in table.c]
    missing = [c for c in table.c if c.name not in keys and not c.primary_key and c.default is not None]
    if missing:  # fill Python-side defaults the raw path would otherwise skip
        for r in rows:
            for c in missing:
                arg = c.default.arg  # type: ignore[union-attr]
                r[c.name] = arg(None) if callable(arg) else arg
        keys += [c.name for c in missing]
    extra = set(rows[0]) - set(keys)  # keys that are not columns (callers' bookkeeping) stay out of the SQL
    insert_many(conn, table, [{k: r[k] for k in keys} for r in rows] if extra else rows)


def insert_with_ids(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows`; returns their ids in order (also set as each row's "id")."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        first = int(conn.execute(insert(table).returning(table.c.id), rows[0]).scalar_one())
        rows[0]["id"] = first
        ids = list(range(first, first + len(rows)))
        for row, new_id in zip(rows[1:], ids[1:], strict=True):
            row["id"] = new_id
        insert_rows(conn, table, rows[1:])
        return ids
    ids = [int(i) for i in conn.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars()]
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    return ids
