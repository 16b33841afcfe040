"""What a person's own request for a category means for their subscriptions (a signup through a form or
the API, a confirmed double opt-in): an earlier unsubscribe from that category no longer holds, and a
global opt-out becomes "only this category" — they had left all marketing, now they asked for one kind of
it, not for the rest."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select, update

from ..batching import chunks
from ..config import Settings
from ..mail.subscriptions import known_categories, set_category, set_global_opt_out
from ..store.tables import lead, subscription


def resubscribe(conn: Connection, lead_ids: Iterable[int], category: str, now: datetime, settings: Settings) -> None:
    others: list[str] | None = None
    for part in chunks(sorted(set(lead_ids))):
        conn.execute(update(subscription).where(
            subscription.c.category == category, subscription.c.lead_id.in_(part),
            subscription.c.opted_in.is_(False)).values(opted_in=True, changed_at=now))
        for lid in conn.execute(select(lead.c.id).where(lead.c.id.in_(part), lead.c.opted_out.is_(True))).scalars():
            if others is None:
                others = [c for c in known_categories(conn, settings.mail) if c != category]
            for other in others:
                set_category(conn, lid, other, False, now)
            set_global_opt_out(conn, lid, False, now)
