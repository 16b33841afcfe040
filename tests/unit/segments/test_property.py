"""Property test: the SQL compiler (set form and probe form) agrees with a naive Python evaluator on
random data and random rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nurture_tui.errors import ValidationError
from nurture_tui.segments import compiler, fields
from nurture_tui.segments.rules import parse_rule
from nurture_tui.store.engine import write_tx
from nurture_tui.store.models.people import GRADES, PERSONAS, STAGES
from nurture_tui.workspace import Workspace

from . import dataset, naive
from .dataset import HALF_LIFE

DATES = ["2026-01-01", "2026-02-27T10:00:00", "30d", "7d", "1d", "90d", "2025-11-15"]
DURATIONS = ["1d", "7d", "14d", "30d", "90d", "36h"]
REGEXES = ["^a", "acme|globex", r"\d", "o'n", "^$", "ing$", "[a-c]+i"]
VALUES: dict[str, list[Any]] = {
    "industry": ["software", "Fintech", "RETAIL", "", "soft"], "country": ["us", "DE", "germany", "u"],
    "company": ["acme", "50%", "under_score", "Globex", "inc", "ACME INC"], "first_name": ["ann", "BOB", "chloé", "a"],
    "last_name": ["smith", "o'neil", "LEE"], "email": ["acme", "lead1", "@mail.org", "LEAD2"],
    "employees": [5, 50, 100, 250], "score": [0, 10, 50, 54.9, 100, 55],
    "opted_out": [True, False], "bounced": [True, False],
    "created_at": DATES, "last_activity_at": DATES, "mql_at": DATES,
    "account.industry": ["software", "fintech", ""], "account.employees": [10, 150, 1000],
    "account.named_account": [True, False], "account.created_at": DATES, "account.country": ["us", "de"],
    "custom.plan": ["pro", "free", "Enterprise Plus", "PRO"], "custom.seats": [5, 5.5, 20, 1],
    "custom.beta": [True, False], "custom.note": ["", "call", "vip"],
    "stage": list(STAGES), "grade": ["A+", "B", "C-", "F", "b+"], "persona": list(PERSONAS),
    "owner": ["alice", "BOB", "nobody"], "tags": ["vip", "partner", "VIP", "x"],
}


def _custom_ops(sample: Any) -> tuple[str, ...]:
    if isinstance(sample, bool):
        return ("eq", "ne", "in", "not_in", "is_empty", "not_empty")
    if isinstance(sample, (int, float)):
        return ("eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in", "is_empty", "not_empty")
    return ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "regex",
            "is_empty", "not_empty")


@st.composite
def field_conditions(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(VALUES)))
    spec = fields.lookup(name)
    assert spec is not None
    pool = VALUES[name]
    ops = _custom_ops(pool[0]) if spec.kind == fields.CUSTOM else fields.OPS_BY_KIND[spec.kind]
    op = draw(st.sampled_from(ops))
    if op in fields.NO_VALUE_OPS:
        return {"field": name, "op": op}
    if op in fields.DURATION_OPS:
        return {"field": name, "op": op, "value": draw(st.sampled_from(DURATIONS))}
    if op == "regex":
        return {"field": name, "op": op, "value": draw(st.sampled_from(REGEXES))}
    if op in fields.LIST_OPS:
        return {"field": name, "op": op, "value": draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))}
    if op == "between":
        pair = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)),
                      key=lambda v: (pool.index(v) if spec.kind in (fields.STAGE, fields.DATE) else v))
        if spec.kind == fields.GRADE:
            pair = sorted(pair, key=lambda g: GRADES.index(g.upper()))
        if spec.kind == fields.DATE:
            pair = sorted(pair, key=lambda d: str(naive.parse_instant(d, dataset_now())))
        return {"field": name, "op": op, "value": pair}
    return {"field": name, "op": op, "value": draw(st.sampled_from(pool))}


def dataset_now() -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the `clock` fixture's T0


@st.composite
def activity_conditions(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"activity": draw(st.sampled_from(["open", "click", "form", "reply", "sent"]))}
    if draw(st.booleans()) and draw(st.booleans()):
        data["activity"] = draw(st.lists(st.sampled_from(dataset.KINDS), min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 3)) == 0:
        data["template"] = draw(st.sampled_from(["welcome", "PRICING-offer", "missing"]))
    if draw(st.integers(0, 3)) == 0:
        data["sequence"] = draw(st.sampled_from(["onboarding", "Nurture-B"]))
    if draw(st.integers(0, 3)) == 0:
        data["url"] = draw(st.sampled_from(["pricing", "*/blog/*", "https://ex.com/docs", "a_b", "*plan?"]))
    shape = draw(st.sampled_from(["count", "count", "last"]))
    if shape == "last":
        data["last_performed"] = {draw(st.sampled_from(["before", "after"])): draw(st.sampled_from(DATES))}
        return data
    if draw(st.booleans()):
        data["within"] = draw(st.sampled_from(DURATIONS))
    elif draw(st.integers(0, 3)) == 0:
        data["since"] = draw(st.sampled_from(["2026-02-01", "2026-01-15T12:00:00"]))
    if draw(st.integers(0, 4)) == 0:
        data["until"] = "2026-02-20"
    count_op = draw(st.sampled_from(["", "at_least", "at_most", "exactly", "never"]))
    if count_op == "never":
        data["never"] = True
    elif count_op:
        data[count_op] = draw(st.integers(1 if count_op == "at_least" else 0, 4))
    return data


membership = st.one_of(
    st.builds(lambda n: {"in_segment": n}, st.sampled_from(sorted(dataset.SAVED))),
    st.builds(lambda n, s: {"in_sequence": n, "status": s}, st.sampled_from(["onboarding", "NURTURE-B", "none"]),
              st.sampled_from(["any", "active", "done", "exited", "goal"])),
    st.builds(lambda n, s: {"in_campaign": n, **({"status": s} if s else {})},
              st.sampled_from(["webinar q1", "Trade Show"]), st.sampled_from([None, "responded", "Sent"])),
    st.builds(lambda s: {"mql_status": s}, st.sampled_from(["any", "new", "accepted", "rejected", "recycled"])),
)
leaves = st.one_of(field_conditions(), field_conditions(), activity_conditions(), membership)
rules = st.recursive(
    leaves,
    lambda children: st.builds(lambda op, items: {op: items}, st.sampled_from(["all", "any", "none"]),
                               st.lists(children, min_size=0, max_size=3)),
    max_leaves=6,
)


@pytest.fixture(params=[11, 29])
def loaded(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[tuple[Workspace, naive.Snapshot]]:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        dataset.build(conn, request.param, now)
    with workspace.engine.connect() as conn:
        snap = naive.snapshot(conn, now, HALF_LIFE)
    yield workspace, snap


def _check(ws: Workspace, snap: naive.Snapshot, data: Any) -> None:
    try:
        rule = parse_rule(data)
    except ValidationError:
        assume(False)
        return
    expected = naive.members(snap, rule.root)
    all_ids = [ld["id"] for ld in snap.leads]
    with ws.engine.connect() as conn:
        got_set = set(compiler.members(conn, rule, snap.now, half_life_days=HALF_LIFE))
        got_probe = compiler.matching_ids(conn, rule, all_ids, snap.now, half_life_days=HALF_LIFE)
        got_inline = set(compiler.members(conn, rule, snap.now, half_life_days=HALF_LIFE, use_materialized=False))
        assert compiler.count(conn, rule, snap.now, half_life_days=HALF_LIFE) == len(expected), data
    assert got_set == expected, data
    assert got_probe == expected, data
    assert got_inline == expected, data


_SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(max_examples=120, **_SETTINGS)  # type: ignore[arg-type]
@given(data=rules)
def test_compiler_matches_naive_evaluator_sqlite(loaded: tuple[Workspace, naive.Snapshot], data: Any) -> None:
    _check(*loaded, data)


@pytest.mark.pg
@pytest.mark.parametrize("db_url", ["pg"], indirect=True)
@settings(max_examples=40, **_SETTINGS)  # type: ignore[arg-type]
@given(data=rules)
def test_compiler_matches_naive_evaluator_pg(loaded: tuple[Workspace, naive.Snapshot], data: Any) -> None:
    _check(*loaded, data)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(max_examples=60, **_SETTINGS)  # type: ignore[arg-type]
@given(leaf=leaves)
def test_every_leaf_kind_matches_someone_sometimes(loaded: tuple[Workspace, naive.Snapshot], leaf: Any) -> None:
    """Leaves alone (no group masking): the strongest per-condition check."""
    _check(*loaded, leaf)
