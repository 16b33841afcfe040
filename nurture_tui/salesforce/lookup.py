"""Batched lookups shared by the pull's appliers and the delete/merge pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, select

from ..store.inlist import in_values


def by_sf_id(conn: Connection, table: Table, cols: list[Any], sf_ids: Iterable[str]) -> dict[str, Any]:
    """Rows of `table` keyed by Salesforce id, for the given ids (empty ids ignored): one statement for the
    whole page (the ids in one bound parameter), not one per 900 ids."""
    ids = [i for i in set(sf_ids) if i]
    if not ids:
        return {}
    return {row.sf_id: row for row in conn.execute(select(*cols).where(in_values(conn, table.c.sf_id, ids)))}
