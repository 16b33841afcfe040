"""Saved segments: CRUD with audit, cached counts, reference checks, hot (materialised) segments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, insert, select, update

from nurture_tui.errors import NotFoundError, ValidationError
from nurture_tui.segments import service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, audit, lead, segment_member
from nurture_tui.workspace import Workspace

OPENERS = {"activity": "open", "within": "14d"}


def _members(conn: Connection, seg_id: int) -> set[int]:
    return {r[0] for r in conn.execute(select(segment_member.c.lead_id).where(segment_member.c.segment_id == seg_id))}


def test_crud_with_audit_and_cached_count(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(lead), [{"email": f"l{i}@x.io", "employees": i * 100} for i in range(5)])
        info = service.save_segment(conn, "Big", {"field": "employees", "ge": 200}, user="ann", now=now,
                                    description="200+ staff")
        assert (info.cached_count, info.counted_at, info.rendering) == (3, now, "employees ≥ 200")
        later = now + timedelta(hours=1)
        again = service.save_segment(conn, "big", {"field": "employees", "ge": 400}, user="bob", now=later)
        assert (again.id, again.name, again.description, again.cached_count) == (info.id, "Big", "200+ staff", 1)
        assert [s.name for s in service.list_segments(conn)] == ["Big"]
        service.delete_segment(conn, "BIG", user="cy", now=later)
        assert service.find_segment(conn, "Big") is None
        trail = conn.execute(select(audit.c.user, audit.c.action, audit.c.before, audit.c.after)
                             .where(audit.c.entity == "segment").order_by(audit.c.id)).all()
    assert [(t.user, t.action) for t in trail] == [("ann", "segment.create"), ("bob", "segment.update"),
                                                  ("cy", "segment.delete")]
    assert trail[1].before["rule"] == {"field": "employees", "op": "ge", "value": 200}
    assert trail[1].after["rule"] == {"field": "employees", "op": "ge", "value": 400}
    assert trail[2].after is None


def test_reference_errors_and_nothing_half_written(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        service.save_segment(conn, "A", {"field": "score", "ge": 1}, user="u", now=now)
        service.save_segment(conn, "B", {"any": [{"in_segment": "A"}]}, user="u", now=now)
    with write_tx(workspace.engine) as conn:
        with pytest.raises(ValidationError, match=r"^rule\.in_segment: segment 'A' cannot contain itself$"):
            service.save_segment(conn, "A", {"in_segment": "a"}, user="u", now=now)
        with pytest.raises(ValidationError, match=r"rule\.all\[1\]\.in_segment: segment references form a cycle "
                                                  r"\(B → A → B\)"):
            service.save_segment(conn, "A", {"all": [{"field": "score", "ge": 1}, {"in_segment": "B"}]},
                                 user="u", now=now)
        with pytest.raises(ValidationError, match=r"rule\.in_segment: no saved segment named 'C'"):
            service.save_segment(conn, "D", {"in_segment": "C"}, user="u", now=now)
        with pytest.raises(ValidationError, match="still used by segment"):
            service.delete_segment(conn, "A", user="u", now=now)
        with pytest.raises(ValidationError, match="name: a segment name is"):
            service.save_segment(conn, "  ", {"all": []}, user="u", now=now)
        with pytest.raises(NotFoundError, match="segment 'Z': no such segment"):
            service.get_segment(conn, "Z")
    with workspace.engine.connect() as conn:
        assert service.get_segment(conn, "A").rendering == "score ≥ 1"
        assert service.find_segment(conn, "D") is None


def test_hot_segment_incremental_and_full_refresh(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        a, b, c = (conn.execute(insert(lead).values(email=e, stage="decision").returning(lead.c.id)).scalar_one()
                   for e in ("a@x.io", "b@x.io", "c@x.io"))
        conn.execute(insert(activity), [{"lead_id": a, "kind": "open", "at": now - timedelta(days=1), "meta": {}}])
        hot = service.save_segment(conn, "Openers", OPENERS, user="u", now=now, materialize=True)
        nested = service.save_segment(conn, "Decision openers",
                                      {"all": [{"in_segment": "Openers"}, {"field": "stage", "eq": "decision"}]},
                                      user="u", now=now, materialize=True)
        assert _members(conn, hot.id) == {a} and _members(conn, nested.id) == {a}
        assert hot.materialized_at == now and hot.cached_count == 1

        # b opens an email; c leaves the decision stage: only those leads are re-evaluated.
        conn.execute(insert(activity), [{"lead_id": b, "kind": "open", "at": now, "meta": {}}])
        conn.execute(update(lead).where(lead.c.id == a).values(stage="awareness"))
        results = {r.segment: r for r in service.refresh_for_leads(conn, [a, b, c], now)}
        assert (results["Openers"].added, results["Openers"].removed) == (1, 0)
        assert (results["Decision openers"].added, results["Decision openers"].removed) == (1, 1)
        assert _members(conn, hot.id) == {a, b} and _members(conn, nested.id) == {b}
        assert service.get_segment(conn, "Openers").cached_count == 2

        # Time alone moves a's open out of the 14-day window: the periodic full refresh catches it.
        later = now + timedelta(days=13, hours=12)
        full = {r.segment: r for r in service.refresh_materialized(conn, later)}
        assert list(full) == ["Openers", "Decision openers"]  # dependencies first
        assert (full["Openers"].removed, full["Openers"].count) == (1, 1)
        assert _members(conn, hot.id) == {b}

        # Turning materialisation off drops the membership rows; counts still work from the rule.
        off = service.save_segment(conn, "Decision openers", {"all": [{"in_segment": "Openers"}]}, user="u",
                                   now=later, materialize=False)
        assert not off.materialized and _members(conn, nested.id) == set() and off.cached_count == 1


def test_incremental_refresh_equals_full_recompute_after_random_changes(workspace: Workspace) -> None:
    """Random lead edits and new activity, refreshed only for the touched leads, leave every hot segment
    exactly where a from-scratch evaluation puts it."""
    import random

    from nurture_tui.segments import compiler

    from . import dataset

    rng = random.Random(7)
    now = workspace.clock.now()
    rules = {
        "Warm openers": {"all": [{"activity": "open", "within": "14d"}, {"field": "score", "ge": 20}]},
        "Nested hot": {"any": [{"in_segment": "Warm openers"}, {"field": "stage", "eq": "decision"}]},
    }
    with write_tx(workspace.engine) as conn:
        dataset.build(conn, 3, now, leads=40, activities=150)
        for name, rule in rules.items():
            service.save_segment(conn, name, rule, user="t", now=now, materialize=True,
                                 half_life_days=dataset.HALF_LIFE)
        ids = [r[0] for r in conn.execute(select(lead.c.id))]
        for _ in range(5):
            touched = rng.sample(ids, 6)
            for lid in touched[:3]:
                conn.execute(update(lead).where(lead.c.id == lid).values(
                    score=rng.choice([0.0, 25.0, 80.0]), stage=rng.choice(["awareness", "decision", None])))
            conn.execute(insert(activity), [{"lead_id": lid, "kind": "open", "at": now - timedelta(days=1),
                                             "bot": rng.random() < 0.3, "meta": {}} for lid in touched[3:]])
            service.refresh_for_leads(conn, touched, now, half_life_days=dataset.HALF_LIFE)
            for name in ("Recent openers", *rules):
                info = service.get_segment(conn, name)
                expected = set(compiler.members(conn, info.rule, now, half_life_days=dataset.HALF_LIFE,
                                                use_materialized=False))
                assert _members(conn, info.id) == expected, name


def test_changing_a_segment_rebuilds_hot_segments_built_on_it(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        small, big = (conn.execute(insert(lead).values(email=e, employees=n).returning(lead.c.id)).scalar_one()
                      for e, n in (("s@x.io", 10), ("b@x.io", 900)))
        service.save_segment(conn, "Sized", {"field": "employees", "ge": 500}, user="u", now=now)
        top = service.save_segment(conn, "Top", {"all": [{"in_segment": "Sized"}]}, user="u", now=now,
                                   materialize=True)
        assert _members(conn, top.id) == {big}
        service.save_segment(conn, "Sized", {"field": "employees", "lt": 500}, user="u", now=now)
        assert _members(conn, top.id) == {small}
        assert service.get_segment(conn, "Top").cached_count == 1


def test_check_rule_puts_reference_problems_at_their_conditions(workspace: Workspace) -> None:
    from nurture_tui.segments.validate import check_rule

    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        service.save_segment(conn, "A", {"field": "score", "ge": 1}, user="u", now=now)
        service.save_segment(conn, "B", {"any": [{"in_segment": "A"}]}, user="u", now=now)
    data = {"all": [{"in_segment": "b"}, {"field": "score", "ge": "x"}, {"any": [{"in_segment": "Ghost"}]},
                    {"in_segment": "A"}]}
    with workspace.engine.connect() as conn:
        assert [(p.at, str(p)) for p in check_rule(conn, data, segment_name="A")] == [
            (("all", 0), "rule.all[0].in_segment: segment references form a cycle (B → A → B)"),
            (("all", 1), 'rule.all[1].ge: expected a number, got "x"'),
            (("all", 2, "any", 0), "rule.all[2].any[0].in_segment: no saved segment named 'Ghost'"),
            (("all", 3), "rule.all[3].in_segment: segment 'A' cannot contain itself"),
        ]
        assert [str(p) for p in check_rule(conn, data)] == [
            'rule.all[1].ge: expected a number, got "x"',
            "rule.all[2].any[0].in_segment: no saved segment named 'Ghost'"]
        assert check_rule(conn, {"all": [{"in_segment": "B"}]}, segment_name="New") == []
