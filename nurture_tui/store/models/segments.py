"""Saved segments and their materialised membership."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, id_field, json_field


class Segment(SQLModel, table=True):
    __tablename__ = "segment"

    id: int | None = id_field()
    name: str = Field(unique=True, max_length=120)
    description: str = ""
    rule: dict[str, Any] = json_field()
    materialized: bool = False
    cached_count: int | None = None
    counted_at: datetime | None = dt_field()
    materialized_at: datetime | None = dt_field()  # last full refresh of segment_member
    created_by: str | None = Field(default=None, max_length=120)
    created_at: datetime | None = dt_field()
    updated_at: datetime | None = dt_field()


class SegmentMember(SQLModel, table=True):
    __tablename__ = "segment_member"

    segment_id: int = Field(foreign_key="segment.id", primary_key=True, sa_type=BigId, ondelete="CASCADE")
    lead_id: int = Field(foreign_key="lead.id", primary_key=True, sa_type=BigId, ondelete="CASCADE", index=True)
