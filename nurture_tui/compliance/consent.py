"""Consent records per lead and subscription category: recording them (import, form, API, Salesforce, an
operator), reading them back. Which categories need consent before a send is configuration
(`compliance.consent_required` / `double_opt_in`); the send check itself is `mail.suppression.suppressed_ids`.

Recording is set-based (a whole import chunk in a few statements). A lead already granted keeps its
original record (the first proof is the one that matters); a lead waiting for a double opt-in confirmation
is not sent a second one; a withdrawn consent is granted again only by the person (form, API), never by a
file (the same rule as `opted_out`, which an import can set but never clear)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from ..batching import chunks
from ..config import Settings
from ..errors import ValidationError
from ..mail.subscriptions import known_categories
from ..store.models.compliance import CONSENT_SOURCES, LEGAL_BASES
from ..store.tables import consent
from .double_opt_in import queue_confirmations
from .resubscribe import resubscribe

#: Sources that are the person's own action (may re-grant a withdrawn consent and re-subscribe).
PERSONAL_SOURCES = frozenset({"form", "api"})


@dataclass(frozen=True)
class ConsentRecord:
    category: str
    status: str
    source: str
    legal_basis: str
    at: datetime
    form_id: str | None
    ip: str | None
    token: str | None
    requested_at: datetime | None
    detail: str | None

    def line(self) -> str:
        """One line for the lead detail screen."""
        proof = ", ".join(p for p in (f"form {self.form_id}" if self.form_id else "",
                                      f"IP {self.ip}" if self.ip else "",
                                      "double opt-in" if self.token and self.status == "granted" else "") if p)
        when = self.at.strftime("%Y-%m-%d %H:%M")
        return f"{self.category}: {self.status} ({self.source}, {self.legal_basis}, {when}" + \
            (f"; {proof})" if proof else ")")


@dataclass
class ConsentResult:
    granted: int = 0
    pending: int = 0  # double opt-in: confirmation mail queued
    unchanged: int = 0  # already granted, or already waiting for confirmation
    refused: int = 0  # withdrawn earlier: a file does not grant it again


def check_category(conn: Connection, category: str, settings: Settings) -> str:
    known = known_categories(conn, settings.mail)
    if category not in known:
        raise ValidationError("category", f"unknown subscription category {category!r} (known: {', '.join(known)})")
    return category


def record_consent(conn: Connection, lead_ids: list[int], category: str, *, source: str, now: datetime,
                   settings: Settings, legal_basis: str = "consent", form_id: str | None = None,
                   ip: str | None = None, detail: str | None = None) -> ConsentResult:
    """Record that these leads consented to `category` (status `pending` + a confirmation mail for a double
    opt-in category, else `granted`)."""
    check_category(conn, category, settings)
    if source not in CONSENT_SOURCES:
        raise ValidationError("source", f"expected one of {', '.join(CONSENT_SOURCES)}, got {source!r}")
    if legal_basis not in LEGAL_BASES:
        raise ValidationError("legal_basis", f"expected one of {', '.join(LEGAL_BASES)}, got {legal_basis!r}")
    doi = category in settings.compliance.double_opt_in
    result = ConsentResult()
    ids = sorted(set(lead_ids))
    current: dict[int, str] = {}
    for part in chunks(ids):
        current.update((r.lead_id, r.status) for r in conn.execute(select(consent.c.lead_id, consent.c.status)
                                                                   .where(consent.c.category == category,
                                                                          consent.c.lead_id.in_(part))))
    personal = source in PERSONAL_SOURCES
    fresh: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    for lid in ids:
        status = current.get(lid)
        if status == "granted" or (status == "pending" and doi):
            result.unchanged += 1
            continue
        if status == "withdrawn" and not personal:
            result.refused += 1
            continue
        row = {"lead_id": lid, "category": category, "status": "pending" if doi else "granted", "source": source,
               "legal_basis": legal_basis, "at": now, "form_id": form_id, "ip": ip,
               "token": secrets.token_urlsafe(12) if doi else None, "requested_at": now if doi else None,
               "detail": detail[:500] if detail else None}
        (fresh if status is None else again).append(row)
    if fresh:
        conn.execute(insert(consent), fresh)
    if again:
        conn.execute(update(consent).where(consent.c.lead_id == bindparam("b_lead"),
                                           consent.c.category == bindparam("b_category")),
                     [{**{k: v for k, v in r.items() if k not in ("lead_id", "category")},
                       "b_lead": r["lead_id"], "b_category": category} for r in again])
    written = fresh + again
    if doi:
        result.pending = len(written)
        queue_confirmations(conn, {r["lead_id"]: r["token"] for r in written}, category, now, settings)
    else:
        result.granted = len(written)
        if personal and written:  # the person asked for this category (compliance/resubscribe.py)
            resubscribe(conn, [r["lead_id"] for r in written], category, now, settings)
    return result


def consent_of(conn: Connection, lead_id: int) -> list[ConsentRecord]:
    """A lead's consent records, by category."""
    c = consent.c
    return [ConsentRecord(r.category, r.status, r.source, r.legal_basis, r.at, r.form_id, r.ip, r.token,
                          r.requested_at, r.detail)
            for r in conn.execute(select(c.category, c.status, c.source, c.legal_basis, c.at, c.form_id, c.ip,
                                         c.token, c.requested_at, c.detail)
                                  .where(c.lead_id == lead_id).order_by(c.category))]
