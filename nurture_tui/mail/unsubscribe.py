"""Unsubscribe writes shared by the web app (page, RFC 8058 one-click) and the mailto processor
(`mail.inbound`): find the message a token points at, change subscriptions, record the activity."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..activity import ActivityEvent
from ..config import MailSettings, Settings
from ..engine.events import record_events
from ..errors import ValidationError
from ..store.tables import enrollment, outbox
from . import subscriptions
from .suppression import TRANSACTIONAL
from .tokens import TokenData


def token_message(conn: Connection, data: TokenData) -> dict[str, Any]:
    """The outbox row a token points at (plus the enrollment's version). The message must exist and be
    addressed to the token's lead: a validly signed token for an unknown message (forged with a leaked or
    default secret, or for a lead that was deleted with its messages) is refused — no unsubscribe, no
    redirect, no event. Outbox rows are never pruned on their own (only with their lead), so every token
    nurture issued for a lead that still exists finds its message."""
    row = conn.execute(
        select(outbox.c.id, outbox.c.lead_id, outbox.c.sequence_id, outbox.c.node_id, outbox.c.template_id,
               outbox.c.category, outbox.c.status, outbox.c.sent_at, enrollment.c.version_id)
        .select_from(outbox.outerjoin(enrollment, enrollment.c.id == outbox.c.enrollment_id))
        .where(outbox.c.message_ref == data.message_ref)
    ).mappings().first()
    if row is None:
        raise ValidationError("token", "unknown message")
    if row["lead_id"] != data.lead_id:
        raise ValidationError("token", "does not match its message")
    return dict(row)


def leave_category(conn: Connection, lead_id: int, category: str, now: datetime) -> list[str]:
    """One-click semantics: leave the message's category (a transactional message: all marketing)."""
    if category == TRANSACTIONAL:
        return ["*"] if subscriptions.set_global_opt_out(conn, lead_id, True, now) else []
    return [category] if subscriptions.set_category(conn, lead_id, category, False, now) else []


def choose(conn: Connection, lead_id: int, keep: Iterable[str], opt_out: bool, mail: MailSettings,
           now: datetime) -> list[str]:
    """The preference form: stay in `keep`, leave every other category; `opt_out` = all marketing."""
    known = subscriptions.known_categories(conn, mail)
    keep = set(keep)
    unknown = keep - set(known)
    if unknown:
        raise ValidationError("form.category", f"unknown category {sorted(unknown)[0]!r}")
    return subscriptions.apply_preferences(conn, lead_id, {c: c in keep for c in known}, opt_out, now)


def record_unsubscribe(conn: Connection, msg: dict[str, Any], changed: list[str], now: datetime,
                       settings: Settings, meta: dict[str, Any]) -> None:
    """An `unsubscribe` activity for what was actually left (re-subscribing records nothing)."""
    prefs = subscriptions.get_preferences(conn, msg["lead_id"], settings.mail)
    left = [c for c in changed if c == "*" or not prefs.categories.get(c, True)]
    if not left:
        return
    record_events(conn, [ActivityEvent(
        msg["lead_id"], "unsubscribe", now, sequence_id=msg["sequence_id"], version_id=msg["version_id"],
        node_id=msg["node_id"], template_id=msg["template_id"], outbox_id=msg["id"],
        meta={"categories": left, **meta},
    )], now, settings)
