"""A sequence launched to tens of thousands of new members on PostgreSQL (store.engine.bulk_write_tx): each
enrollment takes its lead's rollup lock until the end of its transaction, and the server's lock table holds
a few thousand more than `max_locks_per_transaction × max_connections` (6,400 by default). In one transaction
a 25,000-member sweep failed with "out of shared memory", and failed again at every sweep after."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from nurture_tui.clock import VirtualClock
from nurture_tui.engine.enroll import entry_sweep
from nurture_tui.engine.seeding import make_leads, publish_definition
from nurture_tui.store.engine import BULK_TX_LEADS, bulk_write_tx, write_tx
from nurture_tui.store.tables import enrollment
from nurture_tui.workspace import Workspace

MEMBERS = 25_000
LAUNCH = {"name": "launch", "entry": {"type": "segment", "rule": {"field": "country", "op": "eq", "value": "DE"}},
          "steps": [{"id": "w", "wait": {"duration": "7d"}}]}

pytestmark = [pytest.mark.pg, pytest.mark.slow]


@pytest.fixture(params=["pg"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url")


def _enrolled(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(enrollment)).scalar_one())


def test_a_sweep_of_25000_new_members_commits_in_parts_and_enrols_everyone(
        workspace: Workspace, clock: VirtualClock) -> None:
    ws = workspace
    now = clock.now()
    with write_tx(ws.engine) as conn:
        publish_definition(conn, LAUNCH, now)
    for _ in range(MEMBERS // BULK_TX_LEADS):
        with write_tx(ws.engine) as conn:
            make_leads(conn, BULK_TX_LEADS, now, country="DE")
    commits = 0
    with bulk_write_tx(ws.engine) as (conn, commit):
        assert commit is not None

        def counted() -> None:
            nonlocal commits
            commits += 1
            commit()

        assert entry_sweep(conn, now, ws.settings, commit=counted) == MEMBERS
    assert commits == MEMBERS // BULK_TX_LEADS and _enrolled(ws) == MEMBERS
    with bulk_write_tx(ws.engine) as (conn, commit):
        assert entry_sweep(conn, now, ws.settings, commit=commit) == 0  # a second sweep finds nobody new
