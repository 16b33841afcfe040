"""Token-bucket rate limiting: per second and per hour, shared by every sending thread.

A bucket holds up to `capacity` tokens and refills at `rate` tokens per second. It starts full, so the
first `capacity` messages go at once and the rest at exactly `rate`: sending N messages takes
`(N - capacity) / rate` seconds. Time is the process's monotonic clock (a rate, not a domain time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, capacity: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._monotonic = monotonic
        self._last = monotonic()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, now: float) -> float:
        """Take one token if available (returns 0.0), else return the seconds until one is."""
        self._refill(now)
        if self._tokens >= 1 - 1e-6:  # tolerance: float refill may land a hair below a whole token
            self._tokens = max(0.0, self._tokens - 1)
            return 0.0
        return (1 - self._tokens) / self.rate

    def give_back(self) -> None:
        self._tokens = min(self.capacity, self._tokens + 1)


class RateLimiter:
    """Per-second and per-hour buckets; `acquire()` blocks the calling thread until both allow a send."""

    def __init__(self, per_second: float, per_hour: float, *, burst: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.second = TokenBucket(per_second, burst if burst is not None else max(1.0, per_second), monotonic=monotonic)
        self.hour = TokenBucket(per_hour / 3600.0, max(1.0, per_hour), monotonic=monotonic)
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._sleep = sleep
        self.granted = 0  # sends allowed so far, with the times of the first and the latest grant
        self.first_grant: float | None = None
        self.last_grant: float | None = None

    def try_acquire(self) -> float:
        """0.0 when a send may go now (tokens taken), else the seconds to wait."""
        with self._lock:
            now = self._monotonic()
            wait = self.hour.take(now)
            if wait:
                return wait
            wait = self.second.take(now)
            if wait:
                self.hour.give_back()
                return wait
            self.granted += 1
            if self.first_grant is None:
                self.first_grant = now
            self.last_grant = now
            return 0.0

    def granted_rate(self) -> float | None:
        """Steady-state rate of the grants so far: (grants - initial burst) / time from first to last."""
        if self.first_grant is None or self.last_grant is None or self.last_grant <= self.first_grant:
            return None
        steady = self.granted - self.second.capacity
        return steady / (self.last_grant - self.first_grant) if steady > 0 else None

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until a send may go; returns False if `stop` was set while waiting."""
        while True:
            wait = self.try_acquire()
            if not wait:
                return True
            if stop is not None:
                if stop.wait(min(wait, 1.0)):
                    return False
            else:
                self._sleep(min(wait, 1.0))
