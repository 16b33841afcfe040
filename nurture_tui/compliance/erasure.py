"""`nurture leads erase EMAIL…`: the right to be forgotten (GDPR art. 17), docs/compliance.md#erasure.

Per address, in the caller's transaction:
1. the lead row is anonymised in place (its id stays, so reports, counters and rollups stay right): the
   address becomes `erased-<id>@erased.invalid`, identifying fields and custom fields are cleared;
2. the rows that belong to the lead lose their personal parts: activities (IP, user agent, other meta,
   the URL's query and fragment), outbox messages (recipient, subject, bodies, headers, errors), MQL
   summaries and reasons, Salesforce and webhook outbox payloads (pending ones cancelled), the lead's audit
   details and sync errors; tags, subscriptions, consent records and suppressions are deleted; its live
   enrollments exit (reason `erased`, with their counters and `exited` activity);
3. a sweep of every text and JSON column of every table (reflected from the metadata, so tables added
   later are covered) replaces any remaining mention of the address, and in the lead's own rows of its
   names, by `[erased]`;
4. a suppression `erased` with a salted hash of the address (`compliance.erased`) blocks re-imports and
   Salesforce pulls; the configured Salesforce action is queued; one audit entry without erased data.

The sweep costs one scan per text column (an erasure is rare; a large workspace takes seconds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import (
    JSON,
    Connection,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from ..activity import ActivityEvent
from ..config import Settings
from ..engine.lifecycle import Live, finish
from ..engine.node_stats import CounterBatch
from ..errors import NotFoundError, ValidationError
from ..salesforce.outbox import enqueue_erasure
from ..store import audit
from ..store.models import metadata
from ..store.tables import (
    activity,
    consent,
    enrollment,
    lead,
    lead_tag,
    mql,
    outbox,
    sf_outbox,
    subscription,
    suppression,
    sync_error,
    webhook_outbox,
)
from ..store.tables import audit as audit_t
from .erased import ERASED, email_hash, erased_emails

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never deliverable
MARK = "[erased]"
#: Activity meta keys that say nothing about the person (kept so reports and bot filtering stay right).
KEEP_META = frozenset({"bot_reason", "categories", "source", "code", "hard", "kind", "reason"})
#: Lead columns cleared: everything that identifies or describes the person rather than the fit.
CLEARED = ("first_name", "last_name", "title", "company", "phone", "city", "state", "timezone", "lead_source",
           "bounce_reason")


@dataclass
class Erasure:
    email: str
    lead_id: int | None
    already: bool = False  # erased before: nothing to do
    salesforce: str | None = None  # the queued Salesforce action, if any
    scrubbed: dict[str, int] = field(default_factory=dict)  # table → rows changed

    def line(self) -> str:
        if self.already:
            return f"{self.email}: already erased; nothing left to remove"
        tables = ", ".join(f"{t} {n}" for t, n in sorted(self.scrubbed.items()) if n)
        sf = f"; Salesforce: {self.salesforce} queued" if self.salesforce else ""
        return f"{self.email}: erased lead {self.lead_id} ({tables or 'no other rows'}){sf}"


def placeholder(lead_id: int) -> str:
    return f"erased-{lead_id}@{ERASED_DOMAIN}"


def normalise(email: str) -> str:
    text = email.strip().lower()
    if "@" not in text or len(text) > 254 or any(c.isspace() for c in text):
        raise ValidationError(email, "not an email address")
    return text


def check_known(conn: Connection, emails: Iterable[str]) -> list[str]:
    """The normalised addresses; NotFoundError names the first that is neither a lead nor erased."""
    wanted = [normalise(e) for e in emails]
    found = set(conn.execute(select(lead.c.email).where(lead.c.email.in_(wanted))).scalars())
    erased = erased_emails(conn, set(wanted) - found)
    for email in wanted:
        if email not in found and email not in erased:
            raise NotFoundError(f"{email}: no lead with this address (and none erased)")
    return list(dict.fromkeys(wanted))


def erase(conn: Connection, email: str, *, now: datetime, settings: Settings, user: str) -> Erasure:
    """Erase one person (see the module doc); idempotent. NotFoundError for an address never seen."""
    email = normalise(email)
    row = conn.execute(select(lead).where(lead.c.email == email)).first()
    if row is None:
        if erased_emails(conn, [email]):
            return Erasure(email, None, already=True)
        raise NotFoundError(f"{email}: no lead with this address (and none erased)")
    lid = int(row.id)
    if email == placeholder(lid):  # the stand-in address of an erased lead
        return Erasure(email, lid, already=True)
    names = [n for n in (f"{row.first_name or ''} {row.last_name or ''}".strip(), row.first_name, row.last_name,
                         row.phone) if n and len(n.strip()) >= 2]
    out = Erasure(email, lid)
    n = out.scrubbed
    n["activity"] = _activities(conn, lid)
    n["enrollment"] = _end_enrollments(conn, lid, now)
    n["outbox"] = conn.execute(update(outbox).where(outbox.c.lead_id == lid).values(
        to_email=placeholder(lid), subject="", html="", text="", headers={}, last_error=None)).rowcount or 0
    n["mql"] = conn.execute(update(mql).where(mql.c.lead_id == lid).values(
        summary="", why={}, reject_reason=None)).rowcount or 0
    n["sf_outbox"] = conn.execute(update(sf_outbox).where(sf_outbox.c.lead_id == lid).values(
        payload={}, last_error=None,
        status=func.coalesce(func.nullif(sf_outbox.c.status, "pending"), "cancelled"))).rowcount or 0
    n["webhook_outbox"] = conn.execute(update(webhook_outbox).where(webhook_outbox.c.lead_id == lid).values(
        body={}, last_error=None,
        status=func.coalesce(func.nullif(webhook_outbox.c.status, "pending"), "failed"))).rowcount or 0
    n["audit"] = conn.execute(update(audit_t).where(audit_t.c.entity == "lead", audit_t.c.entity_id == str(lid))
                              .values(before=None, after=None)).rowcount or 0
    if row.sf_id:
        n["sync_error"] = conn.execute(update(sync_error).where(sync_error.c.record_id == row.sf_id).values(
            payload={}, message=MARK)).rowcount or 0
    for table in (lead_tag, subscription, consent):
        n[table.name] = conn.execute(delete(table).where(table.c.lead_id == lid)).rowcount or 0
    n["suppression"] = conn.execute(delete(suppression).where(
        or_(suppression.c.lead_id == lid, suppression.c.email == email))).rowcount or 0
    conn.execute(update(lead).where(lead.c.id == lid).values(
        email=placeholder(lid), custom={}, opted_out=True, updated_at=now, **dict.fromkeys(CLEARED)))
    for name, count in _sweep(conn, lid, email, names).items():
        n[name] = n.get(name, 0) + count
    conn.execute(insert(suppression).values(email=email_hash(conn, email), lead_id=lid, reason=ERASED, detail="",
                                            created_at=now))
    action = settings.compliance.salesforce_erasure
    if row.sf_id and action != "none":
        enqueue_erasure(conn, lid, action, now)
        out.salesforce = action
    audit.record(conn, at=now, user=user, action="leads.erase", entity="lead", entity_id=lid,
                 after={"salesforce": out.salesforce})
    return out


def _end_enrollments(conn: Connection, lead_id: int, now: datetime) -> int:
    """The lead's live enrollments exit (reason `erased`) as an exit rule would end them: counters and an
    `exited` activity, so a sequence's figures stay right and no later step acts on the erased lead."""
    e = enrollment.c
    live = [Live(r.id, r.lead_id, r.sequence_id, r.version_id, r.node_id, r.steps) for r in conn.execute(
        select(e.id, e.lead_id, e.sequence_id, e.version_id, e.node_id, e.steps)
        .where(e.lead_id == lead_id, e.status.in_(("active", "waiting"))))]
    if not live:
        return 0
    counters = CounterBatch()
    acts: list[ActivityEvent] = []
    finish(conn, [(it, "exited", ERASED) for it in live], now, counters, acts)
    if acts:
        conn.execute(insert(activity), [a.row() for a in acts])
    counters.flush(conn)
    return len(live)


