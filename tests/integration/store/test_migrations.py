"""Alembic: `upgrade head` on an empty database equals the models, and downgrade/upgrade round-trips.

Runs on SQLite and PostgreSQL (the `db_url` fixture). A model change without `make migration` fails
the first test with the exact differences.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from nurture_tui.store.engine import make_engine
from nurture_tui.store.migrate import current_revision, downgrade, head_revision, upgrade
from nurture_tui.store.models import metadata


def _diffs(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


def _assert_no_diffs(url: str) -> None:
    diffs = _diffs(url)
    assert not diffs, "models and migrations differ; run `make migration`:\n" + "\n".join(map(str, diffs))


def test_upgrade_head_on_empty_db_equals_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        before, after = upgrade(engine)
        assert before is None and after == head_revision()
    finally:
        engine.dispose()
    _assert_no_diffs(db_url)


def test_every_model_table_is_created(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(metadata.tables) <= names


def test_downgrade_base_then_upgrade_head_round_trips(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert current_revision(engine) is None
        leftover = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert leftover == set()
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    _assert_no_diffs(db_url)


def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    assert before == after == head_revision()


def test_hot_path_indexes_exist(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        insp = inspect(engine)

        def cols(table: str) -> set[tuple[str, ...]]:
            found = {tuple(ix["column_names"]) for ix in insp.get_indexes(table)}
            found |= {tuple(uc["column_names"]) for uc in insp.get_unique_constraints(table)}
            return found

        def served(table: str, *lead: str) -> bool:
            """Some index starts with these columns (a wider covering index serves the same lookups)."""
            return any(found[: len(lead)] == lead for found in cols(table))

        # The claim queue: (status, due_at) or, with due_at NULL once finished, due_at alone.
        assert served("enrollment", "status", "due_at") or served("enrollment", "due_at")
        assert served("activity", "lead_id", "at")
        assert served("activity", "kind", "at")
        assert served("lead", "score")
        assert ("email",) in cols("lead")  # unique
    finally:
        engine.dispose()
