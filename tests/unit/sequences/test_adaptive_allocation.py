"""The adaptive split's pure algorithms (sequences/adaptive.py): determinism, exploration floor, winner
declaration, pooling, P(best) and intervals, the change detection (drift), and the settings' validation."""

from __future__ import annotations

from collections import Counter

import pytest

from nurture_tui.sequences.adaptive import (
    CHANGE_MIN,
    CHANGE_Z,
    WINNER_MIN,
    ArmCounts,
    Beta,
    build_allocation,
    change_point,
    decide,
    describe,
    p_best,
    pooled_posterior,
    settings_of,
    since_change,
)
from nurture_tui.sequences.model import Arm, SequenceDef, SplitSpec
from nurture_tui.sequences.validate import Catalog, validate_definition

NAMES = ["a", "b", "c"]


def _settings(**kw: object) -> object:
    return settings_of(SplitSpec(arms=[Arm(name=n) for n in NAMES], mode="adaptive", **kw))  # type: ignore[arg-type]


def test_same_seed_and_data_give_the_same_allocation_and_another_seed_differs() -> None:
    s = _settings(seed=7)
    counts = {"a": ArmCounts(10, 290), "b": ArmCounts(14, 286), "c": ArmCounts(12, 288)}
    first = build_allocation(NAMES, counts, None, s)
    again = build_allocation(NAMES, dict(counts), None, s)
    picks = [decide(first, 7, "node", lead) for lead in range(500)]
    assert picks == [decide(again, 7, "node", lead) for lead in range(500)]
    assert first.to_json() == again.to_json()
    assert picks != [decide(first, 8, "node", lead) for lead in range(500)]
    assert picks != [decide(first, 7, "other-node", lead) for lead in range(500)]


def test_exploration_floor_gives_every_arm_its_share_even_when_one_arm_dominates() -> None:
    s = _settings(floor=0.05)
    counts = {"a": ArmCounts(5, 995), "b": ArmCounts(300, 700), "c": ArmCounts(4, 996)}
    alloc = build_allocation(NAMES, counts, None, s)
    picks = Counter(decide(alloc, 1, "n", lead)[0] for lead in range(20_000))
    for arm in ("a", "c"):
        assert 0.045 <= picks[arm] / 20_000 <= 0.06  # ≈ the floor: Thompson never picks them here
    shares = {a.name: a.share for a in alloc.arms}
    assert shares["a"] == pytest.approx(0.05, abs=1e-3) and shares["b"] == pytest.approx(0.9, abs=1e-3)
    assert sum(shares.values()) == pytest.approx(1.0)
    hows = Counter(decide(alloc, 1, "n", lead)[1] for lead in range(2_000))
    assert set(hows) == {"explore", "thompson"}


def test_winner_declared_at_p_best_095_with_enough_data_then_takes_all_traffic() -> None:
    s = _settings(winner=True)
    clear = {"a": ArmCounts(20, 980), "b": ArmCounts(60, 940), "c": ArmCounts(25, 975)}
    alloc = build_allocation(NAMES, clear, None, s)
    assert alloc.winner == "b"
    assert {decide(alloc, 3, "n", lead) for lead in range(300)} == {("b", "winner")}
    assert [a.share for a in alloc.arms] == [0.0, 1.0, 0.0]
    # too little data per arm: no winner, even at a high P(best)
    thin = {"a": ArmCounts(0, WINNER_MIN - 1), "b": ArmCounts(30, 200), "c": ArmCounts(0, 150)}
    assert build_allocation(NAMES, thin, None, s).winner is None
    # close arms: P(best) < 0.95, no winner; the rule off: never a winner
    close = {"a": ArmCounts(50, 950), "b": ArmCounts(55, 945), "c": ArmCounts(52, 948)}
    assert build_allocation(NAMES, close, None, s).winner is None
    assert build_allocation(NAMES, clear, None, _settings()).winner is None


