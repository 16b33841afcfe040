"""Who must not be mailed: global opt-outs, hard bounces, complaints, manual suppressions, and leads who
left a subscription category.

`suppressed_ids` is the batch check the engine runs before composing sends and the dispatcher runs again
right before delivery (an unsubscribe between the two still stops the message).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, exists, insert, or_, select, update

from ..batching import chunks
from ..store.tables import consent, lead, subscription, suppression

#: Categories that are not marketing: a global opt-out or category opt-out does not stop them,
#: only a hard suppression (bounce, complaint, manual) does.
TRANSACTIONAL = "transactional"
HARD_REASONS = ("bounce", "complaint", "manual", "erased")  # erased: compliance/erasure.py
REASONS = (*HARD_REASONS, "unsubscribe")


def suppressed_ids(conn: Connection, lead_ids: Iterable[int], category: str,
                   consent_required: Collection[str] = ()) -> set[int]:
    """The subset of `lead_ids` that must not receive mail of `category` (one query per 900 ids). A category
    in `consent_required` (settings.compliance.required()) also needs a granted consent record."""
    ids = sorted(set(lead_ids))
    hard = or_(
        exists().where(suppression.c.lead_id == lead.c.id, suppression.c.reason.in_(HARD_REASONS)),
        exists().where(suppression.c.email == lead.c.email, suppression.c.reason.in_(HARD_REASONS)),
    )
    if category == TRANSACTIONAL:
        cond = or_(lead.c.bounced.is_(True), hard)
    else:
        cond = or_(
            lead.c.opted_out.is_(True), lead.c.bounced.is_(True), hard,
            exists().where(suppression.c.lead_id == lead.c.id),
            exists().where(and_(subscription.c.lead_id == lead.c.id, subscription.c.category == category,
                                subscription.c.opted_in.is_(False))),
        )
        if category in consent_required:
            cond = or_(cond, ~exists().where(consent.c.lead_id == lead.c.id, consent.c.category == category,
                                             consent.c.status == "granted"))
    out: set[int] = set()
    for part in chunks(ids):
        out.update(conn.execute(select(lead.c.id).where(lead.c.id.in_(part), cond)).scalars())
    return out


def suppress(
    conn: Connection, *, email: str, lead_id: int | None, reason: str, detail: str, now: datetime
) -> None:
    """Add a suppression (idempotent per email + reason). A bounce also marks the lead `bounced`."""
    if reason not in REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    email = email.strip().lower()
    present = conn.execute(select(suppression.c.id).where(suppression.c.email == email,
                                                          suppression.c.reason == reason)).first()
    if present is None:
        conn.execute(insert(suppression).values(email=email, lead_id=lead_id, reason=reason,
                                                detail=detail[:2000], created_at=now))
    if reason == "bounce" and lead_id is not None:
        # date and reason of the (first) hard bounce: what Salesforce's EmailBouncedDate/Reason carry
        conn.execute(update(lead).where(lead.c.id == lead_id, lead.c.bounced.is_not(True))
                     .values(bounced=True, bounced_at=now, updated_at=now,
                             bounce_reason=_blank(detail, email)[:255] or None))


def _blank(text: str, email: str) -> str:
    """`text` without the address (relays quote it in their replies; the lead row already holds it once)."""
    return re.sub(re.escape(email), "<recipient>", text, flags=re.I)


def lift(conn: Connection, email: str, reason: str | None = None) -> int:
    """Remove suppressions for an address (all reasons, or one); returns how many were removed."""
    stmt = suppression.delete().where(suppression.c.email == email.strip().lower())
    if reason:
        stmt = stmt.where(suppression.c.reason == reason)
    return conn.execute(stmt).rowcount or 0
