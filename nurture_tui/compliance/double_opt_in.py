"""Double opt-in: a confirmation email with a signed link; the consent is granted only when the person
confirms (docs/compliance.md#double-opt-in).

The link is `<base_url>/confirm/<token>`, a `mail.tokens` token of kind `double_opt_in` signed with the
workspace secret like the tracking links: it names the lead, the category (in the message-ref slot) and the
id of this confirmation request (in the url slot), and expires after `compliance.confirm_ttl_days`. The
request id is stored on the consent row, so the link of an older request (the person signed up twice)
confirms nothing. The mail is transactional (no tracking, no unsubscribe footer) and goes through the
outbox like any other message."""

from __future__ import annotations

import html as _html
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from ..batching import chunks
from ..config import Settings
from ..errors import ValidationError
from ..mail.suppression import TRANSACTIONAL
from ..mail.tokens import TokenData, TokenSigner
from ..store import audit
from ..store.tables import consent, lead, outbox
from .resubscribe import resubscribe

KIND = "double_opt_in"


def confirm_url(settings: Settings, lead_id: int, category: str, request_id: str, now: datetime) -> str:
    expires = now + timedelta(days=settings.compliance.confirm_ttl_days)
    token = TokenSigner(settings.mail.secret_key.get_secret_value()).sign(KIND, lead_id, category, expires,
                                                                          request_id)
    return f"{settings.mail.base_url.rstrip('/')}/confirm/{token}"


def _bodies(settings: Settings, category: str, url: str) -> tuple[str, str]:
    mail = settings.mail
    what = category.replace("_", " ")
    text = (f"Please confirm that you want to receive {what} emails from {mail.from_name}:\n\n{url}\n\n"
            "If you did not ask for this, ignore this message: you will not be subscribed.\n\n"
            f"{mail.postal_address}\n")
    e = _html.escape
    html = (f"<html><body><p>Please confirm that you want to receive {e(what)} emails from "
            f"{e(mail.from_name)}.</p><p><a href=\"{e(url, quote=True)}\">Confirm my subscription</a></p>"
            "<p>If you did not ask for this, ignore this message: you will not be subscribed.</p>"
            f"<p style=\"font-size:12px;color:#666666\">{e(mail.postal_address)}</p></body></html>")
    return html, text


def queue_confirmations(conn: Connection, requests: dict[int, str], category: str, now: datetime,
                        settings: Settings) -> int:
    """Queue one confirmation mail per lead id → request id; returns how many were queued."""
    rows = []
    for part in chunks(sorted(requests)):
        for lid, email in conn.execute(select(lead.c.id, lead.c.email).where(lead.c.id.in_(part))):
            url = confirm_url(settings, lid, category, requests[lid], now)
            html, text = _bodies(settings, category, url)
            rows.append({
                "idempotency_key": f"doi:{lid}:{category}:{requests[lid]}", "lead_id": lid,
                "category": TRANSACTIONAL, "to_email": email, "subject": settings.compliance.confirm_subject,
                "html": html, "text": text, "headers": {}, "status": "queued", "attempts": 0, "next_try_at": now,
                "created_at": now,
            })
    if rows:
        conn.execute(insert(outbox), rows)
    return len(rows)


def check_link(token: str, now: datetime, settings: Settings) -> TokenData:
    """The link's data if its signature, kind and expiry are right (ValidationError otherwise)."""
    return TokenSigner(settings.mail.secret_key.get_secret_value()).verify(token, now, kind=KIND)


@dataclass(frozen=True)
class Confirmed:
    lead_id: int
    category: str
    already: bool  # the link had been used before: nothing changed


def confirm(conn: Connection, token: str, now: datetime, settings: Settings, ip: str | None) -> Confirmed:
    """Grant the consent a confirmation link stands for (idempotent for the same link)."""
    data = check_link(token, now, settings)
    lead_id, category, request_id = data.lead_id, data.message_ref, data.url
    row = conn.execute(select(consent.c.status, consent.c.token).where(
        consent.c.lead_id == lead_id, consent.c.category == category)).first()
    if row is None or row.token != request_id:
        raise ValidationError("token", "this confirmation link is no longer valid (a newer one was sent, "
                                       "or the subscription was withdrawn)")
    if row.status == "granted":
        return Confirmed(lead_id, category, True)
    if row.status != "pending":
        raise ValidationError("token", f"this subscription was {row.status}; sign up again to confirm")
    conn.execute(update(consent).where(consent.c.lead_id == lead_id, consent.c.category == category).values(
        status="granted", at=now, detail=f"confirmed by double opt-in from {ip or 'an unknown address'}"[:500]))
    resubscribe(conn, [lead_id], category, now, settings)  # the person's own request (resubscribe.py)
    audit.record(conn, at=now, user="double-opt-in", action="consent.confirm", entity="lead", entity_id=lead_id,
                 after={"category": category, "request": request_id})
    return Confirmed(lead_id, category, False)
