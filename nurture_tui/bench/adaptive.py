"""`nurture bench adaptive`: adaptive splits and send-time optimisation on simulated leads (issue 23).

Splits. 50,000 leads of four personas arrive evenly over 60 days; an adaptive split with three arms
(metric click, window 1d, audience persona, the default floor, pool and drift) decides them in hourly
batches with the engine's own code — `adaptive_store.allocations` (pooled Beta posteriors, P(best)) and
`adaptive.decide` (seeded Thompson sampling with the exploration floor) — on the settled counts the
engine would read: a click inside the 1-day reward window is a success once it has happened, anything else
a failure once the window has closed. Every lead has one uniform draw and one click delay shared by all
policies (common random numbers): it clicks arm a iff draw < rate(persona, a, t); the bench counts every
click within CLICK_HORIZON_H (7 days) of the send for every policy alike, whatever the split's window.
Policies in the same run: adaptive, uniform random, and an oracle that knows the true rates. Cases:
`stationary`, `by_persona` (the best arm differs by persona), `drift` (the rates reverse halfway).
`share_of_oracle_gain` = (adaptive − uniform) / (oracle − uniform), the worst case's (target ≥ 0.70).

Send time. 20,000 leads in four time zones with a hidden preferred local hour (their persona's typical hour
± noise); open probability 0.15 + 0.25·exp(−d²/4.5) at d hours from it. Each has 0–8 past opens near that
hour plus 0–3 machine opens at random hours (dropped, as the engine's query drops bot rows). The step comes
due at a random moment of a week; the plain schedule sends at the next window slot (Mon–Fri 08–18); STO
sends at `send_time.best_time` of `pick_histogram(own, [persona])`; the oracle at `best_time` of the true
open curve. Reported: expected open rates, `sto_open_rate_gain_pct` and `sto_share_of_oracle_gain`
(target ≥ 0.6).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import typer

NAME = "adaptive"
PERSONAS = ("economic_buyer", "technical_evaluator", "practitioner", "executive")
ARMS = ("a", "b", "c")
DAYS = 60
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
SPLIT = {"mode": "adaptive", "metric": "click", "window": "1d", "audience": "persona", "seed": 23}
CLICK_DELAY_H = 8.0  # mean hours from send to click
#: What the bench counts as a click, for every policy alike: a click within this many hours of the send
#: (7 days; with exponential delays of mean 8 h that is every click the simulation generates). It does not
#: depend on the split's reward window, which only decides what the adaptive split *learns* from.
CLICK_HORIZON_H = 7 * 24.0

_STATIONARY = {"a": 0.025, "b": 0.040, "c": 0.060}
_REVERSED = {"a": 0.060, "b": 0.040, "c": 0.025}
_BY_PERSONA = {
    "economic_buyer": {"a": 0.060, "b": 0.035, "c": 0.025},
    "technical_evaluator": {"a": 0.025, "b": 0.040, "c": 0.065},
    "practitioner": {"a": 0.030, "b": 0.060, "c": 0.035},
    "executive": {"a": 0.055, "b": 0.025, "c": 0.035},
}
_PERSONA_FACTOR = {"economic_buyer": 0.9, "technical_evaluator": 1.2, "practitioner": 1.0, "executive": 0.8}


def _rates(case: str, persona: str, day: float) -> dict[str, float]:
    if case == "by_persona":
        return _BY_PERSONA[persona]
    table = _REVERSED if case == "drift" and day >= DAYS / 2 else _STATIONARY
    f = _PERSONA_FACTOR[persona]
    return {arm: r * f for arm, r in table.items()}


def _population(n: int, seed: int) -> list[tuple[float, str, float, float]]:
    """Per lead: arrival day, persona, the uniform click draw, the click delay (hours)."""
    rnd = random.Random(seed)
    return [(i * DAYS / n, rnd.choice(PERSONAS), rnd.random(), rnd.expovariate(1 / CLICK_DELAY_H))
            for i in range(n)]


def run_case(case: str, people: list[tuple[float, str, float, float]], seed: int,
             split: dict[str, Any] | None = None) -> dict[str, Any]:
    from ..sequences.adaptive import ArmCounts, decide, settings_of, since_change
    from ..sequences.adaptive_store import allocations
    from ..sequences.model import Arm, SplitSpec

    settings = settings_of(SplitSpec(arms=[Arm(name=a) for a in ARMS], **(split or SPLIT)))
    window_h = settings.window.total_seconds() / 3600
    lookback_h = settings.lookback.total_seconds() / 3600 if settings.lookback else math.inf
    # What the store's query returns (adaptive_store.daily_counts): per persona, arm and decision day the
    # settled [successes, failures], and those of the decisions whose window has closed.
    settled: dict[str, dict[str, dict[int, list[float]]]] = {p: {a: {} for a in ARMS} for p in PERSONAS}
    closed: dict[str, dict[str, dict[int, list[float]]]] = {p: {a: {} for a in ARMS} for p in PERSONAS}
    # (hour, key, what, sign, persona, arm, decision day), key = 2·seq + hit: what 0 = a success is known,
    # 1 = the window closes (a failure, and the decision is closed), 2 = the decision leaves the lookback
    events: list[tuple[float, int, int, int, str, str, int]] = []
    seq = 0
    uniform_rng = random.Random(seed + 1)
    clicks = {"adaptive": 0, "uniform": 0, "oracle": 0}
    picked = {a: 0 for a in ARMS}
    restarts: set[int] = set()
    names = list(ARMS)
    i = 0
    hour = 0
    while i < len(people):
        hour += 1
        while events and events[0][0] <= hour:  # settle what is known by now (and forget what aged out)
            _h, key, what, sign, persona, arm, on = heapq.heappop(events)
            hit = key % 2 == 1
            if what != 1 or not hit:
                settled[persona][arm].setdefault(on, [0.0, 0.0])[0 if hit else 1] += sign
            if what != 0:
                closed[persona][arm].setdefault(on, [0.0, 0.0])[0 if hit else 1] += sign
        batch = []
        while i < len(people) and people[i][0] * 24 < hour:
            batch.append((i, *people[i]))
            i += 1
        if not batch:
            continue
        state, cut = since_change(_as_counts(settled, ArmCounts), _as_counts(closed, ArmCounts), settings.drift)
        if cut is not None:
            restarts.add(cut)
        allocs = allocations(names, state, settings, {b[2] for b in batch})
        for lead_id, day, persona, u, delay in batch:
            rates = _rates(case, persona, day)
            arm, _how = decide(allocs[persona], settings.seed, "bench", lead_id)
            picked[arm] += 1
            clicked = u < rates[arm] and delay < CLICK_HORIZON_H
            clicks["adaptive"] += clicked
            hit = clicked and delay < window_h  # what the split learns: a click inside its reward window
            seq += 1
            key, d = 2 * seq + hit, hour // 24  # a success is known when the click happens, a failure
            if hit:                              # only when the window closes
                heapq.heappush(events, (hour + delay, key, 0, 1, persona, arm, d))
            heapq.heappush(events, (hour + window_h, key, 1, 1, persona, arm, d))
            if lookback_h < math.inf:
                heapq.heappush(events, (hour + lookback_h, -key, 2, -1, persona, arm, d))
            uni = uniform_rng.choice(ARMS)
            clicks["uniform"] += u < rates[uni] and delay < CLICK_HORIZON_H
            best = max(ARMS, key=lambda a, r=rates: r[a])  # type: ignore[misc]
            clicks["oracle"] += u < rates[best] and delay < CLICK_HORIZON_H
    gain = clicks["oracle"] - clicks["uniform"]
    return {
        "adaptive_clicks": clicks["adaptive"], "uniform_clicks": clicks["uniform"],
        "oracle_clicks": clicks["oracle"],
        "gain_vs_uniform_pct": round(100 * (clicks["adaptive"] - clicks["uniform"]) / max(1, clicks["uniform"]), 2),
        "share_of_oracle_gain": round((clicks["adaptive"] - clicks["uniform"]) / gain, 3) if gain else 0.0,
        "adaptive_arm_share": {a: round(n / len(people), 3) for a, n in picked.items()},
        "restarts_at_day": sorted(restarts),
    }


def _as_counts(daily: dict[str, dict[str, dict[int, list[float]]]], cls: Any) -> Any:
    return {p: {a: {d: cls(*v) for d, v in per_day.items()} for a, per_day in per_arm.items()}
            for p, per_arm in daily.items()}


# ---------------------------------------------------------------------------------------------------
# Send-time optimisation

STO_ZONES = ("America/New_York", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles")
STO_PERSONA_HOUR = {"economic_buyer": 8, "technical_evaluator": 15, "practitioner": 11, "executive": 17}


def _open_p(hour: int, preferred: int) -> float:
    d = min((hour - preferred) % 24, (preferred - hour) % 24)
    return 0.15 + 0.25 * math.exp(-d * d / 4.5)


def run_sto(n: int, seed: int) -> dict[str, Any]:
    from ..sequences import timing
    from ..sequences.model import SendWindow
    from ..sequences.send_time import best_time, histogram, pick_histogram

    rnd = random.Random(seed)
    window = SendWindow(days=["mon", "tue", "wed", "thu", "fri"], start="08:00", end="18:00", holidays=False)
    leads = []
    by_persona: dict[str, list[int]] = {p: [] for p in PERSONAS}
    for _ in range(n):
        persona = rnd.choice(PERSONAS)
        tz = ZoneInfo(rnd.choice(STO_ZONES))
        preferred = (STO_PERSONA_HOUR[persona] + round(rnd.gauss(0, 2.0))) % 24
        history = [((preferred + round(rnd.gauss(0, 1.5))) % 24, False) for _ in range(rnd.randint(0, 8))]
        history += [(rnd.randrange(24), True) for _ in range(rnd.randint(0, 3))]  # machine opens
        human = [h for h, bot in history if not bot]
        by_persona[persona] += human
        due = T0 + timedelta(seconds=rnd.uniform(0, 7 * 86400))
        leads.append((persona, tz, preferred, human, due))
    groups = {p: histogram(hours, f"persona:{p}") for p, hours in by_persona.items()}
    totals = {"plain": 0.0, "sto": 0.0, "oracle": 0.0}
    sources: dict[str, int] = {}
    for persona, tz, preferred, human, due in leads:
        plain = timing.next_allowed_send(window, None, tz, None, due)
        assert plain is not None
        hist = pick_histogram(histogram(human, "lead"), [groups[persona]])
        kind = hist.source.split(":")[0]
        sources[kind] = sources.get(kind, 0) + 1
        sto = best_time(hist, plain, tz, window, None, None)
        truth = histogram([], "truth")
        truth = type(truth)(tuple(round(1000 * _open_p(h, preferred)) for h in range(24)), "truth")
        oracle = best_time(truth, plain, tz, window, None, None)
        for key, at in (("plain", plain), ("sto", sto), ("oracle", oracle)):
            totals[key] += _open_p(at.astimezone(tz).hour, preferred)
    rates = {k: v / n for k, v in totals.items()}
    gain = rates["oracle"] - rates["plain"]
    return {
        "sto_leads": n, "plain_open_rate": round(rates["plain"], 4), "sto_open_rate": round(rates["sto"], 4),
        "oracle_open_rate": round(rates["oracle"], 4),
        "sto_open_rate_gain_pct": round(100 * (rates["sto"] - rates["plain"]) / rates["plain"], 2),
        "sto_share_of_oracle_gain": round((rates["sto"] - rates["plain"]) / gain, 3) if gain else 0.0,
        "sto_histogram_sources": sources,
    }


CASES = ("stationary", "by_persona", "drift")


def run(leads: int, sto_leads: int, seeds: list[int], echo: Callable[[str], None]) -> dict[str, Any]:
    """Every case on every seed (each seed its own population and decision stream); the printed figures
    are the worst (case, seed)'s, the results file has them all."""
    started = time.perf_counter()
    cases: dict[str, dict[str, Any]] = {case: {} for case in CASES}
    for seed in seeds:
        people = _population(leads, seed)
        for case in CASES:
            t = time.perf_counter()
            split = {**SPLIT, "seed": seed}
            cases[case][str(seed)] = result = run_case(case, people, seed, split)
            echo(f"{case} seed {seed}: share {result['share_of_oracle_gain']} ({time.perf_counter() - t:.1f}s)")
    runs = [(case, seed) for case in CASES for seed in cases[case]]
    worst_case, worst_seed = min(runs, key=lambda r: cases[r[0]][r[1]]["share_of_oracle_gain"])
    t = time.perf_counter()
    sto = run_sto(sto_leads, seeds[0])
    echo(f"send time: {sto} ({time.perf_counter() - t:.1f}s)")
    w = cases[worst_case][worst_seed]
    summary = {case: {"min": min(r["share_of_oracle_gain"] for r in per_seed.values()),
                      "mean": round(sum(r["share_of_oracle_gain"] for r in per_seed.values()) / len(per_seed), 3),
                      "by_seed": {sd: r["share_of_oracle_gain"] for sd, r in per_seed.items()}}
               for case, per_seed in cases.items()}
    return {
        "scenario": NAME,
        "adaptive_clicks": w["adaptive_clicks"], "uniform_clicks": w["uniform_clicks"],
        "oracle_clicks": w["oracle_clicks"], "gain_vs_uniform_pct": w["gain_vs_uniform_pct"],
        "share_of_oracle_gain": w["share_of_oracle_gain"],
        "sto_open_rate_gain_pct": sto["sto_open_rate_gain_pct"],
        "sto_share_of_oracle_gain": sto["sto_share_of_oracle_gain"],
        "worst_case": worst_case, "worst_seed": int(worst_seed), "seeds": seeds, "leads": leads,
        "split": {**SPLIT, "seed": "each seed's own"}, "click_horizon_hours": CLICK_HORIZON_H,
        "share_by_case": summary, "cases": cases, "sto": sto,
        "seconds": round(time.perf_counter() - started, 1),
    }


