"""Executemany at driver level for hot paths: the Salesforce pull (tens of thousands of lead rows per
page) and the engine's batch writes (hundreds of wide outbox/activity rows per step batch).

SQLAlchemy's per-row parameter processing costs more than SQLite's own work for such rows, so bulk
inserts/updates of one table go straight to the DB-API `executemany` with values already in the driver's
form, decided per column from the column's type (not per value): SQLite datetimes as `store.types.to_db`
text, JSON as text (cast to jsonb on PostgreSQL), everything else as is. Datetime columns also take
Salesforce wire strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table

from .types import UTCDateTime, to_db


def _converter(conn: Connection, table: Table, col: str) -> tuple[Callable[[Any], Any] | None, str]:
    """(value converter or None for "as is", SQL placeholder) for one column."""
    ctype = table.c[col].type
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    if isinstance(ctype, UTCDateTime):
        return _datetime_converter(sqlite), mark
    if isinstance(ctype, JSON):
        return (lambda v: None if v is None else "{}" if v == {} else json.dumps(v)), mark if sqlite else \
            f"{mark}::jsonb"
    return None, mark


def wire_to_datetime(s: str) -> datetime:
    """A Salesforce wire datetime (`2024-01-15T10:30:00.000+0000`, `…Z`, `…+00:00`) → aware UTC."""
    if len(s) == 28 and s.endswith("+0000"):
        return datetime.fromisoformat(s[:23]).replace(tzinfo=UTC)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    elif len(s) > 5 and s[-5] in "+-" and s[-3] != ":":
        s = s[:-2] + ":" + s[-2:]
    dt = datetime.fromisoformat(s)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _datetime_converter(sqlite: bool) -> Callable[[Any], Any]:
    """Datetime column values may be aware datetimes or Salesforce wire strings (converted without building a
    datetime on SQLite). Each distinct datetime is formatted once per call: batches repeat `now` (and
    `now + wait`) on every row."""
    seen: dict[datetime, str] = {}

    def to_sqlite(v: Any) -> Any:
        if v is None:
            return None
        if type(v) is str:
            if len(v) == 28 and v.endswith("+0000"):
                return f"{v[:10]} {v[11:23]}000"
            return to_db(wire_to_datetime(v))
        out = seen.get(v)
        if out is None:
            if v.tzinfo is None:
                raise ValueError(f"naive datetime {v!r}: domain code must use timezone-aware UTC")
            out = seen[v] = to_db(v)
        return out

    def to_pg(v: Any) -> Any:
        return wire_to_datetime(v) if type(v) is str else v

    return to_sqlite if sqlite else to_pg


def _tuples(rows: list[dict[str, Any]], cols: list[str], fns: list[Callable[[Any], Any] | None]) -> list[Any]:
    """Row dicts → parameter tuples: a C-level itemgetter, then only the columns that need converting."""
    get = itemgetter(*cols)
    fix = [(i, f) for i, f in enumerate(fns) if f is not None]
    if len(cols) == 1:
        return [(fns[0](r[cols[0]]) if fns[0] else r[cols[0]],) for r in rows]
    if not fix:
        return [get(r) for r in rows]
    out: list[Any] = []
    for r in rows:
        vals = list(get(r))
        for i, f in fix:
            vals[i] = f(vals[i])
        out.append(tuple(vals))
    return out


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(r), []).append(r)
    return out


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    q = conn.dialect.identifier_preparer.quote
    for cols, items in _groups(rows).items():
        convs = [_converter(conn, table, c) for c in cols]
        sql = (f"INSERT INTO {q(table.name)} ({', '.join(q(c) for c in cols)}) "
               f"VALUES ({', '.join(m for _, m in convs)})")
        conn.exec_driver_sql(sql, _tuples(items, list(cols), [f for f, _ in convs]))


def update_many(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str = "id") -> None:
    q = conn.dialect.identifier_preparer.quote
    for cols_all, items in _groups(rows).items():
        cols = [c for c in cols_all if c != key]
        if not cols:
            continue
        convs = [_converter(conn, table, c) for c in cols]
        kconv, kmark = _converter(conn, table, key)
        sets = ", ".join(f"{q(c)} = {m}" for c, (_, m) in zip(cols, convs, strict=True))
        sql = f"UPDATE {q(table.name)} SET {sets} WHERE {q(key)} = {kmark}"
        conn.exec_driver_sql(sql, _tuples(items, [*cols, key], [*(f for f, _ in convs), kconv]))
