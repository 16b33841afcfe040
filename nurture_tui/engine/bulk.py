"""Bulk writes for the batch hot path.

- `insert_with_ids`: SQLAlchemy's ordered `INSERT … RETURNING` runs row by row on SQLite (RETURNING order
  is unspecified there). So on SQLite the first row goes in alone (which takes the write lock, if the
  transaction didn't hold it yet) and the rest get the next ids explicitly in one executemany: while we
  hold the lock nobody else can insert, and a table without AUTOINCREMENT hands out max(rowid)+1.
- On SQLite the executemany goes straight to the driver (`store.fastwrite`), values converted per column
  the way the column types would (aware datetimes → UTC text, JSON → text): Core's per-row parameter
  processing cost more than SQLite's own work for these wide rows.
- On PostgreSQL the rows go through psycopg 3 on the SQLAlchemy connection's own driver connection (same
  transaction, so exactly-once is unchanged): the ids come from the table's sequence in one round trip
  (`nextval` over `generate_series`; sequence values are never handed out twice, whatever other workers
  do), then every row goes in with one `COPY … FROM STDIN` (row triggers fire on COPY as on INSERT).
  Core's ordered `insertmanyvalues` built one huge multi-VALUES statement per 1,000 rows that psycopg
  re-parsed on every batch: that, not the server, was most of a PostgreSQL batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError

from ..store.fastwrite import _converter, _groups, _tuples, insert_many


@contextmanager
def driver_cursor(conn: Connection, statement: str) -> Iterator[Any]:
    """A cursor of the SQLAlchemy connection's own DB-API connection (same transaction). Driver errors
    come out as SQLAlchemy's (IntegrityError, OperationalError …), as they would through Core."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cur
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error, dialect=conn.dialect) from exc
    finally:
        cur.close()


def _fill_defaults(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the Python-side column defaults filled in and non-column keys dropped (all rows carry the
    same keys as the first)."""
    keys = [k for k in rows[0] if k in table.c]
    missing = [c for c in table.c if c.name not in keys and not c.primary_key and c.default is not None]
    if missing:  # fill Python-side defaults the raw path would otherwise skip
        for r in rows:
            for c in missing:
                arg = c.default.arg  # type: ignore[union-attr]
                r[c.name] = arg(None) if callable(arg) else arg
        keys += [c.name for c in missing]
    extra = set(rows[0]) - set(keys)  # keys that are not columns (callers' bookkeeping) stay out of the SQL
    return [{k: r[k] for k in keys} for r in rows] if extra else rows


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all carry the same keys (apart from column defaults, which must be given)."""
    if not rows:
        return
    rows = _fill_defaults(table, rows)
    if conn.dialect.name == "sqlite":
        insert_many(conn, table, rows)
    else:
        pg_copy(conn, table, rows)


def pg_copy(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: rows into `table` with one `COPY … FROM STDIN` per key set, through psycopg 3 on the
    connection's own transaction (text format: the server parses each value with its column's type; JSON
    columns get JSON text, datetimes stay aware datetimes)."""
    q = conn.dialect.identifier_preparer.quote
    for cols, items in _groups(rows).items():
        tuples = _tuples(items, list(cols), [_converter(conn, table, c)[0] for c in cols])
        sql = f"COPY {q(table.name)} ({', '.join(q(c) for c in cols)}) FROM STDIN"
        with driver_cursor(conn, sql) as cur, cur.copy(sql) as copy:
            for t in tuples:
                copy.write_row(t)


def _pg_next_ids(conn: Connection, table: Table, n: int) -> list[int]:
    with driver_cursor(conn, _NEXT_IDS) as cur:
        cur.execute(_NEXT_IDS, (table.name, n))
        return sorted(r[0] for r in cur.fetchall())


_NEXT_IDS = ("SELECT nextval(s) FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS s) q, "
             "generate_series(1, %s)")


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
    ids = _pg_next_ids(conn, table, len(rows))
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    insert_rows(conn, table, rows)
    return ids
