"""Fixtures for the sequences tests: the sample library, leads/accounts/segments in a workspace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select

from nurture_tui.store.engine import write_tx
from nurture_tui.store.models import ALL_MODELS
from nurture_tui.store.tables import account, lead, segment
from nurture_tui.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]
SAMPLES = sorted((REPO / "sequences").glob("*.yaml"))
SAMPLE_SEGMENTS = {"named-accounts": {"field": "account.named_account", "eq": True}}


def add_account(conn: Connection, **fields: Any) -> int:
    values = {"name": "Acme Corp", "custom": {}, **fields}
    return int(conn.execute(insert(account).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def add_lead(conn: Connection, email: str, now: datetime, **fields: Any) -> int:
    values = {"email": email, "first_name": "Dana", "last_name": "Scully", "company": "Acme Corp",
              "created_at": now, "updated_at": now, "custom": {}, **fields}
    return int(conn.execute(insert(lead).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def add_segment(conn: Connection, name: str, rule: dict[str, Any]) -> None:
    conn.execute(insert(segment).values(name=name, rule=rule))


def row_counts(conn: Connection) -> dict[str, int]:
    return {m.__tablename__: int(conn.execute(select(func.count()).select_from(m.__table__)).scalar_one())  # type: ignore[attr-defined]
            for m in ALL_MODELS}


@pytest.fixture
def samples_ws(workspace: Workspace) -> Workspace:
    """A workspace with the segments the sample library names."""
    with write_tx(workspace.engine) as conn:
        for name, rule in SAMPLE_SEGMENTS.items():
            add_segment(conn, name, rule)
    return workspace


@pytest.fixture
def tx(workspace: Workspace) -> Callable[[], Any]:
    return lambda: write_tx(workspace.engine)
