"""Sequences, their immutable published versions, and enrollments (the durable schedule)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..types import BigId, JsonType
from ._base import dt_field, id_field, json_field

#: active = due to run its node at due_at; waiting = parked at a wait/wait_for/deferred send until due_at
#: (or an event); done/exited/goal = finished (due_at is NULL, so the due index holds live rows only).
ENROLLMENT_STATUSES = ("active", "waiting", "done", "exited", "goal")


class Sequence(SQLModel, table=True):
    __tablename__ = "sequence"

    id: int | None = id_field()
    name: str = Field(unique=True, max_length=120)
    description: str = ""
    status: str = Field(default="draft", max_length=20)  # draft / active / paused / archived
    draft: dict[str, Any] = json_field()  # the editable definition
    current_version_id: int | None = Field(default=None, sa_type=BigId)
    source_file: str | None = Field(default=None, max_length=500)
    # Why the engine paused this program (a broken reference found at run time); cleared on resume.
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime | None = dt_field()
    updated_at: datetime | None = dt_field()


class SequenceVersion(SQLModel, table=True):
    __tablename__ = "sequence_version"
    __table_args__ = (UniqueConstraint("sequence_id", "number"),)

    id: int | None = id_field()
    sequence_id: int = Field(foreign_key="sequence.id", sa_type=BigId, index=True)
    number: int
    definition: dict[str, Any] = json_field()  # frozen once published
    checksum: str = Field(default="", max_length=64)
    published_at: datetime | None = dt_field()
    published_by: str | None = Field(default=None, max_length=120)


class Enrollment(SQLModel, table=True):
    __tablename__ = "enrollment"
    __table_args__ = (
        # The durable schedule: only live enrollments have a due_at, so this index is the claim queue. It
        # holds the claim's whole order (due_at, id): a campaign makes thousands due at one instant, and
        # PostgreSQL (unlike SQLite, whose indexes end in the rowid) would otherwise sort every due row of
        # that instant for each batch of 500.
        Index("ix_enrollment_due", "due_at", "id"),
        Index("ix_enrollment_lead_sequence", "lead_id", "sequence_id"),
        Index("ix_enrollment_version_node", "version_id", "node_id"),
        # Reports: a lead's enrollments by time (nurtured before its first opportunity?), the leads of each
        # sequence, and a version's enrollments of a period with their outcome (reports/*).
        Index("ix_enrollment_lead_entered", "lead_id", "entered_at", "sequence_id"),
        Index("ix_enrollment_sequence_lead", "sequence_id", "lead_id", "entered_at"),
        Index("ix_enrollment_version_entered", "version_id", "entered_at", "status"),
        # The split report's rollup triggers: did this lead's enrollment in this version meet the goal? (probed
        # on every send, open and click; without it a planner short of statistics scans the version's rows)
        Index("ix_enrollment_lead_version", "lead_id", "version_id", "status"),
    )

    id: int | None = id_field()
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, ondelete="CASCADE")
    sequence_id: int = Field(foreign_key="sequence.id", sa_type=BigId)
    version_id: int = Field(foreign_key="sequence_version.id", sa_type=BigId)
    node_id: str | None = Field(default=None, max_length=80)
    status: str = Field(default="active", max_length=12)
    due_at: datetime | None = dt_field()
    wait_for: dict[str, Any] | None = Field(default=None, sa_type=JsonType, nullable=True)
    node_entered_at: datetime | None = dt_field()
    entered_at: datetime | None = dt_field()
    exited_at: datetime | None = dt_field()
    exit_reason: str | None = Field(default=None, max_length=200)
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    steps: int = 0  # nodes executed so far: part of every effect's idempotency key (loops via goto)
    path: list[Any] = json_field(list)

