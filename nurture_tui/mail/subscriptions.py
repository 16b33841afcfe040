"""Subscription categories: a lead can leave one category and stay in the others, or opt out of all
marketing mail (global opt-out = `lead.opted_out`). Absent rows mean subscribed (opt-out model, as in
Pardot's and HubSpot's subscription types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from ..compliance.withdrawal import withdraw
from ..config import MailSettings
from ..errors import NotFoundError, ValidationError
from ..store.tables import lead, subscription, template
from .suppression import TRANSACTIONAL


@dataclass(frozen=True)
class Preferences:
    lead_id: int
    email: str
    opted_out: bool  # global opt-out
    categories: dict[str, bool]  # category → subscribed


def known_categories(conn: Connection, settings: MailSettings) -> list[str]:
    """Configured categories plus any a template uses (transactional excluded), in a stable order."""
    cats = list(dict.fromkeys(settings.categories))
    for (cat,) in conn.execute(select(template.c.category).distinct().order_by(template.c.category)):
        if cat not in cats:
            cats.append(cat)
    return [c for c in cats if c != TRANSACTIONAL]


def get_preferences(conn: Connection, lead_id: int, settings: MailSettings) -> Preferences:
    row = conn.execute(select(lead.c.email, lead.c.opted_out).where(lead.c.id == lead_id)).first()
    if row is None:
        raise NotFoundError(f"lead {lead_id} not found")
    cats = dict.fromkeys(known_categories(conn, settings), True)
    for cat, opted_in in conn.execute(select(subscription.c.category, subscription.c.opted_in)
                                      .where(subscription.c.lead_id == lead_id)):
        cats[cat] = bool(opted_in)
    return Preferences(lead_id, row.email, bool(row.opted_out), cats)


def set_category(conn: Connection, lead_id: int, category: str, opted_in: bool, now: datetime) -> bool:
    """Subscribe/unsubscribe one category; returns True if the state changed."""
    if category == TRANSACTIONAL:
        raise ValidationError("category", "transactional mail has no subscription")
    if not opted_in:
        withdraw(conn, lead_id, category, now)  # leaving a category withdraws its consent (docs/compliance.md)
    cur = conn.execute(select(subscription.c.opted_in).where(
        subscription.c.lead_id == lead_id, subscription.c.category == category)).first()
    if cur is None:
        conn.execute(insert(subscription).values(lead_id=lead_id, category=category, opted_in=opted_in,
                                                 changed_at=now))
        return not opted_in  # no row meant subscribed
    if bool(cur[0]) == opted_in:
        return False
    conn.execute(update(subscription).where(subscription.c.lead_id == lead_id, subscription.c.category == category)
                 .values(opted_in=opted_in, changed_at=now))
    return True


def set_global_opt_out(conn: Connection, lead_id: int, opted_out: bool, now: datetime) -> bool:
    """Opt out of (or back into) all marketing mail; returns True if the state changed."""
    res = conn.execute(update(lead).where(lead.c.id == lead_id, lead.c.opted_out.is_not(opted_out))
                       .values(opted_out=opted_out, updated_at=now))
    if opted_out:
        withdraw(conn, lead_id, None, now)
    return bool(res.rowcount)


def apply_preferences(
    conn: Connection, lead_id: int, categories: Mapping[str, bool], opted_out: bool, now: datetime
) -> list[str]:
    """Store a preference-page submission; returns what changed (category names, and "*" for global)."""
    changed = [c for c, on in categories.items() if set_category(conn, lead_id, c, on, now)]
    if set_global_opt_out(conn, lead_id, opted_out, now):
        changed.append("*")
    return changed
