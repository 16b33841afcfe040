"""The lead detail's activity timeline shows every entry whole: an adaptive decision's explanation (longer than
a line) wraps inside the Detail column, which takes the screen's width, and stays in view at 80×24 and at
160×48 (issue 23)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from textual.widgets import DataTable
from tui_support import make_test_app, wait_for

from nurture_tui.engine.seeding import publish_definition
from nurture_tui.sequences.adaptive_store import explain
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import adaptive_decision, lead, sequence
from nurture_tui.tui.screens.lead_detail import DETAIL_MARGIN, LeadDetailScreen
from nurture_tui.workspace import Workspace

ARMS = {name: {"s": 12, "f": 388, "alpha": 13, "beta": 389, "mean": 0.03234, "lo": 0.01738, "hi": 0.05221,
               "p_best": 0.25, "share": 0.25} for name in ("roi-guide", "tech-deep-dive", "case-study", "webinar")}


def _decision(ws: Workspace) -> tuple[int, str]:
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        publish_definition(conn, {"name": "explained", "steps": [{"id": "offer", "split": {
            "mode": "adaptive", "arms": [{"name": n, "steps": [{"id": f"w-{n}", "wait": {"duration": "1d"}}]}
                                         for n in ARMS]}}]}, now)
        seq_id = conn.execute(select(sequence.c.id).where(sequence.c.name == "explained")).scalar_one()
        lead_id = int(conn.execute(select(lead.c.id).order_by(lead.c.id)).scalars().first() or 0)
        row = {"kind": "split", "sequence_id": seq_id, "version_id": 1, "node_id": "offer", "lead_id": lead_id,
               "arm": "webinar", "audience": "economic_buyer", "decided_at": now - timedelta(minutes=5),
               "closes_at": now + timedelta(days=3),
               "detail": {"audience": "economic_buyer", "floor": 0.03, "winner": None, "arms": ARMS,
                          "how": "thompson", "metric": "click", "restart": "2026-02-20"}}
        conn.execute(insert(adaptive_decision).values(**row))
    return lead_id, explain(row)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_a_long_explanation_wraps_whole(seeded_ws: Workspace, size: tuple[int, int], tmp_path: Path) -> None:
    lead_id, text = _decision(seeded_ws)
    assert len(text) > 250  # far more than the 120 characters the timeline used to show
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=size) as pilot:
        app.push_screen(LeadDetailScreen(lead_id))
        await wait_for(pilot, lambda: isinstance(app.screen, LeadDetailScreen) and app.screen.detail is not None)
        table: DataTable[Any] = app.screen.query_one("#timeline", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        keys = [k for k in table.rows if str(table.get_row(k)[1]) == "decision"]
        assert len(keys) == 1
        cell = table.get_row(keys[0])[2]
        assert str(cell) == text  # whole, not cut
        width = size[0] - DETAIL_MARGIN
        assert [c.width for c in table.columns.values()] == [16, 12, width]
        assert table.rows[keys[0]].height >= -(-len(text) // width) > 1  # as many lines as the text needs
        # the lead's panels take at most half the screen, so the explanation is in view even at 80x24; the
        # fields scroll there instead (they fit at 160x48)
        assert table.region.bottom <= size[1] - 1 and table.region.height >= 6
        fields = app.screen.query_one("#fields-box")
        assert (fields.max_scroll_y > 0) == (size == (80, 24)) and fields.can_focus
        app.save_screenshot(str(tmp_path / f"lead-detail-{size[0]}x{size[1]}.svg"))
