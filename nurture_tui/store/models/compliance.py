"""Consent per lead and subscription category (issue 22): the current state with its proof."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field

#: granted = may be mailed; pending = double opt-in mail sent, not confirmed; withdrawn = left the category.
CONSENT_STATUSES = ("granted", "pending", "withdrawn")
CONSENT_SOURCES = ("import", "form", "api", "salesforce", "operator")
LEGAL_BASES = ("consent", "contract", "legitimate_interest", "legal_obligation")


class Consent(SQLModel, table=True):
    __tablename__ = "consent"
    __table_args__ = (
        # segment rules and the send check walk "leads with this status in this category" (set form)
        Index("ix_consent_category_status_lead", "category", "status", "lead_id"),
    )

    lead_id: int = Field(foreign_key="lead.id", primary_key=True, sa_type=BigId, ondelete="CASCADE")
    category: str = Field(primary_key=True, max_length=60)
    status: str = Field(max_length=12)
    source: str = Field(max_length=20)
    legal_basis: str = Field(default="consent", max_length=24)
    at: datetime = dt_field(nullable=False)  # when the current status was recorded (confirmed, for DOI)
    form_id: str | None = Field(default=None, max_length=200)
    ip: str | None = Field(default=None, max_length=64)
    # the double opt-in request id: signed into the confirmation link, kept as proof once confirmed
    token: str | None = Field(default=None, max_length=64)
    requested_at: datetime | None = dt_field()  # when the confirmation mail was queued
    detail: str | None = Field(default=None, max_length=500)  # e.g. the imported file's name
