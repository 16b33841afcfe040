"""Cross-screen messages and the status the header shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from textual.message import Message


@dataclass(frozen=True)
class StatusLine:
    """Everything in the header, refreshed by the app (clock every second, DB status every few seconds)."""

    workspace: str
    user: str
    role: str
    scheduler: str  # leader / viewer / stopped / starting
    next_due_at: datetime | None
    sync: str
    clock: datetime | None  # the demo clock (None outside the demo)
    read_only: bool


class DataChanged(Message):
    """Something was written (bulk action, MQL decision): screens showing that data reload."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what
