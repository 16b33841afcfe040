"""What every screen needs from the app: the workspace, who is at the keyboard, what they may change,
and a cached score scale. Screens reach it as `self.app.ctx` (the App is the composition root)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..reports.console import Operator
from ..scoring.decay import ScoreScale
from ..workspace import Workspace

#: Areas a rep may change (their own MQL queue and leads); everything else is read-only for them.
REP_WRITABLE = frozenset({"mql", "leads"})


@dataclass
class AppContext:
    ws: Workspace
    operator: Operator
    read_only: bool = False
    demo: Any = None
    _scale: ScoreScale | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def can_write(self, area: str) -> bool:
        """May the operator change things in `area`? (`--read-only` wins over every role.)"""
        if self.read_only:
            return False
        if self.operator.role == "rep":
            return area in REP_WRITABLE
        return True

    @property
    def owner_scope(self) -> int | None:
        """A rep's lists are limited to their own leads and queue."""
        return self.operator.user_id if self.operator.is_rep else None

    def scale(self, conn: Any) -> ScoreScale:
        """The score scale, read once (the epoch only moves on an explicit rebase)."""
        from ..leads.queries import score_scale

        with self._lock:
            if self._scale is None or self._scale.half_life_days == 0.0:
                self._scale = score_scale(conn, self.ws.settings.scoring.half_life_days)
            return self._scale

    def now(self) -> Any:
        return self.ws.clock.now()
