"""Shared fixtures: databases (SQLite file and an isolated PostgreSQL schema), clocks, workspaces.

PostgreSQL: every test gets its own schema in NURTURE_TEST_PG_URL, so parallel workers and parallel
test runs never see each other's rows. Without a reachable server the PG tests are skipped locally and
fail in CI (CI=true), where PostgreSQL is required.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from nurture_tui.clock import VirtualClock
from nurture_tui.config import Settings, load_settings
from nurture_tui.store.engine import make_engine
from nurture_tui.store.models import metadata
from nurture_tui.workspace import Workspace

PG_URL = os.environ.get("NURTURE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
TEST_SECRET_KEY = "test-secret-key-not-for-production"
TEST_EVENTS_TOKEN = "test-events-token-not-for-production"


def _pg_available() -> str | None:
    try:
        eng = make_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


_PG_PROBLEM: str | bool | None = False  # False = not probed yet


def require_pg() -> None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_available()
    if _PG_PROBLEM:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL required in CI but unreachable at {PG_URL}: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {_PG_PROBLEM}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema (dropped afterwards)."""
    require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'workspace.db'}"


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both backends: every test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workspace.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


def make_settings(db_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(None, db_url, data_dir=tmp_path, **overrides)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def workspace(settings: Settings, clock: VirtualClock) -> Iterator[Workspace]:
    """An empty workspace (tables created from the models) on both backends, with a frozen clock."""
    engine = make_engine(settings.db_url)
    metadata.create_all(engine)
    ws = Workspace(settings=settings, engine=engine, clock=clock)
    yield ws
    ws.close()


@pytest.fixture
def sqlite_workspace(sqlite_url: str, tmp_path: Path, clock: VirtualClock) -> Iterator[Workspace]:
    """SQLite only, for tests that are about SQLite behaviour."""
    engine = make_engine(sqlite_url)
    metadata.create_all(engine)
    ws = Workspace(settings=make_settings(sqlite_url, tmp_path), engine=engine, clock=clock)
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def _isolate_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's real config file or workspace. They run with explicit test secrets
    (the daemon and the web app refuse the built-in ones, issue 20 item 1); subprocesses inherit them.
    A test of the refusal deletes them."""
    monkeypatch.setenv("NURTURE_CONFIG", str(tmp_path / "absent-config.toml"))
    monkeypatch.setenv("NURTURE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NURTURE_MAIL__SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("NURTURE_MAIL__EVENTS_API_TOKEN", TEST_EVENTS_TOKEN)
