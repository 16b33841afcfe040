"""Snapshots of the live screens (issue 18 items 1, 2) at 80×24 and 160×48: the leaderboard (leads, and the
accounts board) and the MQL triage with its hand-off panel. Seeded data, frozen clock, animations off; each
`run_before` waits for the screen's data and the header's sync state. Update with `--snapshot-update`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update
from tui_support import T0, make_test_app, wait_for

from nurture_tui.scoring import accounts, handoff
from nurture_tui.store import tables as t
from nurture_tui.store.engine import write_tx
from nurture_tui.workspace import Workspace

SIZES = [(80, 24), (160, 48)]


async def _settled(pilot: Any, ready: Callable[[], bool]) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…" and ready())
    await pilot.pause(0.2)


def _board_ready(app: Any, rows: int) -> Callable[[], bool]:
    return lambda: app.screen.table.row_count == rows and app.screen.updates >= 1


def _queue_ready(app: Any) -> Callable[[], bool]:
    s = app.screen
    return lambda: len(s.entries) == 2 and s.panel is not None and s.panel.mql_id == s.current().id


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_leaderboard(snap_compare: Any, seeded_ws: Workspace, size: tuple[int, int]) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _board_ready(app, 50))
        await pilot.press("down", "down")
        await _settled(pilot, lambda: app.screen.table.cursor_row == 2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_accounts_board(snap_compare: Any, seeded_ws: Workspace) -> None:
    with write_tx(seeded_ws.engine) as conn:
        for n, name in enumerate(("Acme", "Globex", "Hooli", "Initech", "Stark", "Umbrella", "Wayne", "Wonka"), 1):
            conn.execute(insert(t.account).values(id=n, name=f"{name} Corp", owner_id=1 + n % 2, created_at=T0))
            conn.execute(update(t.lead).where(t.lead.c.company == name).values(account_id=n))
        accounts.refresh(conn, None, T0, seeded_ws.settings)
    app = make_test_app(seeded_ws, initial_mode="leaderboard")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _board_ready(app, 50))
        await pilot.press("tab")
        await _settled(pilot, lambda: app.screen.kind == "accounts" and app.screen.table.row_count == 8)

    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_mql_triage(snap_compare: Any, seeded_ws: Workspace, size: tuple[int, int]) -> None:
    with write_tx(seeded_ws.engine) as conn:  # the seeded entries get their hand-off, as qualifying gives it
        conn.execute(insert(t.score_event), [{"lead_id": 9, "at": T0 - timedelta(hours=6 * k), "points": 4.0 * k,
                                              "reason": "demo request"} for k in range(8, 0, -1)])
        for mql_id in (1, 2):
            handoff.hand_off(conn, mql_id, T0, seeded_ws.settings.scoring)
    app = make_test_app(seeded_ws, initial_mode="mql")

    async def run_before(pilot: Any) -> None:
        await _settled(pilot, _queue_ready(app))
        await pilot.press("space")  # tagged, and the cursor on the next entry with its panel
        await _settled(pilot, lambda: app.screen.tagged and _queue_ready(app)() and app.screen.table.cursor_row == 1)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
