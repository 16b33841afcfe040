"""`Debouncer`: run an action for the latest of a burst of requests — at once after a quiet spell (a single
edit shows its result immediately), else once the burst has paused for `delay` (typing recomputes once).
The editors' live count and live preview both use it."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump
from textual.timer import Timer


class Debouncer:
    def __init__(self, owner: MessagePump, delay: float, action: Callable[[], None]) -> None:
        self.owner = owner
        self.delay = delay
        self.action = action
        self._last = float("-inf")
        self._timer: Timer | None = None

    def request(self) -> None:
        """Ask for the action (call on the UI thread, on every edit)."""
        now = time.monotonic()
        quiet = now - self._last >= self.delay
        self._last = now
        self.cancel()
        if quiet:
            self.action()
        else:
            self._timer = self.owner.set_timer(self.delay, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self.action()
