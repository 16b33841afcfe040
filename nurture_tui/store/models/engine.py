"""Engine bookkeeping: per-node counters and the signed webhook outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, id_field, json_field


class NodeCounter(SQLModel, table=True):
    """Cumulative per-node counts, bumped in the same transaction as the advance.

    `shard` spreads hot rows so parallel PostgreSQL workers don't queue on one row lock; readers sum
    over shards. Currently at the node = entered - left.
    """

    __tablename__ = "node_counter"

    version_id: int = Field(primary_key=True, sa_type=BigId)
    node_id: str = Field(primary_key=True, max_length=80)
    shard: int = Field(default=0, primary_key=True)
    entered: int = 0
    left: int = 0
    yes: int = 0
    no: int = 0
    exited: int = 0
    goal: int = 0


class WebhookOutbox(SQLModel, table=True):
    """HMAC-signed POSTs queued by `action: webhook` steps, delivered with retries."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_status_next", "status", "next_try_at"),)

    id: int | None = id_field()
    idempotency_key: str = Field(unique=True, max_length=200)
    lead_id: int | None = Field(default=None, sa_type=BigId, index=True)
    enrollment_id: int | None = Field(default=None, sa_type=BigId)
    url: str = Field(max_length=2048)
    body: dict[str, Any] = json_field()
    status: str = Field(default="pending", max_length=10)  # pending / sent / failed
    attempts: int = 0
    next_try_at: datetime | None = dt_field()
    last_error: str | None = None
    created_at: datetime | None = dt_field()
    sent_at: datetime | None = dt_field()
