from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text

from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.models import Lead
from nurture_tui.workspace import Workspace

LEAD = Lead.__table__  # type: ignore[attr-defined]


def test_sqlite_pragmas_on_every_connection(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000  # issue 20 item 12
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_datetimes_round_trip_aware_utc(workspace: Workspace) -> None:
    when = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(LEAD), {"email": "a@example.com", "created_at": when})
    with workspace.engine.connect() as conn:
        row = conn.execute(select(LEAD.c.created_at, LEAD.c.score, LEAD.c.custom)).one()
    assert row.created_at == when and row.created_at.tzinfo is not None
    assert row.score == 0.0 and row.custom == {}


def test_naive_datetime_is_refused(workspace: Workspace) -> None:
    with pytest.raises(Exception, match="naive datetime"), workspace.engine.begin() as conn:
        conn.execute(insert(LEAD), {"email": "b@example.com", "created_at": datetime(2026, 1, 1)})


def test_email_unique(workspace: Workspace) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(insert(LEAD), {"email": "c@example.com"})
    with pytest.raises(Exception), workspace.engine.begin() as conn:  # noqa: B017
        conn.execute(insert(LEAD), {"email": "c@example.com"})
    with workspace.engine.connect() as conn:
        assert conn.execute(text("select count(*) from lead")).scalar() == 1
