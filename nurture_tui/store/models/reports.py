"""Rollups the reports read instead of scanning the log (kept by database triggers: store/rollups.py)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from ..types import BigId
from ._base import dt_field


class EmailStat(SQLModel, table=True):
    """Email figures per send cohort cell: the UTC day a message was queued (`outbox.created_at`), its
    sequence, step and template (0 / '' when none), and a shard (on PostgreSQL the writing transaction's id
    mod 8, so concurrent writers don't wait on one row; on SQLite, and in a rebuild, the message id mod 8).
    Every column summed over a cell's shards is a sum over the cell's messages, maintained in the same
    transaction as the outbox or activity row that changes it, so it always equals a scan of the log (one
    shard alone may go negative: a message's contribution can leave from another shard than it came in by)."""

    __tablename__ = "email_stat"

    day: str = Field(primary_key=True, max_length=10)
    sequence_id: int = Field(default=0, primary_key=True, sa_type=BigId)
    node_id: str = Field(default="", primary_key=True, max_length=80)
    template_id: int = Field(default=0, primary_key=True, sa_type=BigId)
    shard: int = Field(default=0, primary_key=True)
    sent: int = 0
    delivered: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    failed: int = 0
    unique_opens: int = 0
    total_opens: int = 0
    bot_opens: int = 0
    unique_clicks: int = 0
    total_clicks: int = 0
    bot_clicks: int = 0
    unsubscribes: int = 0


class LeadMilestone(SQLModel, table=True):
    """The progression report's per-lead milestone times. A milestone's own time is its earliest in the log
    (the first `stage_change` activity to consideration / decision, the first MQL, the first MQL accepted by
    a rep (its `decided_at`), the first opportunity); it counts as reached at the earliest of its own time and
    every later milestone's, and awareness at the lead's creation or, if earlier, its first milestone. A row
    exists while the lead has at least one milestone."""

    __tablename__ = "lead_milestone"

    lead_id: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    awareness_at: datetime | None = dt_field()
    consideration_at: datetime | None = dt_field()
    decision_at: datetime | None = dt_field()
    mql_at: datetime | None = dt_field()
    sql_at: datetime | None = dt_field()
    opportunity_at: datetime | None = dt_field()


class LeadCohort(SQLModel, table=True):
    """The progression report's lead counts per UTC day: `sequence_id` 0 = leads by the day they were
    created, -1 = leads by the day of their first enrollment in any sequence, a sequence id = leads by the
    day of their first enrollment in that sequence. Sums over the days before a period's end are the
    report's "awareness" counts."""

    __tablename__ = "lead_cohort"

    day: str = Field(primary_key=True, max_length=10)
    sequence_id: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    n: int = 0


class LeadSend(SQLModel, table=True):
    """The split-test report's per-lead send state: per published version, send step and lead, the UTC day of
    the lead's first message from the step (its `sent` activity) and whether any of its messages from the step
    was opened / clicked (a non-bot open / click carrying the message's outbox id), and whether its enrollment
    in that version met the goal (0/1 each). A row exists while the lead has a send from the step."""

    __tablename__ = "lead_send"

    version_id: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    lead_id: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    node_id: str = Field(primary_key=True, max_length=80)
    first_day: str = Field(max_length=10)
    opened: int = 0
    clicked: int = 0
    goal: int = 0


class SendCohort(SQLModel, table=True):
    """`lead_send` summed per (version, send step, first day): the leads first sent from the step that day
    and, of them, those who opened, clicked and met the goal. Additive over days, so a period's figures for an
    arm with one send step are a sum of a few cells (and of their shards)."""

    __tablename__ = "send_cohort"

    version_id: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    node_id: str = Field(primary_key=True, max_length=80)
    day: str = Field(primary_key=True, max_length=10)
    #: On PostgreSQL each transaction adds to its own shard of a cell (its transaction id mod 8), so two
    #: engine workers' batches of one send step don't queue on one row; readers sum over shards.
    shard: int = Field(default=0, primary_key=True)
    n: int = 0
    opened: int = 0
    clicked: int = 0
    goal: int = 0
