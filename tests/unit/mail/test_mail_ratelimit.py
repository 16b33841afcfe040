"""Token buckets, driven by a fake monotonic clock (no sleeping, no timing asserts)."""

from __future__ import annotations

from nurture_tui.mail.ratelimit import RateLimiter, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_bucket_burst_then_steady_rate() -> None:
    ft = FakeTime()
    b = TokenBucket(10, 5, monotonic=ft)
    assert [b.take(ft()) for _ in range(5)] == [0.0] * 5
    assert abs(b.take(ft()) - 0.1) < 1e-9
    ft.t += 0.1
    assert b.take(ft()) == 0.0


def test_limiter_sends_n_in_expected_time() -> None:
    ft = FakeTime()
    lim = RateLimiter(100, 1_000_000, monotonic=ft, sleep=ft.sleep)
    start = ft()
    for _ in range(1100):
        lim.acquire()
    assert abs((ft() - start) - (1100 - 100) / 100) < 0.05


def test_hourly_cap_blocks_after_quota() -> None:
    ft = FakeTime()
    lim = RateLimiter(1000, 50, monotonic=ft, sleep=ft.sleep)
    assert all(lim.try_acquire() == 0.0 for _ in range(50))
    wait = lim.try_acquire()
    assert 70 < wait <= 72.1  # one token per 72 s at 50/h


def test_granted_rate_is_the_steady_state_rate() -> None:
    ft = FakeTime()
    lim = RateLimiter(50, 1_000_000, monotonic=ft, sleep=ft.sleep)
    for _ in range(550):
        lim.acquire()
    assert lim.granted == 550
    rate = lim.granted_rate()
    assert rate is not None and abs(rate - 50) < 0.5
