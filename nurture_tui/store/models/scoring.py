"""Score rules, grade profiles, score history and the MQL queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, fk_field, id_field, json_field


class ScoreRule(SQLModel, table=True):
    __tablename__ = "score_rule"

    id: int | None = id_field()
    name: str = Field(unique=True, max_length=120)
    kind: str = Field(max_length=24)  # activity kind
    filters: dict[str, Any] = json_field()  # template / sequence / url_pattern / form
    points: float = 0.0
    cap_points: float | None = None  # max points from this rule per lead per window
    cap_window_days: float | None = None
    # "message": within a cap window, repeats of one (message, URL) count once (replayed links/pixels)
    cap_distinct: str | None = Field(default=None, max_length=20)
    once: bool = False  # one-time vs every-time
    active: bool = True


class GradeProfile(SQLModel, table=True):
    __tablename__ = "grade_profile"

    id: int | None = id_field()
    name: str = Field(unique=True, max_length=120)
    applies_to: dict[str, Any] = json_field()  # `when`: field → values selecting the leads it grades
    criteria: list[Any] = json_field(list)
    position: int = 0  # first matching profile (by position) grades a lead
    active: bool = True


class ScoreEvent(SQLModel, table=True):
    """Score changes that do not come from rules over activities (those are derived from `activity`
    and the rule set, so a rescore never rewrites history): `adjust` (+points at `at`, from an action or
    an operator) and `reset` (the live score was *set* to `points` at `at`; a new scoring cycle starts)."""

    __tablename__ = "score_event"
    __table_args__ = (Index("ix_score_event_lead_at", "lead_id", "at"),)

    id: int | None = id_field()
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, ondelete="CASCADE")
    at: datetime = dt_field(nullable=False)
    kind: str = Field(default="adjust", max_length=10)  # adjust / reset
    points: float = 0.0
    reason: str = Field(default="", max_length=200)


class Mql(SQLModel, table=True):
    __tablename__ = "mql"
    __table_args__ = (Index("ix_mql_status_created", "status", "created_at"),)

    id: int | None = id_field()
    lead_id: int = Field(foreign_key="lead.id", sa_type=BigId, index=True, ondelete="CASCADE")
    account_id: int | None = fk_field("account.id", index=False)  # set for account-level MQAs
    cycle: int = 1
    status: str = Field(default="new", max_length=12)  # new/accepted/rejected/recycled/snoozed
    rep_id: int | None = fk_field("user.id")
    queue: str | None = Field(default=None, max_length=120)
    score: float = 0.0
    grade: str | None = Field(default=None, max_length=2)
    why: dict[str, Any] = json_field()
    reject_reason: str | None = None
    summary: str = ""  # the engagement summary handed to the rep (also the Salesforce Task body)
    snoozed_until: datetime | None = dt_field()
    created_at: datetime | None = dt_field()
    decided_at: datetime | None = dt_field()
    decided_by: str | None = Field(default=None, max_length=120)