def test_pooling_pulls_a_thin_audience_toward_everyone_and_lets_a_rich_one_speak() -> None:
    overall = ArmCounts(100, 900)  # overall mean ≈ 0.1
    thin = pooled_posterior(overall, ArmCounts(2, 0), pool=20)
    # prior Beta(1 + 20·μ, 1 + 20·(1−μ)) with μ = 101/1002, plus the audience's 2 successes
    mu = 101 / 1002
    assert thin.alpha == pytest.approx(1 + 20 * mu + 2) and thin.beta == pytest.approx(1 + 20 * (1 - mu))
    assert thin.mean < 0.25  # its own data alone (2 of 2) would say ≈ 0.75
    rich = pooled_posterior(overall, ArmCounts(400, 600), pool=20)
    assert rich.mean == pytest.approx(0.39, abs=0.01)
    # an overall with little data gives a weak prior: m = min(pool, overall n)
    weak = pooled_posterior(ArmCounts(1, 2), ArmCounts(0, 0), pool=20)
    assert weak.alpha + weak.beta == pytest.approx(2 + 3)


def test_audiences_converge_on_different_arms() -> None:
    s = _settings(audience="persona")
    overall = {"a": ArmCounts(130, 1870), "b": ArmCounts(130, 1870), "c": ArmCounts(60, 1940)}
    econ = {"a": ArmCounts(100, 900), "b": ArmCounts(30, 970), "c": ArmCounts(30, 970)}
    tech = {"a": ArmCounts(30, 970), "b": ArmCounts(100, 900), "c": ArmCounts(30, 970)}
    assert max(build_allocation(NAMES, overall, econ, s, "econ").arms, key=lambda a: a.p_best).name == "a"
    assert max(build_allocation(NAMES, overall, tech, s, "tech").arms, key=lambda a: a.p_best).name == "b"


def test_p_best_and_interval_match_known_values() -> None:
    assert p_best([Beta(1, 1), Beta(1, 1)]) == pytest.approx([0.5, 0.5], abs=1e-3)
    # P(X > Y) for X ~ Beta(2,1), Y ~ Beta(1,1) is 2/3
    assert p_best([Beta(2, 1), Beta(1, 1)])[0] == pytest.approx(2 / 3, abs=5e-3)
    lo, hi = Beta(1, 1).interval()
    assert lo == pytest.approx(0.025, abs=3e-3) and hi == pytest.approx(0.975, abs=3e-3)
    lo, hi = Beta(51, 951).interval()  # ≈ 0.0509 ± 1.96·0.00694
    assert lo == pytest.approx(0.0382, abs=2e-3) and hi == pytest.approx(0.0654, abs=2e-3)


def test_describe_states_mean_and_interval_per_arm() -> None:
    alloc = build_allocation(NAMES, {"a": ArmCounts(5, 95)}, None, _settings())
    line = describe({**alloc.to_json(), "how": "thompson"})
    assert line.startswith("audience all, thompson: a 5.9% [")
    assert "b 50.0% [2.4%–97.6%] n=0" in line


def _days(rates: list[float], n: int = 200) -> dict[int, ArmCounts]:
    """One arm's closed decisions: n a day at each day's rate."""
    return {day: ArmCounts(round(n * r), n - round(n * r)) for day, r in enumerate(rates)}


def test_a_change_of_rates_is_found_at_its_day_and_the_evidence_restarts_there() -> None:
    steady = {"all": {"a": _days([0.06] * 20), "b": _days([0.03] * 20)}}
    assert change_point(steady, CHANGE_Z, CHANGE_MIN) is None
    counts, cut = since_change(steady, steady, drift=True)
    assert cut is None and counts["all"]["a"] == ArmCounts(240, 3760)
    drifted = {"all": {"a": _days([0.06] * 12 + [0.02] * 8), "b": _days([0.03] * 20)}}
    assert change_point(drifted, CHANGE_Z, CHANGE_MIN) == 12
    counts, cut = since_change(drifted, drifted, drift=True)
    assert cut == 12 and counts["all"]["a"] == ArmCounts(32, 1568) and counts["all"]["b"] == ArmCounts(48, 1552)
    counts, cut = since_change(drifted, drifted, drift=False)  # drift off: everything counts
    assert cut is None and counts["all"]["a"] == ArmCounts(176, 3824)
    # too few decisions after the change: not yet
    assert change_point({"all": {"a": _days([0.06] * 12 + [0.0] * 1, n=90)}}, CHANGE_Z, CHANGE_MIN) is None


