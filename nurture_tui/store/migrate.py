"""Create or upgrade a workspace database with Alembic (`nurture init`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from . import rollups, sf_capture

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if engine is not None:
        # configparser interpolates `%`; URLs carry percent-escapes (e.g. `options=-csearch_path%3D…`).
        url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to `revision`; returns (before, after) revision ids."""
    before = current_revision(engine)
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if revision == "head":
            ensure_rollups(conn)  # triggers keeping the report rollups exact (store/rollups.py)
            sf_capture.install(conn)  # Salesforce change capture (store/sf_capture.py)
    return before, current_revision(engine)


def ensure_rollups(conn: Connection) -> bool:
    """The report rollups' tables (a workspace made before one existed gets it: while there is a single
    revision, new tables are folded into it) and their triggers, rebuilt from the log when either was
    missing or out of date. True when it installed or rebuilt anything."""
    from .models import metadata

    existing = set(conn.dialect.get_table_names(conn))
    missing = [metadata.tables[name] for name in rollups.ROLLUP_TABLES if name not in existing]
    # a rollup table of an older layout (send_cohort before its shard column) is derived data: made again
    stale = [metadata.tables[name] for name in rollups.ROLLUP_TABLES if name in existing
             and {c["name"] for c in conn.dialect.get_columns(conn, name)} != set(metadata.tables[name].c.keys())]
    if stale:
        rollups.uninstall(conn)
        for table in stale:
            table.drop(conn)
    missing += stale
    for table in missing:
        table.create(conn)
    return rollups.install(conn, rebuild=True if missing else None) or bool(missing)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