def command(
    leads: int = typer.Option(50_000, "--leads", help="Simulated leads per split case."),
    sto_leads: int = typer.Option(20_000, "--sto-leads", help="Simulated leads for send-time optimisation."),
    seed: int = typer.Option(23, "--seed", help="The first seed."),
    seeds: int = typer.Option(5, "--seeds", help="Seeds per split case: seed, seed + 1, …"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Adaptive split vs uniform vs oracle (three cases × several seeds), and optimal send time vs plain vs
    oracle. Prints the issue's keys (the worst case and seed's) and the STO figures; the results file has
    every case and seed."""
    import json

    from .common import record

    result = run(leads, sto_leads, list(range(seed, seed + max(1, seeds))), echo=lambda m: typer.echo(m, err=True))
    path = record(result, as_json=False, echo=lambda _m: None)
    printed = {key: result[key] for key in PRINTED}
    if as_json:
        typer.echo(json.dumps(printed))
        return
    for key, value in printed.items():
        typer.echo(f"{key:>28}: {value}")
    typer.echo(f"{'saved (every case and seed)':>28}: {path}")


#: What the command prints: the keys issue 23 names, then the send-time figures.
PRINTED = ("scenario", "adaptive_clicks", "uniform_clicks", "oracle_clicks", "gain_vs_uniform_pct",
           "share_of_oracle_gain", "sto_open_rate_gain_pct", "sto_share_of_oracle_gain")
