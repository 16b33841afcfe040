"""Templates, the outbox of rendered messages, subscriptions by category, and suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, id_field, json_field


class Template(SQLModel, table=True):
    __tablename__ = "template"

    id: int | None = id_field()
    name: str = Field(unique=True, max_length=120)
    subject: str = Field(default="", max_length=500)
    html: str = ""
    text: str | None = None
    stage: str | None = Field(default=None, max_length=20)
    category: str = Field(default="marketing", max_length=60)  # subscription category
    version: int = 1  # bumped on every saved change; template_version keeps each one
    created_at: datetime | None = dt_field()
    updated_at: datetime | None = dt_field()


class TemplateVersion(SQLModel, table=True):
    __tablename__ = "template_version"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: int | None = id_field()
    template_id: int = Field(foreign_key="template.id", sa_type=BigId, index=True)
    number: int
    subject: str = ""
    html: str = ""
    text: str | None = None
    created_at: datetime | None = dt_field()


class Outbox(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_try_at"),
        # Reports: the send cohort of a period (reports/emails.py), with what the per-cell counts read.
        Index("ix_outbox_created", "created_at", "status", "sequence_id", "node_id", "template_id", "lead_id"),
    )

    id: int | None = id_field()
    idempotency_key: str = Field(unique=True, max_length=200)  # enrollment:node:attempt
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, index=True, ondelete="CASCADE")
    enrollment_id: int | None = Field(default=None, sa_type=BigId)
    sequence_id: int | None = Field(default=None, sa_type=BigId)
    node_id: str | None = Field(default=None, max_length=80)
    template_id: int | None = Field(default=None, sa_type=BigId)
    template_version: int | None = None
    category: str = Field(default="marketing", max_length=60)
    to_email: str = Field(max_length=254)
    subject: str = ""
    html: str = ""
    text: str = ""
    headers: dict[str, Any] = json_field()
    status: str = Field(default="queued", max_length=12)  # queued/sending/sent/failed/bounced/suppressed
    attempts: int = 0
    next_try_at: datetime | None = dt_field()
    last_error: str | None = None
    message_id: str | None = Field(default=None, max_length=255)
    # Local part of the Message-ID; tracking tokens carry it, so the web app finds the row by it.
    message_ref: str | None = Field(default=None, max_length=40, unique=True)
    # The dispatcher process that moved the row to `sending` (engine.lease holder: host, pid, boot id);
    # a successor on the same host re-sends at once when that process is dead.
    claimed_by: str | None = Field(default=None, max_length=200)
    created_at: datetime | None = dt_field()
    sent_at: datetime | None = dt_field()


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"

    lead_id: int = Field(foreign_key="lead.id", primary_key=True, sa_type=BigId, ondelete="CASCADE")
    category: str = Field(primary_key=True, max_length=60)
    opted_in: bool = True
    changed_at: datetime | None = dt_field()


class Suppression(SQLModel, table=True):
    __tablename__ = "suppression"

    id: int | None = id_field()
    email: str = Field(max_length=254, index=True)
    lead_id: int | None = Field(default=None, sa_type=BigId, index=True)
    reason: str = Field(max_length=20)  # bounce / complaint / manual / unsubscribe
    detail: str = ""
    created_at: datetime | None = dt_field()


class MailFeedback(SQLModel, table=True):
    """One processed bounce (DSN, ESP event) or complaint (ARF, ESP event), per recipient (mail/bounces.py).

    `dedupe_key` makes processing idempotent: the same report read twice (a maildir re-scan, an IMAP
    re-read, a webhook retry) is recognised and counted once. Nothing personal is kept: the lead by id, the
    recipient address replaced by `<recipient>` in `reason` (erasure then has nothing to scrub here)."""

    __tablename__ = "mail_feedback"
    __table_args__ = (Index("ix_mail_feedback_lead_kind", "lead_id", "kind", "created_at"),)

    id: int | None = id_field()
    dedupe_key: str = Field(unique=True, max_length=64)
    kind: str = Field(max_length=12)  # hard_bounce / soft_bounce / delayed / complaint / malformed
    outcome: str = Field(max_length=12)  # applied / unmatched / ignored / malformed
    source: str = Field(max_length=40)  # maildir / imap / webhook:sendgrid / webhook:generic
    lead_id: int | None = Field(default=None, sa_type=BigId)
    outbox_id: int | None = Field(default=None, sa_type=BigId)
    status: str | None = Field(default=None, max_length=16)  # enhanced status code, e.g. 5.1.1
    reason: str = Field(default="", max_length=500)
    received_at: datetime | None = dt_field()  # when the report says it happened
    created_at: datetime | None = dt_field()
