"""The append-only engagement log, and Salesforce campaigns/opportunities used by rules and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, fk_field, id_field, json_field

#: Activity kinds. Engagement kinds come from tracking; the rest are written by the engine and services.
ACTIVITY_KINDS = (
    "sent", "open", "click", "form", "page_view", "reply", "unsubscribe", "bounce", "meeting",
    "campaign_response", "opportunity", "score_change", "stage_change", "mql", "entered", "exited", "goal",
)


class Activity(SQLModel, table=True):
    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_lead_at", "lead_id", "at"),
        # Both cover behavioural segment conditions (segments/compiler.py) without a table lookup per
        # activity row: kind + window → lead ids, and kind → lead ids in lead order (counts per lead
        # without a sort; per-lead probes `kind = ? AND lead_id = ? AND at > ?`).
        Index("ix_activity_kind_at", "kind", "at", "lead_id", "bot"),
        Index("ix_activity_kind_lead_at", "kind", "lead_id", "at", "bot"),
        # Reports (reports/emails.py, reports/splits.py): a message's opens, clicks and unsubscribes, and a
        # version's sends per step. Partial: only mail and sequence activity carries these ids.
        Index("ix_activity_outbox_kind", "outbox_id", "kind", "bot",
              sqlite_where=text("outbox_id IS NOT NULL"), postgresql_where=text("outbox_id IS NOT NULL")),
        Index("ix_activity_version_node", "version_id", "node_id", "kind", "at", "lead_id", "outbox_id",
              sqlite_where=text("version_id IS NOT NULL"), postgresql_where=text("version_id IS NOT NULL")),
    )

    id: int | None = id_field()
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, ondelete="CASCADE")
    kind: str = Field(max_length=24)
    at: datetime = dt_field(nullable=False)
    sequence_id: int | None = Field(default=None, sa_type=BigId)
    version_id: int | None = Field(default=None, sa_type=BigId)
    node_id: str | None = Field(default=None, max_length=80)
    template_id: int | None = Field(default=None, sa_type=BigId)
    outbox_id: int | None = Field(default=None, sa_type=BigId)
    url: str | None = Field(default=None, max_length=2048)
    bot: bool = False  # flagged as a scanner/prefetch: excluded from triggers and scores
    meta: dict[str, Any] = json_field()


class ActivityPending(SQLModel, table=True):
    """Activities committed whose effects (score, segments, `wait_for` wake-ups, goal / exit rules, entry)
    are not applied yet. On PostgreSQL the tracking writer answers a hit once its row is committed and
    applies the effects in a second transaction moments later (web/ingest.py); a crash in between leaves
    the row listed here and the next writer applies it. Scoring's cap counts leave listed rows out."""

    __tablename__ = "activity_pending"

    activity_id: int = Field(primary_key=True, foreign_key="activity.id", sa_type=BigId, ondelete="CASCADE",
                             sa_column_kwargs={"autoincrement": False})


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = id_field()
    sf_id: str | None = Field(default=None, unique=True, max_length=18)
    name: str = Field(max_length=255, index=True)
    type: str | None = Field(default=None, max_length=60)
    status: str | None = Field(default=None, max_length=40)
    is_active: bool = True
    sf_modstamp: datetime | None = dt_field()


class CampaignMember(SQLModel, table=True):
    __tablename__ = "campaign_member"

    id: int | None = id_field()
    sf_id: str | None = Field(default=None, unique=True, max_length=18)
    campaign_id: int = Field(foreign_key="campaign.id", sa_type=BigId, index=True, ondelete="CASCADE")
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, index=True, ondelete="CASCADE")
    status: str = Field(default="Sent", max_length=40)
    responded: bool = False
    created_at: datetime | None = dt_field()
    sf_modstamp: datetime | None = dt_field()


class Opportunity(SQLModel, table=True):
    __tablename__ = "opportunity"

    id: int | None = id_field()
    sf_id: str | None = Field(default=None, unique=True, max_length=18)
    account_id: int | None = fk_field("account.id")
    lead_id: int | None = fk_field("lead.id")  # the converted lead / primary contact
    name: str = Field(default="", max_length=255)
    stage: str | None = Field(default=None, max_length=40)
    amount: float | None = None
    is_closed: bool = False
    is_won: bool = False
    close_date: datetime | None = dt_field()
    created_at: datetime | None = dt_field(index=True)
    sf_modstamp: datetime | None = dt_field()
