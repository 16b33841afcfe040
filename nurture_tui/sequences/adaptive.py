"""Adaptive splits: Thompson sampling over Beta posteriors, stated exactly in docs/adaptive.md.

Pure functions on counts — no store, no clock — so the engine, the simulator, the reports and
`nurture bench adaptive` all decide with this same code:

- an arm's evidence is `ArmCounts(successes, failures)` of *settled* decisions: a success as soon as the
  metric happened inside the reward window, a failure only once the window has closed (pending decisions
  count as neither — the delayed-reward rule, applied by whoever gathers the counts);
- overall posterior of arm a: Beta(1 + S_a, 1 + F_a) (a uniform prior);
- per-audience posterior (persona / stage / segment), pooled toward the overall one:
  m_a = min(pool, S_a + F_a), μ_a = overall posterior mean,
  prior = Beta(1 + m_a·μ_a, 1 + m_a·(1 − μ_a)), posterior = prior + (s_ga, f_ga);
- allocation for one lead: a deterministic RNG seeded by blake2b(seed, node, lead). u = rng.random();
  u < K·floor → arm ⌊u / floor⌋ (exploration: every arm gets at least `floor` of the traffic); otherwise
  draw θ_a ~ Beta(posterior_a) for each arm in order and take the largest (Thompson sampling);
- winner: P(best_a) = ∫ f_a(x) Π_{b≠a} F_b(x) dx, integrated on a fixed grid (deterministic). When the
  rule is on, an arm with P(best) ≥ 0.95 and every arm with ≥ `winner_min` settled decisions is declared
  the winner and takes all traffic (no exploration floor any more).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .model import SplitSpec, parse_duration

DEFAULT_METRIC = "click"
#: The reward window when a split names none, by metric (docs/adaptive.md, "The reward window"): opens and
#: clicks mostly come within hours of a send, and a shorter window settles failures and detects a change of
#: the rates sooner; a goal takes longer to reach.
DEFAULT_WINDOWS = {"open": "1d", "click": "1d", "goal": "3d"}
DEFAULT_FLOOR = 0.03
DEFAULT_POOL = 20.0
CHANGE_Z = 3.5  # drift: |z| of the stratified change test that restarts the evidence
CHANGE_MIN = 100  # drift: closed decisions needed on each side of a change
WINNER_THRESHOLD = 0.95
WINNER_MIN = 100  # settled decisions each arm needs before a winner may be declared
GRID = 512  # points of the P(best) and interval integrations
ALL = "all"  # the audience of a split that learns over everyone


@dataclass(frozen=True)
class AdaptiveSettings:
    metric: str
    window: timedelta
    floor: float
    winner: bool
    audience: str
    segments: tuple[str, ...]
    pool: float
    lookback: timedelta | None
    seed: int
    drift: bool = True  # restart the evidence at a detected change of the rates (change_point)


def default_window(metric: str | None) -> str:
    """The reward window of a split that names none: 1d for open and click, 3d for goal."""
    return DEFAULT_WINDOWS.get(metric or DEFAULT_METRIC, DEFAULT_WINDOWS[DEFAULT_METRIC])


def settings_of(spec: SplitSpec) -> AdaptiveSettings:
    """The split's adaptive settings with the defaults filled in (validation has checked them)."""
    return AdaptiveSettings(
        metric=spec.metric or DEFAULT_METRIC,
        window=parse_duration(spec.window or default_window(spec.metric)),
        floor=DEFAULT_FLOOR if spec.floor is None else spec.floor,
        winner=bool(spec.winner),
        audience=spec.audience or ALL,
        segments=tuple(spec.segments or ()),
        pool=DEFAULT_POOL if spec.pool is None else spec.pool,
        lookback=parse_duration(spec.lookback) if spec.lookback else None,
        seed=spec.seed or 0,
        drift=spec.drift is not False,
    )


