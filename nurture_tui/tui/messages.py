"""Messages that cross widget boundaries, and the status the header shows (the app publishes it on its
`status_signal`)."""

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


@dataclass
class WorkerFailed(Message):
    """A widget's worker failed; it bubbles to the screen, which routes it like its own workers' errors
    (a toast for user errors, the error modal for bugs). Widgets never reach into the app for this."""

    description: str
    error: BaseException
