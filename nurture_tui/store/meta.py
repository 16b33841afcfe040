"""Workspace key/value metadata stored with the data (table `meta`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, column, select, table

from .types import JsonType

#: The table by name, not through the models: the rollup triggers' installer (imported by the models) keeps
#: its fingerprint here.
_META = table("meta", column("key", String), column("value", JsonType))


def get(conn: Connection, key: str, default: Any = None) -> Any:
    row = conn.execute(select(_META.c.value).where(_META.c.key == key)).first()
    return default if row is None else row[0]


def put(conn: Connection, key: str, value: Any) -> None:
    updated = conn.execute(_META.update().where(_META.c.key == key).values(value=value)).rowcount
    if not updated:
        conn.execute(_META.insert().values(key=key, value=value))


def delete(conn: Connection, key: str) -> None:
    conn.execute(_META.delete().where(_META.c.key == key))