@dataclass(frozen=True)
class ArmCounts:
    successes: float = 0.0
    failures: float = 0.0

    @property
    def n(self) -> float:
        return self.successes + self.failures

    def __add__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(self.successes + other.successes, self.failures + other.failures)


@dataclass(frozen=True)
class Beta:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def sd(self) -> float:
        a, b = self.alpha, self.beta
        return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The equal-tailed credible interval, by integrating the density on a grid."""
        lo, hi = self._span()
        xs, ws = _weights(self, lo, hi)
        tail = (1 - level) / 2
        acc = 0.0
        low = high = xs[-1]
        found_low = False
        for x, w in zip(xs, ws, strict=True):
            acc += w
            if not found_low and acc >= tail:
                low, found_low = x, True
            if acc >= 1 - tail:
                high = x
                break
        return low, high

    def _span(self) -> tuple[float, float]:
        return max(0.0, self.mean - 9 * self.sd), min(1.0, self.mean + 9 * self.sd)


def _weights(b: Beta, lo: float, hi: float) -> tuple[list[float], list[float]]:
    """Grid midpoints over [lo, hi] and the Beta density's normalised mass at each (sums to 1, or all 0
    when the density has no mass there)."""
    h = (hi - lo) / GRID
    xs = [lo + (i + 0.5) * h for i in range(GRID)]
    a1, b1 = b.alpha - 1, b.beta - 1
    logs = [a1 * math.log(x) + b1 * math.log1p(-x) if 0 < x < 1 else -math.inf for x in xs]
    top = max(logs)
    if top == -math.inf:
        return xs, [0.0] * GRID
    ws = [math.exp(v - top) for v in logs]
    total = sum(ws)
    return xs, [w / total for w in ws]


def overall_posterior(counts: ArmCounts) -> Beta:
    return Beta(1 + counts.successes, 1 + counts.failures)


def pooled_posterior(overall: ArmCounts, audience: ArmCounts, pool: float) -> Beta:
    """The audience's posterior: its own counts on a prior centred on the overall posterior mean and
    worth min(pool, overall n) observations (so an audience with little data follows everyone)."""
    mu = overall_posterior(overall).mean
    m = min(pool, overall.n)
    return Beta(1 + m * mu + audience.successes, 1 + m * (1 - mu) + audience.failures)


def p_best(posteriors: Sequence[Beta]) -> list[float]:
    """P(arm is best) for each arm: ∫ f_a Π_{b≠a} F_b on one grid spanning every arm's mass."""
    k = len(posteriors)
    if k == 1:
        return [1.0]
    lo = min(p._span()[0] for p in posteriors)
    hi = max(p._span()[1] for p in posteriors)
    if hi <= lo:
        return [1.0 / k] * k
    masses = [_weights(p, lo, hi)[1] for p in posteriors]
    cdfs = []
    for ws in masses:  # CDF at each midpoint: the mass below it plus half its own cell
        acc, cdf = 0.0, []
        for w in ws:
            cdf.append(acc + w / 2)
            acc += w
        cdfs.append(cdf)
    out = []
    for a in range(k):
        others = [cdfs[b] for b in range(k) if b != a]
        total = 0.0
        for i, w in enumerate(masses[a]):
            if w:
                prod = w
                for c in others:
                    prod *= c[i]
                total += prod
        out.append(total)
    s = sum(out)
    return [v / s for v in out] if s > 0 else [1.0 / k] * k


@dataclass(frozen=True)
class ArmView:
    """One arm at decision time: what the explanation shows."""

    name: str
    successes: float
    failures: float
    posterior: Beta
    p_best: float
    share: float  # the expected traffic share under this allocation

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.posterior.interval()
        return {"s": round(self.successes, 3), "f": round(self.failures, 3),
                "alpha": round(self.posterior.alpha, 4), "beta": round(self.posterior.beta, 4),
                "mean": round(self.posterior.mean, 5), "lo": round(lo, 5), "hi": round(hi, 5),
                "p_best": round(self.p_best, 4), "share": round(self.share, 4)}


