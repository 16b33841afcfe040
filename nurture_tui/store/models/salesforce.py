"""Salesforce sync bookkeeping: pending pushes, watermarks, and per-record errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, id_field, json_field


class SfOutbox(SQLModel, table=True):
    __tablename__ = "sf_outbox"
    __table_args__ = (Index("ix_sf_outbox_status_id", "status", "id"),)

    id: int | None = id_field()
    sobject: str = Field(max_length=40)  # Lead / Contact / Task / CampaignMember
    op: str = Field(max_length=10)  # update / create / upsert
    lead_id: int | None = Field(default=None, sa_type=BigId, index=True)
    record_id: str | None = Field(default=None, max_length=18)
    payload: dict[str, Any] = json_field()
    status: str = Field(default="pending", max_length=10)  # pending / sent / error
    attempts: int = 0  # transient per-record failures in a row (salesforce/backoff.py: capped retry)
    last_error: str | None = None
    created_at: datetime | None = dt_field()
    sent_at: datetime | None = dt_field()
    # unix seconds: a pending row (and its lead's other rows) is not pushed again before this (backoff)
    retry_at: float | None = Field(default=None, index=True)


class SfLeadSync(SQLModel, table=True):
    """Per lead: what nurture last pushed to Salesforce, and whether anything pushable changed since.

    The change capture is database triggers (store/sf_capture.py) on the lead columns nurture pushes and on
    enrollment status: each change bumps `seq` and keeps the time of the oldest unpushed change
    (`dirty_since`), so hot paths pay one small upsert and the push reads the lead's *current* values
    (the latest value wins however often it changed). `pushed` holds the Salesforce field values last
    accepted by Salesforce, so only real differences are sent and a pulled echo of them is recognised."""

    __tablename__ = "sf_lead_sync"

    lead_id: int = Field(foreign_key="lead.id", primary_key=True, sa_type=BigId, ondelete="CASCADE")
    seq: int = 0  # bumped by every captured change
    dirty_since: float | None = Field(default=None, index=True)  # unix seconds of the oldest unpushed change
    pushed: dict[str, Any] = json_field()  # Salesforce field → value last accepted by Salesforce
    pushed_at: datetime | None = dt_field()
    error_seq: int | None = None  # `seq` when Salesforce last rejected the lead's create/update (retried on change)
    error: str | None = None
    attempts: int = 0  # transient per-record failures in a row (live.py: capped retry with backoff)
    retry_at: float | None = None  # unix seconds: not pushed again before this (backoff after a transient failure)


class SyncState(SQLModel, table=True):
    __tablename__ = "sync_state"

    sobject: str = Field(primary_key=True, max_length=40)
    watermark: datetime | None = dt_field()
    last_run_at: datetime | None = dt_field()
    last_full_at: datetime | None = dt_field()
    status: str = Field(default="idle", max_length=20)
    detail: dict[str, Any] = json_field()


class SyncError(SQLModel, table=True):
    __tablename__ = "sync_error"

    id: int | None = id_field()
    sobject: str = Field(max_length=40)
    direction: str = Field(max_length=4)  # pull / push
    record_id: str | None = Field(default=None, max_length=18)
    sf_outbox_id: int | None = Field(default=None, sa_type=BigId)
    lead_id: int | None = Field(default=None, sa_type=BigId, index=True)  # the local lead a push error is about
    code: str | None = Field(default=None, max_length=80)
    message: str = ""
    payload: dict[str, Any] = json_field()
    attempts: int = 1
    created_at: datetime | None = dt_field()
    resolved_at: datetime | None = dt_field()


class SfInfluence(SQLModel, table=True):
    """The Campaign Influence records last pushed to Salesforce (salesforce/influence.py): one per model,
    opportunity and campaign, so a sync only sends what changed and removes what no longer holds."""

    __tablename__ = "sf_influence"

    key: str = Field(primary_key=True, max_length=80)  # the record's external id (Nurture_Key__c)
    model: str = Field(max_length=40)  # first_touch / last_touch / even
    opportunity_id: int = Field(sa_type=BigId, index=True)
    campaign_id: int = Field(sa_type=BigId)
    influence: float = 0.0  # percent
    contact_sf_id: str | None = Field(default=None, max_length=18)
    sf_id: str | None = Field(default=None, max_length=18)
    pushed_at: datetime | None = dt_field()
