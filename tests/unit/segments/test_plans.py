"""The hot segment queries use the indexes they were designed for (SQLite `EXPLAIN QUERY PLAN`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from nurture_tui.segments import compiler, service
from nurture_tui.segments.explain import query_plan
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead
from nurture_tui.workspace import Workspace

ATTRIBUTE: dict[str, Any] = {"all": [{"field": "stage", "eq": "decision"}, {"field": "country", "eq": "us"},
                     {"field": "score", "between": [20, 80]}]}
BEHAVIOUR = {"all": [{"activity": "open", "within": "14d"}, {"activity": "click", "at_least": 2}]}
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the `clock` fixture's T0
MIXED = {"all": [*ATTRIBUTE["all"], {"activity": "open", "within": "14d"}]}


@pytest.fixture
def conn(sqlite_workspace: Workspace) -> Iterator[Connection]:
    ws = sqlite_workspace
    now = ws.clock.now()
    with write_tx(ws.engine) as c:
        c.execute(insert(lead), [{"email": f"{i}@x.io", "stage": "decision", "country": "US", "score": i}
                                 for i in range(300)])
        c.execute(insert(activity), [{"lead_id": i % 300 + 1, "kind": ("open", "click")[i % 2],
                                      "at": now - timedelta(hours=i), "meta": {}} for i in range(1500)])
        service.save_segment(c, "Hot", BEHAVIOUR, user="t", now=now, materialize=True)
    with ws.engine.connect() as c:
        yield c


def _count_plan(conn: Connection, rule: dict[str, Any]) -> str:
    return "\n".join(query_plan(conn, compiler.count_statement(conn, rule, NOW)))


def test_attribute_count_uses_the_covering_lead_index(conn: Connection) -> None:
    plan = _count_plan(conn, ATTRIBUTE)
    assert "USING COVERING INDEX ix_lead_stage_country_score (stage=?)" in plan, plan
    assert "SCAN lead" not in plan


def test_behaviour_count_is_driven_by_the_smaller_set(conn: Connection) -> None:
    # 150 opens in the 14-day window (75 leads) vs 750 clicks: the opens set drives, clicks are probed
    # per lead on the covering (kind, lead_id, …) index — nothing is scanned, sorted or looked up twice.
    plan = _count_plan(conn, BEHAVIOUR)
    assert plan.splitlines() == [
        "SEARCH lead USING INTEGER PRIMARY KEY (rowid=?)",
        "LIST SUBQUERY 1",
        "SEARCH activity USING COVERING INDEX ix_activity_kind_at (kind=? AND at>?)",
        "CORRELATED SCALAR SUBQUERY 2",
        "SEARCH activity USING COVERING INDEX ix_activity_kind_lead_at (kind=? AND lead_id=?)",
    ], plan


def test_behaviour_driver_flips_when_the_other_set_is_smaller(conn: Connection) -> None:
    rule = {"all": [{"activity": "open", "within": "60d"}, {"activity": "click", "at_least": 5}]}
    plan = _count_plan(conn, rule)
    assert plan.splitlines()[:3] == [
        "SEARCH lead USING INTEGER PRIMARY KEY (rowid=?)",
        "LIST SUBQUERY 2",
        "SEARCH activity USING COVERING INDEX ix_activity_kind_lead_at (kind=?)",  # per-lead counts, no sort
    ], plan
    assert "SEARCH activity USING COVERING INDEX ix_activity_kind_lead_at (kind=? AND lead_id=? AND at>?)" in plan


def test_mixed_count_combines_both(conn: Connection) -> None:
    plan = _count_plan(conn, MIXED)
    assert "ix_lead_stage_country_score" in plan and "ix_activity_kind_at (kind=? AND at>?)" in plan, plan


def test_hot_segment_count_is_a_membership_index_range(conn: Connection) -> None:
    plan = _count_plan(conn, {"in_segment": "Hot"})
    assert plan == "SEARCH segment_member USING COVERING INDEX sqlite_autoindex_segment_member_1 (segment_id=?)"


@pytest.mark.parametrize("rule", [ATTRIBUTE, BEHAVIOUR, MIXED, {"in_segment": "Hot"}])
def test_probe_form_is_driven_by_the_given_ids(conn: Connection, rule: dict[str, Any]) -> None:
    clause = compiler.where_clause(conn, rule, NOW, probe=True)
    plan = "\n".join(query_plan(conn, select(lead.c.id).where(lead.c.id.in_([1, 2, 3]), clause)))
    assert plan.splitlines()[0] == "SEARCH lead USING INTEGER PRIMARY KEY (rowid=?)", plan
    assert "SCAN" not in plan and "ix_activity_kind_at " not in plan, plan
    if rule is BEHAVIOUR or rule is MIXED:
        assert "USING COVERING INDEX ix_activity_kind_lead_at (kind=? AND lead_id=? AND at>?)" in plan, plan
