"""Small helpers for the engine tests (imported as a top-level module: test dirs are not packages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from nurture_tui.engine.advance import run_due
from nurture_tui.engine.seeding import make_leads, publish_definition
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import enrollment
from nurture_tui.workspace import Workspace

publish = publish_definition
__all__ = ["make_leads", "publish", "run", "state", "tx"]


def run(ws: Workspace, limit: int = 500) -> int:
    return run_due(ws.engine, ws.clock.now, ws.settings, limit=limit)


def state(ws: Workspace, enrollment_id: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(enrollment).where(enrollment.c.id == enrollment_id)).one()


def tx(ws: Workspace) -> Any:
    return write_tx(ws.engine)
