"""One batch's working state: the claimed enrollments, what each node decided, and every effect to
write in the batch's transaction (outbox, activity, score, enrollment advance, node counters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..activity import ActivityEvent
from ..config import Settings
from ..store.tables import account, lead
from .node_stats import CounterBatch
from .plans import Plan

LEAD_COLUMNS = (lead.c.id, lead.c.email, lead.c.timezone, lead.c.country, lead.c.account_id,
                lead.c.owner_id, lead.c.opted_out, lead.c.bounced)


class Item:
    """A claimed enrollment moving through nodes within one batch."""

    __slots__ = (
        "arrived",
        "changed",
        "due_at",
        "finished",
        "id",
        "lead_id",
        "node_entered_at",
        "node_id",
        "plan",
        "reason",
        "sequence_id",
        "status",
        "steps",
        "version_id",
        "wait_for",
    )

    def __init__(self, row: Any, plan: Plan) -> None:
        (self.id, self.lead_id, self.sequence_id, self.version_id, self.node_id, self.status, self.steps,
         self.wait_for, self.node_entered_at, self.due_at) = row
        self.arrived = self.status == "active"  # 'waiting' = resuming a parked node
        self.plan = plan
        self.finished = False
        self.reason: str | None = None
        self.changed = False


@dataclass
class SendRequestLite:
    """What the engine asks the mail composer for (mapped to mail.compose.SendRequest at flush)."""

    item: Item
    node: str
    template: str
    category: str | None
    key: str


@dataclass
class StepContext:
    conn: Connection
    now: datetime
    settings: Settings
    counters: CounterBatch = field(default_factory=CounterBatch)
    activities: list[ActivityEvent] = field(default_factory=list)
    sends: list[SendRequestLite] = field(default_factory=list)
    steps: int = 0
    touched_leads: set[int] = field(default_factory=set)
    template_categories: dict[str, str] = field(default_factory=dict)  # lead fields changed by actions: re-check entry
    decisions: list[dict[str, Any]] = field(default_factory=list)  # adaptive_decision rows (engine/adaptive_nodes.py)
    _leads: dict[int, Any] = field(default_factory=dict)
    _accounts: dict[int, Any] = field(default_factory=dict)

    # -- data the executors need, loaded once per batch --------------------------------------------

    def leads(self, ids: list[int]) -> dict[int, Any]:
        missing = [i for i in ids if i not in self._leads]
        if missing:
            for row in self.conn.execute(select(*LEAD_COLUMNS).where(lead.c.id.in_(missing))):
                self._leads[row.id] = row
        return self._leads

    def account_of(self, lead_row: Any) -> Any:
        aid = lead_row.account_id if lead_row is not None else None
        if aid is None:
            return None
        if aid not in self._accounts:
            self._accounts[aid] = self.conn.execute(
                select(account.c.id, account.c.timezone, account.c.country).where(account.c.id == aid)
            ).first()
        return self._accounts[aid]

    # -- moving items -------------------------------------------------------------------------------

    def go(self, it: Item, next_id: str | None) -> None:
        """The node finished for `it`; move to `next_id` (None = the sequence is done)."""
        self.steps += 1
        it.steps += 1
        it.changed = True
        self.counters.move(it.version_id, it.node_id, next_id)
        if next_id is None:
            it.finished = True
            it.status = "done"
            it.reason = None
            it.due_at = None
            it.wait_for = None
            return
        it.node_id = next_id
        it.node_entered_at = self.now
        it.status = "active"
        it.due_at = self.now
        it.wait_for = None
        it.arrived = True

    def park(self, it: Item, due_at: datetime | None, wait_for: dict[str, Any] | None = None) -> None:
        """Hold `it` at its node until `due_at` (None = until an event wakes it). Parking is part of
        the advance that brought it here, not a step of its own."""
        it.changed = True
        it.status = "waiting"
        it.due_at = due_at
        it.wait_for = wait_for
        it.arrived = False

    def end(self, it: Item, status: str, reason: str) -> None:
        """Exit the sequence (status 'exited' or 'goal')."""
        self.steps += 1
        it.changed = True
        self.counters.bump(it.version_id, it.node_id, "left")
        self.counters.bump(it.version_id, it.node_id, status)
        self.activities.append(ActivityEvent(
            it.lead_id, status, self.now, sequence_id=it.sequence_id, version_id=it.version_id,
            node_id=it.node_id, meta={"reason": reason},
        ))
        it.finished = True
        it.status = status
        it.reason = reason
        it.due_at = None
        it.wait_for = None
