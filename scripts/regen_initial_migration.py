"""Regenerate the initial Alembic revision from the models (pre-release only: while there is one
revision, schema changes are folded into it). Run with `make migration`; review the diff.

It autogenerates against an empty PostgreSQL schema (NURTURE_TEST_PG_URL) so that server defaults
are rendered portably (`true`/`false`, which SQLite also accepts)."""

from __future__ import annotations

import os
import uuid

from alembic import command
from sqlalchemy import text

from nurture_tui.store.engine import make_engine
from nurture_tui.store.migrate import MIGRATIONS_DIR, alembic_config

PG_URL = os.environ.get("NURTURE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

versions = MIGRATIONS_DIR / "versions"
for old in versions.glob("0001_*.py"):
    old.unlink()
schema = f"regen_{uuid.uuid4().hex[:8]}"
engine = make_engine(PG_URL)
with engine.begin() as conn:
    conn.execute(text(f"CREATE SCHEMA {schema}"))
try:
    with engine.begin() as conn:
        conn.execute(text(f"SET search_path TO {schema}"))
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
finally:
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
print(*versions.glob("0001_*.py"))
