"""Leads, accounts, users and rep groups: the local mirror of Salesforce people and companies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field, fk_field, id_field, json_field

#: Funnel stages a lead moves through, in order.
STAGES = ("awareness", "consideration", "decision", "customer")
#: Buyer personas.
PERSONAS = ("economic_buyer", "technical_evaluator", "practitioner")
#: Fit grades, worst to best; `grade_rank` stores the index (F=0 … A+=12).
GRADES = ("F", "D-", "D", "D+", "C-", "C", "C+", "B-", "B", "B+", "A-", "A", "A+")


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = id_field()
    username: str = Field(unique=True, index=True, max_length=120)
    name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254)
    role: str = Field(default="rep", max_length=20)  # admin / operator / rep
    sf_id: str | None = Field(default=None, unique=True, max_length=18)
    active: bool = True
    signature: str = ""
    created_at: datetime | None = dt_field()


class RepGroup(SQLModel, table=True):
    __tablename__ = "rep_group"

    id: int | None = id_field()
    name: str = Field(unique=True, max_length=120)
    member_ids: list[int] = json_field(list)  # user ids, in round-robin order
    rr_cursor: int = 0
    rules: dict[str, Any] = json_field()  # territory rules (country / industry) for this group


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = id_field()
    sf_id: str | None = Field(default=None, unique=True, max_length=18)
    name: str = Field(default="", max_length=255, index=True)
    domain: str | None = Field(default=None, max_length=255)
    industry: str | None = Field(default=None, max_length=80)
    employees: int | None = None
    country: str | None = Field(default=None, max_length=80)
    timezone: str | None = Field(default=None, max_length=64)
    owner_id: int | None = fk_field("user.id")
    named_account: bool = False  # in the ABM named-account list
    score: float = 0.0
    mqa_at: datetime | None = dt_field()
    custom: dict[str, Any] = json_field()
    created_at: datetime | None = dt_field()
    updated_at: datetime | None = dt_field()
    sf_modstamp: datetime | None = dt_field()


class Lead(SQLModel, table=True):
    __tablename__ = "lead"
    __table_args__ = (
        Index("ix_lead_score", "score"),
        Index("ix_lead_stage_country_score", "stage", "country", "score"),
        Index("ix_lead_grade_rank", "grade_rank"),
        # the engine's change watcher walks leads by (updated_at, id) to re-check goals and exits at once
        Index("ix_lead_updated_at", "updated_at", "id"),
    )

    id: int | None = id_field()
    sf_id: str | None = Field(default=None, unique=True, max_length=18)
    sf_type: str | None = Field(default=None, max_length=10)  # Lead / Contact
    email: str = Field(unique=True, max_length=254)  # lower-cased, trimmed
    first_name: str | None = Field(default=None, max_length=80)
    last_name: str | None = Field(default=None, max_length=80)
    title: str | None = Field(default=None, max_length=128)
    company: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=40)
    account_id: int | None = fk_field("account.id")
    industry: str | None = Field(default=None, max_length=80)
    employees: int | None = None
    country: str | None = Field(default=None, max_length=80)
    state: str | None = Field(default=None, max_length=80)
    city: str | None = Field(default=None, max_length=80)
    timezone: str | None = Field(default=None, max_length=64)  # IANA name
    lead_source: str | None = Field(default=None, max_length=80)
    status: str | None = Field(default=None, max_length=40)  # Salesforce lead status
    owner_id: int | None = fk_field("user.id", index=False)
    persona: str | None = Field(default=None, max_length=40)
    stage: str | None = Field(default=None, max_length=20)
    # Behaviour score, stored on the workspace score scale (see scoring/decay.py): the live, decayed
    # score is `score * decay_factor(now)`, so ordering by this column is ordering by live score.
    score: float = 0.0
    grade: str | None = Field(default=None, max_length=2)
    grade_rank: int | None = None  # index into GRADES, for ordering and comparisons
    mql_at: datetime | None = dt_field()
    opted_out: bool = False
    bounced: bool = False
    bounced_at: datetime | None = dt_field()  # hard bounce (Salesforce EmailBouncedDate)
    bounce_reason: str | None = Field(default=None, max_length=255)  # (Salesforce EmailBouncedReason)
    last_activity_at: datetime | None = dt_field()
    custom: dict[str, Any] = json_field()
    created_at: datetime | None = dt_field()
    updated_at: datetime | None = dt_field()
    sf_modstamp: datetime | None = dt_field()


class LeadTag(SQLModel, table=True):
    __tablename__ = "lead_tag"

    lead_id: int = Field(foreign_key="lead.id", primary_key=True, sa_type=BigId, ondelete="CASCADE")
    tag: str = Field(primary_key=True, max_length=60, index=True)
