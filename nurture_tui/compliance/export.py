"""`nurture leads export-data EMAIL --output FILE`: everything nurture holds about one person, as JSON
(GDPR art. 15 access and art. 20 portability; docs/compliance.md#access-requests)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, or_, select

from ..errors import NotFoundError
from ..scoring.history import history
from ..store.tables import (
    account,
    activity,
    campaign,
    campaign_member,
    consent,
    enrollment,
    lead,
    lead_tag,
    mail_feedback,
    mql,
    outbox,
    sequence,
    sf_outbox,
    subscription,
    suppression,
    template,
    user,
)
from .erased import erased_emails
from .erasure import normalise

FORMAT = "nurture.personal-data/1"


def _rows(conn: Connection, stmt: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _without(table: Table, *names: str) -> list[Any]:
    return [c for c in table.columns if c.name not in names]


def collect(conn: Connection, email: str, now: datetime) -> dict[str, Any]:
    """The person's data as one JSON-ready document; NotFoundError for an unknown address."""
    email = normalise(email)
    person = conn.execute(select(lead).where(lead.c.email == email)).mappings().first()
    if person is None:
        if erased_emails(conn, [email]):
            raise NotFoundError(f"{email}: erased at the person's request; nothing is held about them")
        raise NotFoundError(f"{email}: no lead with this address")
    lid = person["id"]
    fields = dict(person)
    if person["owner_id"] is not None:
        fields["owner"] = conn.execute(select(user.c.name).where(user.c.id == person["owner_id"])).scalar()
    if person["account_id"] is not None:
        fields["account"] = conn.execute(select(account.c.name).where(account.c.id == person["account_id"])).scalar()
    scores = [{"at": c.at, "points": c.points, "reason": c.reason, "kind": c.kind, "activity_id": c.activity_id}
              for c in history(conn, lid)]
    return {
        "format": FORMAT,
        "exported_at": now,
        "email": email,
        "lead": fields,
        "tags": list(conn.execute(select(lead_tag.c.tag).where(lead_tag.c.lead_id == lid)
                                  .order_by(lead_tag.c.tag)).scalars()),
        "subscriptions": _rows(conn, select(subscription.c.category, subscription.c.opted_in,
                                            subscription.c.changed_at).where(subscription.c.lead_id == lid)),
        "consent": _rows(conn, select(*_without(consent, "lead_id")).where(consent.c.lead_id == lid)
                         .order_by(consent.c.category)),
        "suppressions": _rows(conn, select(suppression.c.reason, suppression.c.detail, suppression.c.created_at)
                              .where(or_(suppression.c.lead_id == lid, suppression.c.email == email))),
        "activities": _rows(conn, select(activity.c.at, activity.c.kind, activity.c.url, activity.c.meta,
                                         template.c.name.label("template"), activity.c.id)
                            .select_from(activity.outerjoin(template, template.c.id == activity.c.template_id))
                            .where(activity.c.lead_id == lid).order_by(activity.c.at, activity.c.id)),
        "messages": _rows(conn, select(outbox.c.created_at, outbox.c.sent_at, outbox.c.status, outbox.c.category,
                                       outbox.c.subject, outbox.c.to_email, template.c.name.label("template"),
                                       outbox.c.message_id)
                          .select_from(outbox.outerjoin(template, template.c.id == outbox.c.template_id))
                          .where(outbox.c.lead_id == lid).order_by(outbox.c.created_at, outbox.c.id)),
        "bounces_and_complaints": _rows(conn, select(*_without(mail_feedback, "lead_id", "dedupe_key"))
                                        .where(mail_feedback.c.lead_id == lid).order_by(mail_feedback.c.id)),
        "score": {"stored": person["score"], "grade": person["grade"], "history": scores},
        "enrollments": _rows(conn, select(sequence.c.name.label("sequence"), enrollment.c.status,
                                          enrollment.c.node_id, enrollment.c.entered_at, enrollment.c.exited_at,
                                          enrollment.c.exit_reason)
                             .join(sequence, sequence.c.id == enrollment.c.sequence_id)
                             .where(enrollment.c.lead_id == lid).order_by(enrollment.c.entered_at)),
        "mqls": _rows(conn, select(*_without(mql, "lead_id")).where(mql.c.lead_id == lid).order_by(mql.c.id)),
        "campaigns": _rows(conn, select(campaign.c.name.label("campaign"), campaign_member.c.status,
                                        campaign_member.c.responded, campaign_member.c.created_at)
                           .join(campaign, campaign.c.id == campaign_member.c.campaign_id)
                           .where(campaign_member.c.lead_id == lid)),
        "salesforce_pending": _rows(conn, select(sf_outbox.c.sobject, sf_outbox.c.op, sf_outbox.c.payload,
                                                 sf_outbox.c.created_at)
                                    .where(sf_outbox.c.lead_id == lid, sf_outbox.c.status == "pending")),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def export_data(conn: Connection, email: str, output: Path, now: datetime) -> dict[str, Any]:
    """Write the document to `output` (atomically: a half-written file never replaces a good one)."""
    doc = collect(conn, email, now)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(json.dumps(doc, default=_json_default, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(output)
    return doc
