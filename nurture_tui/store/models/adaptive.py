"""Adaptive decisions (docs/adaptive.md): one row per adaptive split allocation or optimal send time, with
the evidence the decision was made on (posterior per arm, or the hour histogram) so it can be explained
later exactly as it was at decision time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, id_field, json_field


class AdaptiveDecision(SQLModel, table=True):
    __tablename__ = "adaptive_decision"
    __table_args__ = (
        # the allocation's evidence: a node's decisions (arm, audience) over a lookback, per kind
        Index("ix_adaptive_decision_node", "sequence_id", "node_id", "kind", "decided_at"),
    )

    id: int | None = id_field()
    kind: str = Field(max_length=10)  # split / send_time
    sequence_id: int = Field(sa_type=BigId)
    version_id: int = Field(sa_type=BigId)
    node_id: str = Field(max_length=80)
    enrollment_id: int | None = Field(default=None, sa_type=BigId)
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, index=True, ondelete="CASCADE")
    decided_at: datetime = dt_field(nullable=False)
    arm: str | None = Field(default=None, max_length=120)  # split: the arm taken
    audience: str | None = Field(default=None, max_length=160)  # split: the audience learnt in
    closes_at: datetime | None = dt_field()  # split: the reward window ends (a failure only after this)
    send_at: datetime | None = dt_field()  # send_time: when the email goes
    detail: dict[str, Any] = json_field()  # posterior per arm / hour histogram: the explanation


class AdaptiveDaily(SQLModel, table=True):
    """Split decisions that aged out of `adaptive_decision` (the maintenance job's retention,
    `engine.adaptive_decision_retention_days`), kept as the counts the live posteriors read: per sequence,
    node, metric, audience, arm and UTC decision day, the successes and failures of decisions whose reward
    window had closed (settled and closed alike). `adaptive_store.daily_counts` adds them to the raw rows."""

    __tablename__ = "adaptive_daily"

    sequence_id: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    node_id: str = Field(primary_key=True, max_length=80)
    metric: str = Field(primary_key=True, max_length=10)  # the metric the successes were counted with
    audience: str = Field(primary_key=True, max_length=160)
    arm: str = Field(primary_key=True, max_length=120)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    successes: int = 0
    failures: int = 0
