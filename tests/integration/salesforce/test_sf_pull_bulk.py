"""The pull's bulk write path (salesforce/pull.py `_apply`): pages of new leads are written with the rollup
row trigger `progress_lead_ins` set aside on SQLite and counted in `lead_cohort` once per page
(`store.rollups.bulk_lead_inserts`) — the cells must be exactly what the trigger gives, on both backends, and
the trigger must be back (same definition) for every later insert."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.store import rollups
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead, lead_cohort
from nurture_tui.workspace import Workspace

from .sf_support import count, sync


def _cells(ws: Workspace) -> dict[str, int]:
    with ws.engine.connect() as conn:
        return {str(day): int(n) for day, n in conn.execute(
            select(lead_cohort.c.day, lead_cohort.c.n).where(lead_cohort.c.sequence_id == 0)) if n}


def _by_created_day(ws: Workspace) -> dict[str, int]:
    with ws.engine.connect() as conn:
        days = Counter(c.astimezone(UTC).date().isoformat()
                       for c in conn.execute(select(lead.c.created_at)).scalars() if c is not None)
    return dict(days)


def test_pulled_leads_are_counted_by_creation_day_as_the_trigger_counts_them(sf_ws: Workspace,
                                                                             seeded: Emulator) -> None:
    with write_tx(sf_ws.engine) as conn:  # a local lead before the pull: counted by the trigger itself
        conn.execute(insert(lead).values(email="local@example.com", created_at=datetime(2025, 5, 1, tzinfo=UTC),
                                         custom={}))
    report = sync(sf_ws, push=False)
    assert report.ok, report.error
    assert report.pulled["Lead"].inserted >= 300
    expected = _by_created_day(sf_ws)
    assert sum(expected.values()) == count(sf_ws, lead) > 300 and len(expected) > 1  # not vacuous
    assert _cells(sf_ws) == expected
    with sf_ws.engine.connect() as conn:
        assert rollups.installed(conn)  # the trigger is back, its definition unchanged (fingerprint)
    with write_tx(sf_ws.engine) as conn:  # … and counts the next insert again
        conn.execute(insert(lead).values(email="later@example.com", created_at=datetime(2025, 5, 1, tzinfo=UTC),
                                         custom={}))
    assert _cells(sf_ws)["2025-05-01"] == 2 and _cells(sf_ws) == _by_created_day(sf_ws)


def test_a_failed_bulk_insert_leaves_the_trigger_in_place(workspace: Workspace) -> None:
    """An insert that fails inside the suspension (a duplicate email) rolls back with its transaction, the
    trigger's DROP included; the rows it wrote before failing were counted, so nothing is left half done."""
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(lead).values(email="a@example.com", created_at=datetime(2025, 5, 1, tzinfo=UTC),
                                         custom={}))
    rows: list[dict[str, Any]] = [{"email": e, "created_at": datetime(2025, 5, 2, tzinfo=UTC), "custom": {}}
                                  for e in ("b@example.com", "a@example.com")]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), write_tx(workspace.engine) as conn, \
            rollups.bulk_lead_inserts(conn):
        for row in rows:
            conn.execute(insert(lead).values(**row))
    with workspace.engine.connect() as conn:
        assert rollups.installed(conn)
    assert _cells(workspace) == _by_created_day(workspace) == {"2025-05-01": 1}
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(lead).values(email="c@example.com", created_at=datetime(2025, 5, 3, tzinfo=UTC),
                                         custom={}))
    assert _cells(workspace) == {"2025-05-01": 1, "2025-05-03": 1}
