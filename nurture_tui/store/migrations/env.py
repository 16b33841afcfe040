"""Alembic environment: runs on the connection handed over by `nurture_tui.store.migrate`."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, Connection

from nurture_tui.store.engine import make_engine
from nurture_tui.store.models import metadata
from nurture_tui.store.types import UTCDateTime

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our shared column types by name so migrations import them instead of inlining."""
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            return "nurture_tui.store.types.UTCDateTime()"
        if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
            return "nurture_tui.store.types.JsonType"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        compare_server_default=False,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
