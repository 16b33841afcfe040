"""The statistics the reports use, in plain Python (no SciPy): the normal and chi-squared tails, the
two-proportion z-test, Pearson's chi-squared test of independence for k arms, and a seeded percentile
bootstrap for a difference of medians."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .common import quantile


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (series below a + 1, Lentz continued fraction above)."""
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-squared X with `df` degrees of freedom."""
    return _gamma_q(df / 2.0, x / 2.0)


@dataclass(frozen=True)
class TestResult:
    method: str  # "z-test" / "chi-squared"
    statistic: float | None
    p_value: float | None


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> TestResult:
    """Pooled two-sided two-proportion z-test; no p-value when an arm is empty or nothing varies."""
    if not n1 or not n2:
        return TestResult("z-test", None, None)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return TestResult("z-test", None, None)
    z = (x1 / n1 - x2 / n2) / se
    return TestResult("z-test", z, min(1.0, 2 * normal_sf(abs(z))))


def chi_squared(successes: list[int], totals: list[int]) -> TestResult:
    """Pearson's chi-squared test of independence on a k×2 table (success / failure per arm)."""
    arms = [(x, n) for x, n in zip(successes, totals, strict=True) if n]
    n_all = sum(n for _, n in arms)
    x_all = sum(x for x, _ in arms)
    if len(arms) < 2 or x_all in (0, n_all):
        return TestResult("chi-squared", None, None)
    stat = 0.0
    for x, n in arms:
        for observed, share in ((x, x_all / n_all), (n - x, 1 - x_all / n_all)):
            expected = n * share
            stat += (observed - expected) ** 2 / expected
    return TestResult("chi-squared", stat, chi2_sf(stat, len(arms) - 1))


def bootstrap_median_diff(a: list[float], b: list[float], *, resamples: int = 2000, seed: int = 17,
                          level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval for median(a) − median(b): both samples resampled with replacement
    `resamples` times from a fixed seed, so the same data give the same interval."""
    if len(a) < 2 or len(b) < 2:
        return None
    rnd = random.Random(seed)
    diffs = []
    for _ in range(resamples):
        ra = rnd.choices(a, k=len(a))
        rb = rnd.choices(b, k=len(b))
        diffs.append((quantile(ra, 0.5) or 0.0) - (quantile(rb, 0.5) or 0.0))
    tail = (1 - level) / 2
    lo, hi = quantile(diffs, tail), quantile(diffs, 1 - tail)
    assert lo is not None and hi is not None
    return lo, hi
