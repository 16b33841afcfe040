"""Small builders for scoring tests (real tables, Core inserts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from nurture_tui.activity import ActivityEvent
from nurture_tui.scoring.service import apply_activities
from nurture_tui.store.tables import activity, lead, user


def add_lead(conn: Connection, email: str = "ada@example.com", **fields: Any) -> int:
    values = {"email": email, "first_name": "Ada", "last_name": "Lovelace", **fields}
    return int(conn.execute(insert(lead).values(**values)).inserted_primary_key[0])


def add_user(conn: Connection, username: str, **fields: Any) -> int:
    values = {"username": username, "name": username.title(), "email": f"{username}@corp.example", **fields}
    return int(conn.execute(insert(user).values(**values)).inserted_primary_key[0])


def record(conn: Connection, settings: Any, now: datetime, *acts: dict[str, Any]) -> list[int]:
    """Insert activities (as the engine does) and score them in the same transaction."""
    events = []
    for a in acts:
        event = ActivityEvent(**{"at": now, **a})
        event_id = int(conn.execute(insert(activity).values(**event.row())).inserted_primary_key[0])
        events.append(event.stored(event_id, event.at or now))
    return apply_activities(conn, events, now, settings)


def stored(conn: Connection, lead_id: int) -> float:
    return float(conn.execute(select(lead.c.score).where(lead.c.id == lead_id)).scalar_one())