@dataclass
class Allocation:
    """How one adaptive split allocates one audience, built once per batch from the settled counts. The
    posteriors are all a decision needs; P(best) and the expected shares (`arms`) are worked out when first
    asked for (an explanation, a report, the winner rule)."""

    audience: str
    names: list[str]
    counts: list[ArmCounts]  # the audience's own settled counts per arm
    posteriors: list[Beta]
    floor: float
    winner: str | None = None
    best: list[float] | None = None  # P(best) per arm, when already computed
    restart: int | None = None  # drift: the detected change day (date ordinal) the evidence restarted at
    _arms: list[ArmView] | None = field(default=None, repr=False)
    _json: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def arms(self) -> list[ArmView]:
        if self._arms is None:
            best = self.best if self.best is not None else p_best(self.posteriors)
            k = len(self.names)
            if self.winner is not None:
                shares = [1.0 if n == self.winner else 0.0 for n in self.names]
            else:  # Thompson sampling sends each arm its P(best) of the traffic left after the floor
                shares = [self.floor + (1 - k * self.floor) * p for p in best]
            self._arms = [ArmView(n, c.successes, c.failures, p, b, sh) for n, c, p, b, sh
                          in zip(self.names, self.counts, self.posteriors, best, shares, strict=True)]
        return self._arms

    def to_json(self) -> dict[str, Any]:
        """The decision's explanation (cached: every lead of a batch shares it)."""
        if self._json is None:
            self._json = {"audience": self.audience, "floor": self.floor, "winner": self.winner,
                          "arms": {a.name: a.to_json() for a in self.arms}}
            if self.restart is not None:
                self._json["restart"] = date.fromordinal(self.restart).isoformat()
        return self._json


def build_allocation(
    names: Sequence[str], overall: Mapping[str, ArmCounts], audience_counts: Mapping[str, ArmCounts] | None,
    settings: AdaptiveSettings, audience: str = ALL, restart: int | None = None,
) -> Allocation:
    """Posteriors and winner for one audience (`audience_counts` None = the overall counts are the
    audience's own). `restart`: the change day the counts start at (drift), recorded for the explanation."""
    empty = ArmCounts()
    posts, own = [], []
    for name in names:
        o = overall.get(name, empty)
        if audience_counts is None:
            posts.append(overall_posterior(o))
            own.append(o)
        else:
            mine = audience_counts.get(name, empty)
            posts.append(pooled_posterior(o, mine, settings.pool))
            own.append(mine)
    best, winner = None, None
    if settings.winner:
        best = p_best(posts)
        top = max(range(len(names)), key=lambda i: best[i])
        if best[top] >= WINNER_THRESHOLD and all(c.n >= WINNER_MIN for c in own):
            winner = names[top]
    floor = min(settings.floor, 1.0 / len(names))
    return Allocation(audience, list(names), own, posts, floor, winner, best, restart)


