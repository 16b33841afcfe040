"""Bulk loading for generated data: one writer per dialect over the same rows.

Rows are tuples in a declared column order with datetimes as Unix seconds (floats) and JSON as Python
objects. SQLite gets them through the raw DBAPI cursor's `executemany` (datetimes formatted as the
`UTCDateTime` text format, JSON dumped once); PostgreSQL through Core `insert()` (types processed by
SQLAlchemy). Either way the rows land in the real tables with their constraints and indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert, text

from ..store.types import to_db

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqliteTimestamps:
    """Unix seconds → 'YYYY-MM-DD HH:MM:SS.ffffff' (the stored text of UTCDateTime), with the date part
    cached per day: ~10× faster than strftime for millions of rows."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._clock: list[str] = []

    def _whole_seconds(self, ts: int) -> str:
        if not self._clock:
            self._clock = [f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)]
        d, secs = divmod(ts, 86400)
        prefix = self._days.get(d)
        if prefix is None:
            prefix = self._days[d] = to_db(_EPOCH + timedelta(days=d))[:11]
        return prefix + self._clock[secs]

    def __call__(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        if type(ts) is int:  # the common case for generated history: a table lookup, no arithmetic
            return self._whole_seconds(ts)
        day, rest = divmod(ts, 86400.0)
        d = int(day)
        prefix = self._days.get(d)
        if prefix is None:
            prefix = to_db(_EPOCH + timedelta(days=d))[:11]
            self._days[d] = prefix
        micros = round(rest * 1_000_000)
        if micros >= 86_400_000_000:  # rounding reached midnight: format the long way
            return to_db(_EPOCH + timedelta(seconds=ts))
        secs, us = divmod(micros, 1_000_000)
        h, rem = divmod(secs, 3600)
        m, s = divmod(rem, 60)
        return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{us:06d}"


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else _EPOCH + timedelta(seconds=ts)


class BulkWriter:
    """Insert generated rows into a table; `kinds` marks columns needing conversion ('dt' or 'json')."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.raw = conn.dialect.name == "sqlite"
        self._ts = SqliteTimestamps()

    def insert(self, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]],
               kinds: dict[str, str] | None = None) -> int:
        kinds = kinds or {}
        convert = [(i, kinds[c]) for i, c in enumerate(columns) if c in kinds]
        if self.raw:
            out = self._sqlite_rows(rows, convert)
            extra = self._python_defaults(table, columns)
            if extra:
                columns = [*columns, *extra]
                tail = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in extra.values()]
                out = [[*row, *tail] for row in out]
            sql = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            cur = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.executemany(sql, out)
            finally:
                cur.close()
            return len(out)
        dicts = [dict(zip(columns, self._pg_row(row, convert), strict=True)) for row in rows]
        if dicts:
            self.conn.execute(insert(table), dicts)
        return len(dicts)

    @staticmethod
    def _python_defaults(table: Table, columns: Sequence[str]) -> dict[str, Any]:
        """Values of the Python-side column defaults Core would add (the raw path must add them itself)."""
        out: dict[str, Any] = {}
        for col in table.columns:
            default = col.default
            if col.name in columns or default is None or col.primary_key or col.server_default is not None:
                continue
            arg = getattr(default, "arg", None)
            out[col.name] = arg(None) if callable(arg) else arg
        return out

    def _sqlite_rows(self, rows: Iterable[Sequence[Any]], convert: list[tuple[int, str]]) -> list[Sequence[Any]]:
        if not convert:
            return list(rows)
        ts = self._ts
        out: list[Sequence[Any]] = []
        for row in rows:
            values = list(row)
            for i, kind in convert:
                v = values[i]
                values[i] = ts(v) if kind == "dt" else (None if v is None else json.dumps(v))
            out.append(values)
        return out

    @staticmethod
    def _pg_row(row: Sequence[Any], convert: list[tuple[int, str]]) -> list[Any]:
        values = list(row)
        for i, kind in convert:
            if kind == "dt":
                values[i] = to_datetime(values[i])
        return values

    def fix_sequences(self, tables: Iterable[Table]) -> None:
        """After inserting explicit ids on PostgreSQL, move each id sequence past the largest id."""
        if self.raw:
            return
        for table in tables:
            self.conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                f"COALESCE((SELECT max(id) FROM \"{table.name}\"), 0) + 1, false)"
            ))
