"""Grade profiles: ⅓-letter steps from D, clamping, profile selection, explain, MQL on grade change."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nurture_tui.errors import ValidationError
from nurture_tui.scoring import grading, service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead

from .helpers import add_lead

PROFILES = [
    {"name": "buyers", "when": {"persona": ["economic_buyer"]}, "criteria": [
        {"field": "title", "op": "contains", "value": ["vp", "director"], "steps": 3},
        {"field": "industry", "op": "in", "value": ["Software"], "steps": 2},
        {"field": "employees", "op": "between", "value": [200, 5000], "steps": 2},
        {"field": "country", "op": "in", "value": "Germany", "steps": 1},
        {"field": "title", "op": "contains", "value": "intern", "steps": -6},
    ]},
    {"name": "everyone else", "criteria": [{"field": "employees", "op": "gte", "value": 50, "steps": 1}]},
]


def _grades(conn):
    return dict(conn.execute(select(lead.c.email, lead.c.grade)).all())


def test_steps_from_d_and_clamping(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        grading.save_profiles(conn, [grading.parse_profile(p, f"p{i}") for i, p in enumerate(PROFILES)])
        add_lead(conn, "top@x.io", persona="economic_buyer", title="VP Engineering", industry="software",
                 employees=800, country=" germany ")
        add_lead(conn, "mid@x.io", persona="economic_buyer", title="Director", industry="Retail")
        add_lead(conn, "low@x.io", persona="economic_buyer", title="Marketing Intern")
        add_lead(conn, "none@x.io", persona="economic_buyer")
        add_lead(conn, "other@x.io", persona="practitioner", title="VP", employees=60)
        add_lead(conn, "small@x.io", employees=10)
        grading.regrade(conn, None, now, workspace.settings)
        assert _grades(conn) == {
            "top@x.io": "A-",  # D + 3 + 2 + 2 + 1 = 8 steps
            "mid@x.io": "C",  # D + 3 → C (one letter)
            "low@x.io": "F",  # D − 6 clamped at F
            "none@x.io": "D",
            "other@x.io": "D+",  # second profile
            "small@x.io": "D",
        }
        top = conn.execute(select(lead.c.id).where(lead.c.email == "top@x.io")).scalar_one()
        ex = grading.explain(conn, top)
        assert ex.profile == "buyers" and ex.grade == "A-" and len(ex.matched) == 4


def test_clamped_at_a_plus(workspace):
    with write_tx(workspace.engine) as conn:
        grading.save_profiles(conn, [grading.parse_profile({"name": "big", "criteria": [
            {"field": "employees", "op": "gte", "value": 1, "steps": 9},
            {"field": "employees", "op": "lte", "value": 10, "steps": 9}]}, "p")])
        add_lead(conn, employees=5)
        grading.regrade(conn, None, workspace.clock.now(), workspace.settings)
        assert set(_grades(conn).values()) == {"A+"}


def test_regrade_on_field_change_can_qualify(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        grading.save_profiles(conn, [grading.parse_profile(PROFILES[0], "p")])
        lid = add_lead(conn, persona="economic_buyer", title="Analyst")
        grading.regrade(conn, [lid], now, workspace.settings)
        service.adjust_score(conn, lid, 150, "event", now, workspace.settings)  # score OK, grade D: no MQL
        assert conn.execute(select(lead.c.mql_at).where(lead.c.id == lid)).scalar() is None
        conn.execute(lead.update().where(lead.c.id == lid).values(title="VP Sales", industry="Software"))
        assert grading.regrade(conn, [lid], now, workspace.settings) == [lid]  # D + 5 = B-: qualifies
        assert conn.execute(select(lead.c.grade).where(lead.c.id == lid)).scalar() == "B-"


def test_profile_removed_ungrades(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        grading.save_profiles(conn, [grading.parse_profile(PROFILES[1], "p")])
        add_lead(conn, employees=100)
        grading.regrade(conn, None, now, workspace.settings)
        assert set(_grades(conn).values()) == {"D+"}
        grading.save_profiles(conn, [], replace=True)
        grading.regrade(conn, None, now, workspace.settings)
        assert set(_grades(conn).values()) == {None}


@pytest.mark.parametrize("crit, where", [
    ({"field": "shoe_size", "op": "in", "value": ["9"], "steps": 1}, "p.criteria[0].field"),
    ({"field": "title", "op": "gte", "value": 3, "steps": 1}, "p.criteria[0].op"),
    ({"field": "title", "op": "in", "value": ["x"], "steps": 0}, "p.criteria[0].steps"),
    ({"field": "employees", "op": "between", "value": [1], "steps": 1}, "p.criteria[0].value"),
])
def test_bad_criteria_name_the_path(crit, where):
    with pytest.raises(ValidationError) as err:
        grading.parse_profile({"name": "x", "criteria": [crit]}, "p")
    assert err.value.where == where