def lead_rng(seed: int, node_id: str, lead_id: int) -> random.Random:
    """The decision's own random stream: the same seed, node and lead always draw the same numbers."""
    digest = hashlib.blake2b(f"{seed}:{node_id}:{lead_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def decide(alloc: Allocation, seed: int, node_id: str, lead_id: int) -> tuple[str, str]:
    """The arm for one lead and how it was chosen: winner / explore / thompson."""
    if alloc.winner is not None:
        return alloc.winner, "winner"
    rng = lead_rng(seed, node_id, lead_id)
    k = len(alloc.names)
    u = rng.random()
    if u < k * alloc.floor:
        return alloc.names[min(k - 1, int(u / alloc.floor))], "explore"
    draws = [rng.betavariate(p.alpha, p.beta) for p in alloc.posteriors]
    best = max(range(k), key=lambda i: draws[i])
    return alloc.names[best], "thompson"


def describe(detail: Mapping[str, Any]) -> str:
    """One line explaining a recorded allocation: per arm the posterior mean and 95 % interval."""
    arms = detail.get("arms") or {}
    parts = [f"{name} {v['mean']:.1%} [{v['lo']:.1%}–{v['hi']:.1%}] n={v['s'] + v['f']:g}"
             for name, v in arms.items()]
    head = f"audience {detail.get('audience', ALL)}"
    if detail.get("winner"):
        head += f", winner {detail['winner']}"
    how = detail.get("how")
    head += f", {how}" if how else ""
    if detail.get("restart"):
        head += f", evidence restarted at the rate change detected on {detail['restart']}"
    return f"{head}: " + "; ".join(parts)


def change_point(daily: Mapping[str, Mapping[str, Mapping[int, ArmCounts]]], z_min: float,
                 n_min: float) -> int | None:
    """The day the arms' rates changed, if they did. `daily`: audience → arm → decision day → counts of
    decisions whose reward window has closed. For each day boundary d and each arm, the decisions of the
    days ≥ d are compared with those before d within each audience (a stratified two-proportion test, so a
    shift of the audience mix is no change): z = Σ_g (S_after − n_after·p_g) / √(Σ_g p_g(1 − p_g)·
    n_before·n_after/n_g). The boundary with the largest |z| of any arm is returned if that |z| ≥ z_min
    with ≥ n_min decisions on each side, else None."""
    days = sorted({d for per_arm in daily.values() for per_day in per_arm.values() for d in per_day})
    arms = sorted({a for per_arm in daily.values() for a in per_arm})
    best_z, best_day = z_min, None
    for arm in arms:
        strata = []  # per audience: cumulative (n, s) before each boundary, and the totals
        for per_arm in daily.values():
            per_day = per_arm.get(arm, {})
            cum_n, cum_s, n, s = [], [], 0.0, 0.0
            for d in days:
                c = per_day.get(d)
                if c is not None:
                    n, s = n + c.n, s + c.successes
                cum_n.append(n)
                cum_s.append(s)
            if n > 0:
                strata.append((cum_n, cum_s, n, s))
        for i in range(len(days) - 1):
            dev = var = n_before = n_after = 0.0
            for cum_n, cum_s, n, s in strata:
                nb, sb = cum_n[i], cum_s[i]
                na = n - nb
                p = s / n
                dev += (s - sb) - na * p
                var += p * (1 - p) * nb * na / n
                n_before += nb
                n_after += na
            if n_before < n_min or n_after < n_min or var <= 0:
                continue
            z = abs(dev) / math.sqrt(var)
            if z >= best_z:
                best_z, best_day = z, days[i + 1]
    return best_day


Daily = Mapping[str, Mapping[str, Mapping[int, ArmCounts]]]  # audience → arm → decision day → counts


def since_change(settled: Daily, closed: Daily, drift: bool) -> tuple[dict[str, dict[str, ArmCounts]], int | None]:
    """The evidence the posteriors use: per audience and arm, the settled counts of the decisions made on
    or after the last detected change day (all of them when there is none, or with `drift` off), and that
    day. `closed` holds the decisions whose reward window has closed (the change test's unbiased sample).
    Changes are found in turn: after a change at day c, the test runs again on the days ≥ c."""
    cut = None
    while drift:
        after = closed if cut is None else {
            g: {a: {d: c for d, c in per_day.items() if d >= cut} for a, per_day in per_arm.items()}
            for g, per_arm in closed.items()}
        found = change_point(after, CHANGE_Z, CHANGE_MIN)
        if found is None:
            break
        cut = found
    out: dict[str, dict[str, ArmCounts]] = {}
    for audience, per_arm in settled.items():
        mine = out[audience] = {}
        for arm, per_day in per_arm.items():
            total = ArmCounts()
            for day, c in per_day.items():
                if cut is None or day >= cut:
                    total = total + c
            mine[arm] = total
    return out, cut
