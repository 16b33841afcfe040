"""Test helpers: publish a sequence definition straight into the store, make leads, run the engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from nurture_tui.engine.advance import run_due
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import enrollment, lead, sequence, sequence_version
from nurture_tui.workspace import Workspace


def publish(conn: Connection, definition: dict[str, Any], now: datetime, status: str = "active") -> int:
    """Insert a sequence + version 1 from a definition dict; returns the version id."""
    defn = SequenceDef.model_validate(definition)
    sid = conn.execute(insert(sequence).values(
        name=defn.name, status=status, draft=defn.to_json(), created_at=now, updated_at=now
    )).inserted_primary_key[0]
    vid = conn.execute(insert(sequence_version).values(
        sequence_id=sid, number=1, definition=defn.to_json(), published_at=now
    )).inserted_primary_key[0]
    conn.execute(sequence.update().where(sequence.c.id == sid).values(current_version_id=vid))
    return int(vid)


def make_leads(conn: Connection, n: int, now: datetime, **fields: Any) -> list[int]:
    start = conn.execute(select(lead.c.id).order_by(lead.c.id.desc()).limit(1)).scalar() or 0
    rows = [{"email": f"lead{start + i}@example.com", "first_name": f"Lead{start + i}", "created_at": now,
             "updated_at": now, **fields} for i in range(n)]
    ins = insert(lead).returning(lead.c.id, sort_by_parameter_order=True)
    return [int(x) for x in conn.execute(ins, rows).scalars()]


def run(ws: Workspace, limit: int = 500) -> int:
    return run_due(ws.engine, ws.clock.now, ws.settings, limit=limit)


def state(ws: Workspace, enrollment_id: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(enrollment).where(enrollment.c.id == enrollment_id)).one()


def tx(ws: Workspace) -> Any:
    return write_tx(ws.engine)
