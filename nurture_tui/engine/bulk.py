"""Bulk writes for the batch hot path.

- `insert_with_ids`: SQLAlchemy's ordered `INSERT … RETURNING` runs row by row on SQLite (RETURNING order
  is unspecified there). So on SQLite the first row goes in alone (which takes the write lock, if the
  transaction didn't hold it yet) and the rest get the next ids explicitly in one executemany: while we
  hold the lock nobody else can insert, and a table without AUTOINCREMENT hands out max(rowid)+1.
  PostgreSQL keeps the batched, ordered RETURNING.
- On SQLite the executemany goes straight to the driver with values converted the way the column types
  would (aware datetimes → UTC text, JSON → text): Core's per-row parameter processing cost more than
  SQLite's own work for these wide rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, insert

from ..store.types import to_db


def _converter() -> Any:
    """A value converter that formats each distinct datetime once (a batch repeats `now` everywhere)."""
    seen: dict[datetime, str] = {}

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, (str, int, float)):
            return value
        if isinstance(value, datetime):
            text = seen.get(value)
            if text is None:
                if value.tzinfo is None:
                    raise ValueError(f"naive datetime {value!r}: domain code must use timezone-aware UTC")
                text = seen[value] = to_db(value)
            return text
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return value

    return convert


_PLAIN = (str, int, float)


def sqlite_executemany(conn: Connection, sql: str, keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Run `sql` (qmark placeholders in `keys` order) for every row, through the raw driver.

    Columns whose values are all plain (text, numbers, NULL) pass through untouched; only the others
    (datetimes, JSON) go through the converter. Deciding per column, not per value, matters here:
    batches are hundreds of wide rows."""
    if not rows:
        return
    convert = _converter()
    special = [i for i, k in enumerate(keys) if not all(r[k] is None or isinstance(r[k], _PLAIN) for r in rows)]
    if len(keys) == 1:
        key = keys[0]
        params: list[tuple[Any, ...]] = [(convert(r[key]),) for r in rows]
    elif not special:
        get = itemgetter(*keys)
        params = [get(r) for r in rows]
    else:
        get = itemgetter(*keys)
        params = []
        for r in rows:
            values = list(get(r))
            for i in special:
                values[i] = convert(values[i])
            params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


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
    cols = ", ".join(f'"{k}"' for k in keys)
    marks = ", ".join("?" * len(keys))
    sqlite_executemany(conn, f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', keys, rows)


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
