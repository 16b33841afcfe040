"""Compiler behaviour that the property test does not pin down by itself: the decayed score scale,
bots, references between segments, the entry points (count/members/matches/sample/where_clause)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from nurture_tui.errors import ValidationError
from nurture_tui.scoring.decay import EPOCH_KEY
from nurture_tui.segments import compiler
from nurture_tui.store import meta
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead, segment
from nurture_tui.workspace import Workspace


def _lead(conn: Connection, email: str, **values: Any) -> int:
    return int(conn.execute(insert(lead).values(email=email, **values).returning(lead.c.id)).scalar_one())


def test_score_is_compared_on_the_live_decayed_scale(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        meta.put(conn, EPOCH_KEY, (now - timedelta(days=30)).isoformat())  # one half-life ago: f(now) = 0.5
        a = _lead(conn, "a@x.io", score=100.0)  # live 50
        b = _lead(conn, "b@x.io", score=98.0)  # live 49
    with workspace.engine.connect() as conn:
        assert compiler.matching_ids(conn, {"field": "score", "ge": 50}, [a, b], now, half_life_days=30) == {a}
        assert set(compiler.members(conn, {"field": "score", "lt": 50}, now, half_life_days=30)) == {b}
        # Without decay the stored value is the live value.
        assert compiler.count(conn, {"field": "score", "ge": 99}, now, half_life_days=0) == 1
        # A week later both have decayed further.
        later = now + timedelta(days=7)
        assert compiler.count(conn, {"field": "score", "ge": 45}, later, half_life_days=30) == 0
        (top,) = compiler.sample(conn, {"all": []}, now, n=1, order="score", half_life_days=30)
        assert top.id == a and top.score == 50.0
        (top,) = compiler.sample(conn, {"all": []}, now, n=1, order="score", half_life_days=0)
        assert top.score == 100.0


def test_bot_activity_never_counts(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        human, bot = _lead(conn, "h@x.io"), _lead(conn, "b@x.io")
        conn.execute(insert(activity), [
            {"lead_id": human, "kind": "click", "at": now - timedelta(days=1), "bot": False, "meta": {}},
            {"lead_id": bot, "kind": "click", "at": now - timedelta(days=1), "bot": True, "meta": {}},
        ])
    with workspace.engine.connect() as conn:
        for probe in (False, True):
            assert set(compiler.members(conn, {"activity": "click", "within": "7d"}, now, probe=probe)) == {human}
            assert compiler.matching_ids(conn, {"activity": "click", "never": True}, [human, bot], now) == {bot}


def test_segment_references_inline_and_detect_cycles(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        big = _lead(conn, "big@x.io", employees=500)
        _lead(conn, "small@x.io", employees=5)
        conn.execute(insert(segment), [
            {"name": "Big", "rule": {"field": "employees", "ge": 100}},
            {"name": "A", "rule": {"in_segment": "B"}},
            {"name": "B", "rule": {"all": [{"field": "score", "ge": 0}, {"in_segment": "A"}]}},
        ])
    with workspace.engine.connect() as conn:
        assert list(compiler.members(conn, {"in_segment": "big"}, now)) == [big]
        with pytest.raises(ValidationError) as info:
            compiler.count(conn, {"any": [{"field": "score", "ge": 1}, {"in_segment": "A"}]}, now)
        assert str(info.value) == \
            "segment 'B': rule.all[1].in_segment: segment 'A' refers to itself (A → B → A)"
        with pytest.raises(ValidationError, match=r"rule\.all\[0\]\.in_segment: no saved segment named 'Nope'"):
            compiler.count(conn, {"all": [{"in_segment": "Nope"}]}, now)


def test_entry_points_agree(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        ids = [_lead(conn, f"l{i}@x.io", stage="decision" if i % 3 == 0 else "awareness", country="US")
               for i in range(30)]
    rule = {"all": [{"field": "stage", "eq": "decision"}, {"field": "country", "eq": "us"}]}
    expected = {i for n, i in enumerate(ids) if n % 3 == 0}
    with workspace.engine.connect() as conn:
        assert compiler.count(conn, rule, now) == len(expected)
        assert list(compiler.members(conn, rule, now, batch=4)) == sorted(expected)
        assert compiler.matching_ids(conn, rule, [*ids, 10**9], now) == expected
        assert all(compiler.matches(conn, rule, i, now) == (i in expected) for i in ids[:6])
        clause = compiler.where_clause(conn, rule, now)
        assert {r[0] for r in conn.execute(select(lead.c.id).where(clause))} == expected
        assert [s.id for s in compiler.sample(conn, rule, now, n=3, order="id")] == sorted(expected)[:3]
        assert compiler.matching_ids(conn, rule, [], now) == set()
        with pytest.raises(ValidationError, match="order: expected one of"):
            compiler.sample(conn, rule, now, order="sideways")


def test_naive_now_is_refused(workspace: Workspace) -> None:
    with workspace.engine.connect() as conn, pytest.raises(ValueError, match="timezone-aware"):
        compiler.where_clause(conn, {"all": []}, workspace.clock.now().replace(tzinfo=None))


def test_regex_means_the_same_on_both_databases(workspace: Workspace) -> None:
    """Case-insensitive always; a user's own leading (?i) is not doubled; \\b is a word boundary on
    PostgreSQL too (where it would otherwise be a backspace)."""
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        acme = _lead(conn, "a@x.io", company="The ACME Corp")
        town = _lead(conn, "b@x.io", company="Acmeville Ltd")
    with workspace.engine.connect() as conn:
        for pattern in (r"\bacme\b", r"(?i)\bacme\b"):
            assert set(compiler.members(conn, {"field": "company", "regex": pattern}, now)) == {acme}
        assert set(compiler.members(conn, {"field": "company", "regex": r"acme\B"}, now)) == {town}
        assert set(compiler.members(conn, {"field": "company", "regex": "^acme"}, now)) == {town}


def test_without_a_half_life_the_workspace_scale_recorded_by_scoring_is_used(workspace: Workspace) -> None:
    """The engine evaluates rules without settings: it must decay like the scoring that wrote the column."""
    from nurture_tui.scoring.decay import load_scale

    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        load_scale(conn, 10.0, now - timedelta(days=10))  # scoring ran with a 10-day half-life
        a = _lead(conn, "a@x.io", score=100.0)  # one 10-day half-life later: live 50
    with workspace.engine.connect() as conn:
        assert compiler.matching_ids(conn, {"field": "score", "ge": 49}, [a], now) == {a}
        assert compiler.matching_ids(conn, {"field": "score", "ge": 51}, [a], now) == set()
        assert compiler.matching_ids(conn, {"field": "score", "ge": 51}, [a], now, half_life_days=0) == {a}
