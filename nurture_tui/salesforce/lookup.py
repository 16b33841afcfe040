"""Batched lookups shared by the pull's appliers and the delete/merge pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, select

from ..batching import chunks


def by_sf_id(conn: Connection, table: Table, cols: list[Any], sf_ids: Iterable[str]) -> dict[str, Any]:
    """Rows of `table` keyed by Salesforce id, for the given ids (empty ids ignored)."""
    ids = [i for i in set(sf_ids) if i]
    out: dict[str, Any] = {}
    for chunk in chunks(ids):
        for row in conn.execute(select(*cols).where(table.c.sf_id.in_(chunk))):
            out[row.sf_id] = row
    return out
