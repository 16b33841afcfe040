"""Leaderboards (issue 18 item 1): the followed lead keeps the cursor while a concurrent writer moves ranks
under it; the console's boards — accounts, filters, rank movement, deltas since the last refresh and since
the start of the day."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

from rich.text import Text
from sqlalchemy import insert, update
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from tui_support import T0, make_test_app, wait_for

from nurture_tui.console.facade import Console
from nurture_tui.console.leaderboard import BoardFilter
from nurture_tui.scoring import accounts, service
from nurture_tui.store import tables as t
from nurture_tui.store.engine import write_tx
from nurture_tui.workspace import Workspace

SIZE = (160, 48)


def _writer(ws: Workspace, followed: int, stop: threading.Event) -> None:
    """Score changes through the scoring service as the engine makes them: other leads rise past the
    followed one, which climbs and falls by turns, until stopped."""
    rnd = random.Random(3)
    step = 0
    while not stop.is_set():
        step += 1
        with write_tx(ws.engine) as conn:
            lead_id = followed if step % 3 == 0 else rnd.randrange(1, 121)
            points = (60.0 if step % 6 == 0 else -50.0) if lead_id == followed else rnd.choice((25.0, 60.0))
            service.adjust_score(conn, lead_id, points, "concurrent writer", ws.clock.now(), ws.settings)
        stop.wait(0.05)


async def test_followed_lead_keeps_the_cursor_while_ranks_change(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 50)
        await pilot.press("plus", "plus", "plus", "plus")  # 4 Hz is the most
        assert screen.rate_hz == 4
        await pilot.press(*["down"] * 30)
        followed = table.cursor_key()
        assert followed is not None and screen.follow
        clears: list[object] = []
        real_clear = table.clear
        table.clear = lambda *a, **kw: clears.append(a) or real_clear(*a, **kw)  # counts, then clears for real
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(seeded_ws, int(followed), stop))
        writer.start()
        ranks: list[str] = []
        moves: set[str] = set()
        try:
            seen = screen.updates
            while len(ranks) < 12:
                await wait_for(pilot, lambda seen=seen: screen.updates > seen)
                seen = screen.updates
                if followed not in screen.shown:
                    continue  # it fell off the top 50 for a moment
                assert table.cursor_key() == followed
                ranks.append(str(table.get_cell(followed, "rank")))
                moves |= {str(table.get_cell(k, "move"))[:1] for k in screen.shown}
        finally:
            stop.set()
            writer.join()
        assert len(set(ranks)) > 2, ranks  # it moved, and the cursor went with it
        assert {"▲", "▼"} <= moves
        assert clears == []  # keyed diffs only: the table was never cleared and refilled
        assert "following" in str(screen.query_one("#status").render())


async def test_accounts_board_filters_and_pause(seeded_ws: Workspace) -> None:
    _accounts(seeded_ws)
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        await wait_for(pilot, lambda: screen.table.row_count == 50)
        await pilot.press("tab")
        await wait_for(pilot, lambda: screen.kind == "accounts" and screen.table.row_count == 8)
        assert all(k.startswith("account-") for k in screen.shown)
        header = screen.table.render_line(0).text
        assert "Account" in header and "Top lead" in header and "Company" not in header
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LeadDetailScreen")
        await pilot.press("escape", "tab", "e")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceModal")
        await pilot.press("down", "enter")  # the one sequence: welcome
        await wait_for(pilot, lambda: screen.kind == "leads" and screen.board_filter.sequence == "welcome"
                       and screen.table.row_count == 30)
        await pilot.press("c")
        await wait_for(pilot, lambda: screen.table.row_count == 50)
        await pilot.press("p")
        frozen = screen.updates
        await pilot.pause(1.5)
        assert screen.paused and screen.updates == frozen


def _accounts(ws: Workspace) -> None:
    """One account per seeded company, its leads attached, account scores computed by scoring."""
    with write_tx(ws.engine) as conn:
        companies = sorted({"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"})
        for n, name in enumerate(companies, start=1):
            conn.execute(insert(t.account).values(id=n, name=name, owner_id=1 + n % 2, created_at=T0))
            conn.execute(update(t.lead).where(t.lead.c.company == name).values(account_id=n))
        accounts.refresh(conn, None, T0, ws.settings)


def test_console_boards_moves_deltas_and_filters(seeded_ws: Workspace) -> None:
    ws = seeded_ws
    _accounts(ws)
    console = Console.open(ws)
    board = console.leaderboard
    first = board.top(10)
    assert [r.rank for r in first] == list(range(1, 11))
    assert all(r.moved == 0 and r.delta_refresh == 0 for r in first)  # the first refresh shows no movement
    assert all(r.delta_day is not None and r.delta_day <= 0 for r in first)  # only decay since midnight
    tenth = first[-1]
    with write_tx(ws.engine) as conn:
        service.adjust_score(conn, tenth.lead_id, 500.0, "test", ws.clock.now(), ws.settings)
    second = board.top(10)
    assert second[0].lead_id == tenth.lead_id and second[0].moved == 9
    assert round(second[0].delta_refresh) == 500 and round(second[0].delta_day or 0) == round(500 + first[-1].delta_day)
    assert second[1].moved == -1
    ws.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    third = board.top(10)
    assert third[0].delta_day is not None and abs(third[0].delta_day) < 30  # a new day, a new baseline

    accts = board.top(8, kind="accounts")
    assert len(accts) == 8 and accts[0].score >= accts[-1].score and all(a.lead_id for a in accts)
    owners = {a.owner for a in board.top(8, kind="accounts", board_filter=BoardFilter(owner="rita"), track=False)}
    assert owners == {"Rita Rep"}
    by_owner = board.top(50, board_filter=BoardFilter(owner="rita"), track=False)
    assert len(by_owner) == 30 and {r.owner for r in by_owner} == {"Rita Rep"}
    with write_tx(ws.engine) as conn:
        conn.execute(insert(t.segment_member), [{"segment_id": 1, "lead_id": i} for i in (3, 5, 7)])
    in_segment = board.top(50, board_filter=BoardFilter(segment="Decision makers"), track=False)
    assert sorted(r.lead_id for r in in_segment) == [3, 5, 7]
    in_sequence = board.top(50, board_filter=BoardFilter(sequence="welcome", owner="rita"), track=False)
    assert {r.lead_id for r in in_sequence} == {i for i in range(1, 31) if i % 4 == 0}
    choices = board.choices()
    assert choices.segments == ["Decision makers"] and choices.sequences == ["welcome"] and "rita" in choices.owners


async def test_live_table_draws_what_the_data_table_draws(seeded_ws: Workspace) -> None:
    """LiveTable's Line-API strips equal DataTable's own rendering, line for line (cursor, zebra, hover,
    header, focused and not, scrolled sideways)."""
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 50 and screen.updates >= 1)
        await pilot.press("down", "down")

        def same() -> None:
            table._pseudo_class_state = table.get_pseudo_class_state()
            width = table.size.width
            for y in range(table.size.height):
                for x1, x2 in ((0, width), (3, width + 3)):
                    ours = table._render_line(y, x1, x2, table.rich_style)
                    theirs = DataTable._render_line(table, y, x1, x2, table.rich_style)
                    assert list(ours) == list(theirs), (y, x1, ours.text)

        same()
        table._show_hover_cursor = True
        table.hover_coordinate = Coordinate(5, 0)
        same()
        table.hover_coordinate = Coordinate(-1, 2)  # over the header
        same()
        table._show_hover_cursor = False
        await pilot.press("slash")  # the filter box takes the focus
        await pilot.pause()
        assert not table.has_focus
        same()
        before = table._render_line(table.header_height, 0, table.size.width, table.rich_style)
        app.theme = "textual-light"
        await pilot.pause()
        same()
        assert table._render_line(table.header_height, 0, table.size.width, table.rich_style) != before


async def test_a_refresh_redraws_only_the_rows_that_changed(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 50)
        await pilot.press("plus", "plus", "plus")
        seen = screen.updates
        await wait_for(pilot, lambda: screen.updates >= seen + 2)  # the clock is frozen: nothing moves now
        await pilot.pause()
        requested: list[int] = []
        render_line = table.render_line
        table.render_line = lambda y: requested.append(y) or render_line(y)  # lines the compositor asks for
        drawn = table.lines_rendered
        seen = screen.updates
        await wait_for(pilot, lambda: screen.updates >= seen + 2)
        await pilot.pause()
        assert table.lines_rendered == drawn and requested == []  # nothing changed: nothing drawn or repainted

        fifth = table.ordered_row_keys()[4].value
        with write_tx(seeded_ws.engine) as conn:  # one cell of one row changes; no rank moves
            conn.execute(update(t.lead).where(t.lead.c.id == int(fifth)).values(grade="Z"))
        await wait_for(pilot, lambda: table.get_cell(fifth, "grade") == "Z")
        await pilot.pause()
        header = table.header_height
        assert table.lines_rendered == drawn + 1
        assert set(requested) == {header + 4}  # only its line was repainted
        assert "Z" in table.render_line(header + 4).text.split()


async def test_live_table_reorders_by_key_and_redraws_moved_rows(seeded_ws: Workspace) -> None:
    """The keyed diff on the widget alone: rows keep their keys (and the cursor its row's key) across a
    re-order; only the lines whose row changed are drawn again."""
    from textual.app import App, ComposeResult

    from nurture_tui.tui.widgets.leaderboard.live_table import LiveTable

    class Board(App[None]):
        def compose(self) -> ComposeResult:
            yield LiveTable(id="t", cursor_type="row", zebra_stripes=True)

    app = Board()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(LiveTable)
        table.add_column("Lead", key="lead", width=10)
        table.add_column("Score", key="score", width=5)
        table.apply({k: (k, str(s)) for k, s in (("ann", 30), ("bob", 20), ("cyd", 10))})
        table.move_cursor(row=1)
        await pilot.pause()
        lines = [table.render_line(y).text for y in range(1, 4)]
        assert [line.split()[0] for line in lines] == ["ann", "bob", "cyd"]
        drawn = table.lines_rendered
        table.apply({k: (k, str(s)) for k, s in (("cyd", 40), ("ann", 30), ("bob", 20))})
        table.move_cursor(row=table.get_row_index("bob"))
        await pilot.pause()
        assert table.cursor_key() == "bob" and table.cursor_row == 2
        assert [table.render_line(y).text.split() for y in range(1, 4)] == [["cyd", "40"], ["ann", "30"],
                                                                             ["bob", "20"]]
        assert table.lines_rendered == drawn + 3  # every row moved
        drawn = table.lines_rendered
        table.apply({k: (k, str(s)) for k, s in (("cyd", 40), ("ann", 31), ("bob", 20))})
        await pilot.pause()
        assert [table.render_line(y).text.split()[1] for y in range(1, 4)] == ["40", "31", "20"]
        assert table.lines_rendered == drawn + 1  # only ann's score changed
        assert table.render_line(0).text.split() == ["Lead", "Score"]
        table.columns[table.ordered_columns[0].key].label = Text("Account")
        table.refresh_columns()  # the header changes at once, not only with the next rows
        assert table.render_line(0).text.split() == ["Account", "Score"]


def test_day_baselines_can_wait_for_after_the_refresh(seeded_ws: Workspace) -> None:
    """`top(..., defer_baselines=n)` shows a few leads new on the board without their day delta;
    `fill_baselines` computes them after, and the next refresh shows the same delta the inline path gives;
    a new board (more missing than n) comes complete."""
    ws = seeded_ws
    board = Console.open(ws).leaderboard
    first = board.top(10, defer_baselines=5)
    assert all(r.delta_day is not None for r in first) and not board.baselines_deferred("leads")
    outsider = board.top(40, track=False)[-1]
    with write_tx(ws.engine) as conn:
        service.adjust_score(conn, outsider.lead_id, 500.0, "test", ws.clock.now(), ws.settings)
    second = board.top(10, defer_baselines=5)
    assert second[0].lead_id == outsider.lead_id and second[0].moved is None and second[0].delta_day is None
    assert all(r.delta_day is not None for r in second[1:])
    assert board.baselines_deferred("leads")
    assert board.fill_baselines("leads") == 1 and not board.baselines_deferred("leads")
    third = board.top(10, defer_baselines=5)
    inline = Console.open(ws).leaderboard.top(10)
    assert third[0].delta_day is not None and round(third[0].delta_day) == round(inline[0].delta_day or 0)
    assert board.fill_baselines("leads") == 0


async def test_a_lead_new_on_the_board_gets_its_day_delta_after_it_shows(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 50 and screen.updates >= 1)
        await pilot.press("plus", "plus", "plus")
        outsider = str(screen.console.leaderboard.top(80, track=False)[-1].lead_id)
        assert outsider not in screen.shown
        with write_tx(seeded_ws.engine) as conn:
            service.adjust_score(conn, int(outsider), 500.0, "test", seeded_ws.clock.now(), seeded_ws.settings)
        await wait_for(pilot, lambda: outsider in screen.shown)
        assert str(table.get_cell(outsider, "move")) == "new"
        await wait_for(pilot, lambda: str(table.get_cell(outsider, "day")).startswith("+"))


async def test_a_click_on_a_row_moves_the_cursor_and_a_second_opens_the_lead(seeded_ws: Workspace) -> None:
    """The lines drawn through the Line API carry the row/column meta the DataTable's mouse handling reads."""
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=(80, 24)) as pilot:
        screen: Any = app.screen
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 50 and screen.updates >= 1)
        await pilot.click("#board", offset=(10, table.header_height + 4))
        await wait_for(pilot, lambda: table.cursor_row == 4)
        key = table.cursor_key()
        await pilot.click("#board", offset=(10, table.header_height + 4))
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LeadDetailScreen")
        assert str(app.screen.lead_id) == key  # type: ignore[attr-defined]


async def test_a_change_further_down_a_scrolled_board_repaints_its_line(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=(80, 24)) as pilot:
        screen: Any = app.screen
        table = screen.table
        await wait_for(pilot, lambda: table.row_count == 50)
        await pilot.press("plus", "plus", "plus", *["down"] * 40)
        await wait_for(pilot, lambda: table.cursor_row == 40 and table.scroll_offset.y > 20)
        seen = screen.updates
        await wait_for(pilot, lambda: screen.updates >= seen + 2)
        await pilot.pause()
        requested: list[int] = []
        render_line = table.render_line
        table.render_line = lambda y: requested.append(y) or render_line(y)
        key = table.ordered_row_keys()[38].value
        with write_tx(seeded_ws.engine) as conn:
            conn.execute(update(t.lead).where(t.lead.c.id == int(key)).values(grade="Z"))
        await wait_for(pilot, lambda: table.get_cell(key, "grade") == "Z")
        await pilot.pause()
        y = table.header_height + 38 - int(table.scroll_offset.y)
        assert set(requested) == {y}
        assert table.render_line(y).text.split()[0] == "39" and "Z" in table.render_line(y).text.split()
