"""The Reports screen on the reports' worked example: every report as a table and its chart, picked with
`[` `]`; the filter form, the period presets and clearing; CSV export to a path (the CLI's CSV, byte for
byte); snapshots at 80×24 and 160×48."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from tui_support import T0, make_test_app, wait_for

from nurture_tui.clock import VirtualClock
from nurture_tui.config import Settings
from nurture_tui.console.facade import Console
from nurture_tui.reports.render import as_csv
from nurture_tui.store.engine import make_engine
from nurture_tui.store.models import metadata
from nurture_tui.tui.report_views import table_columns
from nurture_tui.tui.screens.dialogs.prompt import PromptModal
from nurture_tui.tui.screens.dialogs.report_filter import ReportFilterModal, ReportFilters
from nurture_tui.tui.screens.reports import ReportsScreen
from nurture_tui.tui.widgets.charts.widget import ReportChart
from nurture_tui.tui.widgets.common.keyed_table import KeyedTable
from nurture_tui.workspace import Workspace
from tests.integration.reports.report_fixture import build


@pytest.fixture
def reports_ws(tmp_path: Path) -> Iterator[Workspace]:
    """The reports' worked example (`report_fixture.build`: the figures docs/reports.md shows) on a clock
    frozen at its `until` day, an admin at the keyboard."""
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    settings = Settings(db_url=url, data_dir=tmp_path / "data", user={"name": "alice", "role": "admin"})
    ws = Workspace(settings=settings, engine=engine, clock=VirtualClock(T0))
    build(ws)
    yield ws
    ws.close()


CHART_KINDS = {"emails": "trend", "funnel": "bars", "progression": "bars", "time-to-opportunity": "histogram",
               "influence": "bars", "splits": "bars", "mql": "bars", "adaptive": "bars"}


def _shown(app: Any, name: str, filters: ReportFilters | None = None) -> bool:
    s = app.screen
    return (isinstance(s, ReportsScreen) and s.report is not None and s.report.name == name
            and (filters is None or s.filters == filters) and s.query_one(ReportChart).spec is not None
            and s.query_one(ReportChart).spec.title != name)


async def _open(pilot: Any, name: str = "emails") -> ReportsScreen:
    await wait_for(pilot, lambda: _shown(pilot.app, name))
    return pilot.app.screen  # type: ignore[no-any-return]


def _table_rows(screen: ReportsScreen) -> list[list[str]]:
    table = screen.query_one("#report", KeyedTable)
    return [[str(c) for c in table.get_row(k)] for k in table.ordered_row_keys()]


async def test_every_report_is_a_table_and_a_chart(reports_ws: Workspace) -> None:
    console = Console.open(reports_ws)
    app = make_test_app(reports_ws, initial_mode="reports")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot)
        names = console.reports.names()
        for i, name in enumerate(names):
            if i:
                await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda name=name: _shown(app, name))
            expected = console.reports.report(name)
            assert screen.report is not None and screen.report.rows == expected.rows
            table = screen.query_one("#report", KeyedTable)
            assert [str(c.label) for c in table.columns.values()] == table_columns(expected)
            assert table.row_count == len(expected.rows)
            assert set(table_columns(expected)) == set(expected.columns)  # reordered, none dropped
            spec = screen.query_one(ReportChart).spec
            assert spec is not None and spec.kind == CHART_KINDS[name] and spec.has_data
        await pilot.press("right_square_bracket")  # wraps round to the first
        await wait_for(pilot, lambda: _shown(app, "emails"))
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: _shown(app, "adaptive"))
        rows = _table_rows(screen)  # newest first: L101's send time, L121's arm after a restart, L101's arm
        assert [r[:2] for r in rows] == [["decision", "2026-02-03 08:02"], ["decision", "2026-02-03 08:01"],
                                         ["decision", "2026-02-03 08:00"]]
        assert rows[1][4:8] == ["B", "all", "2026-01-30", "A 28.6% [8.4%–54.1%] n=12 · B 14.3% [1.8%–38.1%] n=12"]
        assert rows[0][7] == "lead: 09h×3 10h×1"
        why = screen.query_one("#why")  # the cursor row's explanation, whole
        assert why.display and str(why.render()).startswith("why a1: optimal send time at 9:00 UTC")
        await pilot.press("down")
        await wait_for(pilot, lambda: "evidence restarted at the rate change detected on 2026-01-30: A 28.6% "
                                      "[8.4%–54.1%] n=12; B 14.3% [1.8%–38.1%] n=12" in str(why.render()))
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: _shown(app, "mql"))
        rows = _table_rows(screen)
        assert rows[0][:3] == ["total", "all", "4"]  # docs/reports.md: the MQLs of L1, L2, L5, L6
        assert not screen.query_one("#why").display  # a report without a why column


async def test_filters_period_and_clear(reports_ws: Workspace) -> None:
    console = Console.open(reports_ws)
    app = make_test_app(reports_ws, initial_mode="reports")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot)
        all_rows = screen.report.rows if screen.report else []
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportFilterModal))
        app.screen.query_one("#filter-since", Input).value = "2026-02-01"
        app.screen.query_one("#filter-sequence", Input).value = "nurture"
        app.screen.query_one("#filter-since", Input).focus()
        await pilot.press("enter")
        wanted = ReportFilters(since="2026-02-01", sequence="nurture")
        await wait_for(pilot, lambda: _shown(app, "emails", wanted))
        expected = console.reports.report("emails", since=date(2026, 2, 1), sequence="nurture")
        assert screen.report is not None and screen.report.rows == expected.rows != all_rows
        assert screen.report.rows[0]["sent"] == 5  # docs/reports.md: the nurture cohort m1–m5
        assert "sequence nurture" in str(screen.query_one("#filters").render())

        # an unknown segment is a toast; the report and its filters stay as they were
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportFilterModal))
        app.screen.query_one("#filter-segment", Input).value = "no such segment"
        app.screen.query_one("#filter-segment", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("no segment named" in n.message for n in app._notifications))
        assert screen.filters == wanted and screen.report.rows == expected.rows
        await pilot.press("slash")  # so is a date that is not one, worded as the CLI words it
        await wait_for(pilot, lambda: isinstance(app.screen, ReportFilterModal))
        app.screen.query_one("#filter-since", Input).value = "03/02"
        app.screen.query_one("#filter-since", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("since: '03/02' is not a date" in n.message for n in app._notifications))
        assert screen.filters == wanted

        await pilot.press("p")  # the 7 days up to today
        await wait_for(pilot, lambda: screen.filters.since == "2026-02-24")
        await wait_for(pilot, lambda: screen.report is not None
                       and screen.report.period.since.date() == date(2026, 2, 24))
        assert screen.filters.sequence == "nurture"
        await pilot.press("c")
        await wait_for(pilot, lambda: _shown(app, "emails", ReportFilters()))
        assert screen.report is not None and screen.report.rows == all_rows
        assert T0.date() == date(2026, 3, 2)


async def test_export_csv_to_a_path(reports_ws: Workspace, tmp_path: Path) -> None:
    console = Console.open(reports_ws)
    app = make_test_app(reports_ws, initial_mode="reports")
    async with app.run_test(size=(120, 36)) as pilot:
        await _open(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket",
                          "right_square_bracket", "right_square_bracket")
        await wait_for(pilot, lambda: _shown(app, "splits"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        assert app.screen.query_one(Input).value == "nurture-splits-2026-03-02.csv"
        target = tmp_path / "splits.csv"
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: target.exists())
        assert target.read_text(encoding="utf-8") == as_csv(console.reports.report("splits"))

        await pilot.press("e")  # a folder that does not exist: a one-line toast, nothing written
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        app.screen.query_one(Input).value = str(tmp_path / "missing" / "x.csv")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("cannot write" in n.message for n in app._notifications))
        assert not (tmp_path / "missing").exists()


def _snapshot(snap_compare: Any, ws: Workspace, size: tuple[int, int], name: str = "emails",
              keys: tuple[str, ...] = ()) -> bool:
    app = make_test_app(ws, initial_mode="reports")

    async def run_before(pilot: Any) -> None:
        await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…" and _shown(app, "emails"))
        if keys:
            await pilot.press(*keys)
        await wait_for(pilot, lambda: _shown(app, name))
        await pilot.pause(0.2)

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


def test_snapshot_emails_80x24(snap_compare: Any, reports_ws: Workspace) -> None:
    assert _snapshot(snap_compare, reports_ws, (80, 24))


def test_snapshot_emails_160x48(snap_compare: Any, reports_ws: Workspace) -> None:
    assert _snapshot(snap_compare, reports_ws, (160, 48))


def test_snapshot_time_to_opportunity_histogram_80x24(snap_compare: Any, reports_ws: Workspace) -> None:
    assert _snapshot(snap_compare, reports_ws, (80, 24), "time-to-opportunity", ("left_square_bracket",) * 5)


def test_snapshot_splits_bars_160x48(snap_compare: Any, reports_ws: Workspace) -> None:
    assert _snapshot(snap_compare, reports_ws, (160, 48), "splits", ("left_square_bracket",) * 3)


def test_snapshot_adaptive_decisions_80x24(snap_compare: Any, reports_ws: Workspace) -> None:
    assert _snapshot(snap_compare, reports_ws, (80, 24), "adaptive", ("left_square_bracket",))


def test_snapshot_adaptive_decisions_160x48(snap_compare: Any, reports_ws: Workspace) -> None:
    assert _snapshot(snap_compare, reports_ws, (160, 48), "adaptive", ("left_square_bracket",))