def _strip_query(url: str | None) -> str | None:
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _activities(conn: Connection, lead_id: int) -> int:
    rows = conn.execute(select(activity.c.id, activity.c.url, activity.c.meta)
                        .where(activity.c.lead_id == lead_id)).all()
    changes = []
    for r in rows:
        meta = r.meta if isinstance(r.meta, dict) else {}
        kept = {k: v for k, v in meta.items() if k in KEEP_META}
        url = _strip_query(r.url)
        if kept != meta or url != r.url:
            changes.append({"b_id": r.id, "url": url, "meta": kept})
    if changes:
        conn.execute(update(activity).where(activity.c.id == bindparam("b_id")), changes)
    return len(changes)


def _text_columns(table: Table) -> list[Any]:
    def text_like(t: Any) -> bool:
        while isinstance(t, TypeDecorator):  # e.g. SQLModel's AutoString
            t = t.impl_instance
        return isinstance(t, (String, Text, JSON))

    return [c for c in table.columns if text_like(c.type) and not c.primary_key]


def _variants(term: str) -> list[str]:
    """The term as written, and as JSON text escapes it (SQLite stores JSON with \\u escapes)."""
    low = term.lower()
    escaped = json.dumps(low)[1:-1]
    return [low] if escaped == low else [low, escaped]


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(MARK, value)
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    return value


def _address(email: str) -> str:
    """The address as a whole word: not part of a longer one (`ann@x.com` is not in `joann@x.com`)."""
    return rf"(?<![\w.+-]){re.escape(email)}(?![\w-]|\.\w)"


def _sweep(conn: Connection, lead_id: int, email: str, names: list[str]) -> dict[str, int]:
    """Replace the address everywhere, and the person's names in rows that belong to the lead."""
    everywhere = re.compile(_address(email), re.I)
    own = re.compile("|".join([_address(email), *(rf"(?<!\w){re.escape(n)}(?!\w)" for n in
                                                   sorted(names, key=len, reverse=True))]), re.I)
    changed: dict[str, int] = {}
    for table in metadata.sorted_tables:
        cols = _text_columns(table)
        pk = list(table.primary_key.columns)
        if not cols or not pk:
            continue
        owner = table.c.lead_id if "lead_id" in table.c else None
        extra = [owner] if owner is not None and owner not in pk else []
        for col in cols:
            text = func.lower(cast(col, Text))
            hit = or_(*(text.contains(v, autoescape=True) for v in _variants(email)))
            if owner is not None and names:
                hit = or_(hit, and_(owner == lead_id, or_(*(text.contains(v, autoescape=True)
                                                            for n in names for v in _variants(n)))))
            updates = []
            for r in conn.execute(select(*pk, *extra, col).where(hit)).all():
                mine = owner is not None and r._mapping[owner] == lead_id
                new = _scrub(r[-1], own if mine else everywhere)
                if new != r[-1]:
                    updates.append({**{f"b_{c.name}": r._mapping[c] for c in pk}, f"v_{col.name}": new})
            if updates:
                cond = and_(*(c == bindparam(f"b_{c.name}") for c in pk))
                conn.execute(update(table).where(cond).values({col.name: bindparam(f"v_{col.name}", type_=col.type)}),
                             updates)
                changed[table.name] = changed.get(table.name, 0) + len(updates)
    return changed
