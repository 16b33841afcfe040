"""Leaving a category withdraws its consent (called by mail.subscriptions when a lead unsubscribes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from ..store.tables import consent


def withdraw(conn: Connection, lead_id: int, category: str | None, now: datetime) -> int:
    """Mark the lead's consent for `category` (None: every category) withdrawn; returns rows changed."""
    stmt = update(consent).where(consent.c.lead_id == lead_id, consent.c.status != "withdrawn")
    if category is not None:
        stmt = stmt.where(consent.c.category == category)
    return conn.execute(stmt.values(status="withdrawn", at=now)).rowcount or 0
