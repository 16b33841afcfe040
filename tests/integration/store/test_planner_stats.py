"""Planner statistics where the server's autovacuum does not keep them (store/planner_stats.py): changed
tables of the schema are analysed at autovacuum's threshold, once, and only by one keeper at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from nurture_tui.engine.seeding import make_leads
from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.models import metadata
from nurture_tui.store.planner_stats import StatisticsKeeper, analyze_due, server_analyzes

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.pg


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _add_leads(engine: Engine, n: int) -> None:
    with write_tx(engine) as conn:
        make_leads(conn, n, NOW)
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # the counts reach pg_stat at this commit


def _analysed(engine: Engine, table: str) -> tuple[bool, float]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT s.last_analyze IS NOT NULL, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c "
            "ON c.oid = s.relid WHERE s.schemaname = current_schema() AND s.relname = :t"), {"t": table}).one()
    return bool(row[0]), float(row[1])


def _eventually(cond: Callable[[], bool], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _due_now(engine: Engine, again_after: float = 60.0) -> list[str]:
    with engine.begin() as conn:
        return analyze_due(conn, again_after)


def test_changed_tables_are_analysed_once_past_autovacuums_threshold(pg: Engine) -> None:
    assert _analysed(pg, "lead") == (False, -1.0)  # never analysed: the planner guesses from its size
    _add_leads(pg, 40)  # under 50 changed rows: not yet
    time.sleep(0.2)
    assert "lead" not in _due_now(pg)
    _add_leads(pg, 200)
    assert _eventually(lambda: "lead" in _due_now(pg))
    assert _analysed(pg, "lead") == (True, 240.0)
    assert "lead" not in _due_now(pg)  # nothing changed since
    _add_leads(pg, 20)  # under 50 + 10 % of 240
    time.sleep(0.2)
    assert "lead" not in _due_now(pg, again_after=0)
    _add_leads(pg, 500)  # past it, but analysed less than a minute ago (autovacuum's naptime)
    time.sleep(0.2)
    assert "lead" not in _due_now(pg)
    assert _eventually(lambda: "lead" in _due_now(pg, again_after=0))
    assert _analysed(pg, "lead") == (True, 760.0)


def test_two_keepers_of_one_schema_take_turns(pg: Engine) -> None:
    _add_leads(pg, 100)
    with pg.begin() as holder:  # another keeper is in the middle of its round
        holder.execute(text("SELECT pg_advisory_xact_lock(hashtext('nurture.analyze:' || current_schema()))"))
        time.sleep(0.2)
        assert _due_now(pg) == []
    assert _eventually(lambda: "lead" in _due_now(pg) or _analysed(pg, "lead")[0])


def test_the_keeper_thread_analyses_while_running(pg: Engine) -> None:
    keeper = StatisticsKeeper(pg, every=0.05, always=True)
    with keeper:
        assert keeper.running
        _add_leads(pg, 300)
        assert _eventually(lambda: _analysed(pg, "lead")[0])
    assert not keeper.running and keeper.analyzed >= 1
    assert _analysed(pg, "lead") == (True, 300.0)


def test_by_default_it_runs_only_where_autovacuum_does_not(pg: Engine, sqlite_url: str) -> None:
    with pg.connect() as conn:
        server_does = server_analyzes(conn)
    with StatisticsKeeper(pg) as keeper:
        assert keeper.running is (not server_does)
    lite = make_engine(sqlite_url)
    try:
        with StatisticsKeeper(lite, always=True) as keeper:
            assert not keeper.running  # SQLite: not its business
    finally:
        lite.dispose()
