"""Audit log writes: who did what, with before/after snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from .tables import audit


def record(
    conn: Connection,
    *,
    at: datetime,
    user: str,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(audit),
        {
            "at": at, "user": user, "action": action, "entity": entity,
            "entity_id": None if entity_id is None else str(entity_id), "before": before, "after": after,
        },
    )
