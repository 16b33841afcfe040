"""Audit log, leader lease and workspace metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import JsonType
from ._base import dt_field, id_field, json_field


class Audit(SQLModel, table=True):
    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: int | None = id_field()
    at: datetime = dt_field(nullable=False)
    user: str = Field(max_length=120)
    action: str = Field(max_length=60)
    entity: str = Field(max_length=40)
    entity_id: str | None = Field(default=None, max_length=120)
    before: dict[str, Any] | None = json_field(lambda: None)
    after: dict[str, Any] | None = json_field(lambda: None)


class Lease(SQLModel, table=True):
    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=60)
    holder: str = Field(max_length=200)
    acquired_at: datetime | None = dt_field()
    expires_at: datetime = dt_field(nullable=False)


class Meta(SQLModel, table=True):
    """Workspace-wide key/value settings that live with the data (e.g. the score scale epoch)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=60)
    value: Any = Field(default=None, sa_type=JsonType, nullable=True)
