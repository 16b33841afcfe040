"""Injected time source. Domain code asks a Clock, never the wall clock directly.

`SystemClock` is the real time; `VirtualClock` is settable and can run faster than real time,
which is what makes deterministic tests, the simulator and the demo speed-up possible.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)  # clock-ok: the one sanctioned wall-clock read


class VirtualClock:
    """A clock that starts at `start` and then advances `speed` times faster than real time.

    `speed=0` freezes it: time moves only through `set()` and `advance()` (tests, simulator).
    """

    def __init__(self, start: datetime | None = None, speed: float = 0.0) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        self._lock = threading.Lock()
        self._base = start.astimezone(UTC)
        self._speed = speed
        self._anchor = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        with self._lock:
            if self._speed:
                elapsed = (time.monotonic() - self._anchor) * self._speed
                return self._base + timedelta(seconds=elapsed)
            return self._base

    def _rebase(self, new_base: datetime) -> None:
        self._base = new_base
        self._anchor = time.monotonic()

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("VirtualClock.set needs a timezone-aware datetime")
        with self._lock:
            self._rebase(when.astimezone(UTC))

    def advance(self, delta: timedelta) -> datetime:
        now = self.now()
        with self._lock:
            self._rebase(now + delta)
            return self._base

    def set_speed(self, speed: float) -> None:
        now = self.now()
        with self._lock:
            self._rebase(now)
            self._speed = speed

    def sleep_real_seconds(self, virtual: timedelta) -> float:
        """How many real seconds pass while `virtual` passes on this clock (0 when frozen)."""
        return virtual.total_seconds() / self._speed if self._speed else 0.0


def clock_span(clock: Clock, real: timedelta) -> timedelta:
    """How much time passes on `clock` while `real` passes on the wall clock.

    Leases that guard against a *process* dying (an in-flight send, say) are real-time spans, but rows
    store them on the workspace clock: on a VirtualClock running `speed`× they must be `speed`× longer,
    or work still in flight looks abandoned within a fraction of a second. A frozen or system clock: as is.
    """
    speed = getattr(clock, "speed", 0.0) or 0.0
    return real * speed if speed > 0 else real
