"""One engagement fact on its way through the core: `ActivityEvent`.

Tracking, the events API, mail dispatch, unsubscribes, the Salesforce pull, bulk lead actions and the demo
simulator build events; `engine.events.record_events` stores them as `activity` rows, then scoring, the
`wait_for` wake-up and event entry read them. The engine builds the same events for what it does itself
(sent, entered, exited, goal, stage_change). One typed value instead of a dict with agreed keys means a
misspelt field is a type error, not a silently missing filter.

This module sits below every area that builds or reads events, so none of them depends on another for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

#: The `activity` columns an event fills (every row carries all of them: Core executemany needs uniform keys).
ACTIVITY_COLUMNS = (
    "lead_id", "kind", "at", "sequence_id", "version_id", "node_id", "template_id", "outbox_id", "url",
    "bot", "meta",
)


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    """An activity: who (`lead_id`), what (`kind`, one of `store.models.ACTIVITY_KINDS`), when (`at`;
    None = when it is recorded) and where it came from. `id` is set once the row is stored; `dedupe_key`
    makes event entry idempotent across replays (default: the activity id)."""

    lead_id: int
    kind: str
    at: datetime | None = None
    sequence_id: int | None = None
    version_id: int | None = None
    node_id: str | None = None
    template_id: int | None = None
    outbox_id: int | None = None
    url: str | None = None
    bot: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None
    id: int | None = None

    def row(self) -> dict[str, Any]:
        """The `activity` row (without the id, which the database assigns)."""
        return {"lead_id": self.lead_id, "kind": self.kind, "at": self.at, "sequence_id": self.sequence_id,
                "version_id": self.version_id, "node_id": self.node_id, "template_id": self.template_id,
                "outbox_id": self.outbox_id, "url": self.url, "bot": self.bot, "meta": self.meta}

    def stored(self, activity_id: int, at: datetime) -> ActivityEvent:
        """This event as recorded: its row id and its (defaulted) time."""
        return ActivityEvent(self.lead_id, self.kind, at, self.sequence_id, self.version_id, self.node_id,
                             self.template_id, self.outbox_id, self.url, self.bot, self.meta, self.dedupe_key,
                             activity_id)


class ActivityFacts(Protocol):
    """What rule matching reads from an activity: an `ActivityEvent`, or an `activity` row read back."""

    @property
    def kind(self) -> str: ...
    @property
    def sequence_id(self) -> int | None: ...
    @property
    def template_id(self) -> int | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def meta(self) -> dict[str, Any] | None: ...