def test_the_change_test_is_stratified_by_audience() -> None:
    # each audience steady, but the arm's traffic moves from the audience where it does well to the other:
    # the pooled rate drops, which is no change
    mix = {"hi": {"a": {d: ArmCounts(16, 184) if d < 10 else ArmCounts(2, 23) for d in range(20)}},
           "lo": {"a": {d: ArmCounts(1, 24) if d < 10 else ArmCounts(4, 196) for d in range(20)}}}
    assert change_point(mix, CHANGE_Z, CHANGE_MIN) is None
    flat = {"all": {"a": {d: mix["hi"]["a"][d] + mix["lo"]["a"][d] for d in range(20)}}}
    assert change_point(flat, CHANGE_Z, CHANGE_MIN) == 10


def test_the_second_change_is_found_after_the_first() -> None:
    twice = {"all": {"a": _days([0.06] * 10 + [0.01] * 10 + [0.08] * 10)}}
    assert since_change(twice, twice, drift=True)[1] == 20
    assert settings_of(SplitSpec(arms=[Arm(name="a")], mode="adaptive")).drift is True
    assert settings_of(SplitSpec(arms=[Arm(name="a")], mode="adaptive", drift=False)).drift is False


def _problems(split: dict) -> list[str]:
    defn = SequenceDef.model_validate({"name": "x", "steps": [{"id": "ab", "split": split}]})
    return [f"{p.where}: {p.message}" for p in validate_definition(defn, Catalog())]


ARMS = [{"name": "a"}, {"name": "b"}]


def test_validation_of_adaptive_settings() -> None:
    assert _problems({"mode": "adaptive", "arms": ARMS}) == []
    assert _problems({"mode": "adaptive", "arms": ARMS, "metric": "goal", "window": "14d", "floor": 0.1,
                      "audience": "stage", "pool": 50, "lookback": "30d", "drift": False, "seed": 3}) == []
    assert _problems({"mode": "adaptive", "arms": ARMS, "floor": 0.6}) == [
        "steps.ab.split.floor: floor must be between 0 and 1/2 arms = 0.5 (got 0.6)"]
    assert _problems({"mode": "adaptive", "arms": ARMS, "window": "soon"}) == [
        "steps.ab.split.window: window: not a duration: 'soon' (use e.g. 5d, 36h, 1w2d, 90m)"]
    assert _problems({"mode": "adaptive", "arms": ARMS, "winner": True, "lookback": "30d"}) == [
        "steps.ab.split.winner: winner and lookback do not mix: a declared winner stops the evidence a lookback "
        "needs (pick one)"]
    assert _problems({"mode": "adaptive", "arms": ARMS, "lookback": "1d"}) == [  # click: 1d by default
        "steps.ab.split.lookback: lookback 1d must be longer than the reward window 1d (no decision would "
        "settle inside it)"]
    assert _problems({"mode": "adaptive", "arms": ARMS, "lookback": "2d"}) == []
    assert _problems({"mode": "adaptive", "arms": ARMS, "metric": "goal", "lookback": "2d"}) == [  # goal: 3d
        "steps.ab.split.lookback: lookback 2d must be longer than the reward window 3d (no decision would "
        "settle inside it)"]
    assert _problems({"mode": "adaptive", "arms": ARMS, "audience": "segment"}) == [
        "steps.ab.split.segments: audience: segment needs segments (the segments to learn in, in order)"]
    assert _problems({"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}], "metric": "open"}) == [
        "steps.ab.split.metric: metric is a setting of adaptive splits (add mode: adaptive)"]
    assert _problems({"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}], "drift": False}) == [
        "steps.ab.split.drift: drift is a setting of adaptive splits (add mode: adaptive)"]
    assert _problems({"arms": ARMS})[0] == "steps.ab.split.arms[0]: weight must be ≥ 1 (got 0)"
