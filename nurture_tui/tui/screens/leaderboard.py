"""Leaderboards: the top 50 leads, or (`tab`) accounts, by live (decayed) score, refreshed 1–4 times a second
as keyed diffs, so the cursor stays on its lead while ranks move. Each row shows its rank movement and score
change since the previous refresh and since the start of the day; `s` `o` `e` filter by segment, owner and
sequence; `f` follows the lead under the cursor (off: the cursor keeps its place on screen); `p` pauses."""

from __future__ import annotations

import asyncio
from typing import ClassVar, cast

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Label, Static

from ...console.leaderboard import BoardChoices, BoardFilter, BoardRow, Kind
from ..keymap import bind
from ..widgets.leaderboard.live_table import LiveTable
from .base import LIST_LOAD, Column, ListScreen
from .dialogs.prompt import ChoiceModal
from .lead_detail import LeadDetailScreen

TOP = 50
DEFER_BASELINES = 5  # leads new on the board whose day delta may wait for the next refresh
RATES_HZ = (1, 2, 3, 4)
ANY = "\x00any"  # the picker's "no filter" value


def movement(moved: int | None) -> Text:
    if moved is None:
        return Text("new", style="bold cyan")
    if moved > 0:
        return Text(f"▲{moved}", style="bold green")
    if moved < 0:
        return Text(f"▼{-moved}", style="bold red")
    return Text("·", style="dim")


def delta(value: float | None) -> Text:
    if value is None or abs(value) < 0.5:
        return Text("")
    return Text(f"{value:+.0f}", style="green" if value > 0 else "red")


class LeaderboardScreen(ListScreen[BoardRow]):
    CSS_PATH = "leaderboard.tcss"
    TITLE = "Leaderboard"
    AREA = "leaderboard"
    HELP = ("The 50 hottest leads (`tab`: accounts) by live score (decay applied), refreshed 1–4 times a second "
            "(`+` `-`). ▲▼ is the rank movement since the previous refresh; Δ the score change since then, "
            "Δ day since 00:00 UTC. `s` `o` `e` filter by segment, owner, sequence (`c` clears); `f` follows "
            "the lead under the cursor as its rank moves; `p` pauses; `enter` opens the lead (an account's "
            "hottest lead).")
    COLUMNS = (Column("rank", "#", 3), Column("move", "±", 4), Column("lead", "Lead", 24),
               Column("score", "Score", 5), Column("delta", "Δ", 4), Column("day", "Δ day", 5),
               Column("grade", "Gr", 2), Column("stage", "Stage", 13), Column("owner", "Owner", 12),
               Column("company", "Company", 24), Column("last", "Last engagement", 15))
    TABLE_ID = "board"
    EMPTY = "Nothing scored yet (with these filters)."
    POLL_GROUP = LIST_LOAD
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("enter", "open", "Open", "leaderboard.open"),
        bind("tab", "toggle_kind", "Leads/accounts", "leaderboard.kind"),
        bind("p", "toggle_pause", "Pause", "leaderboard.pause"),
        bind("f", "toggle_follow", "Follow", "leaderboard.follow"),
        bind("plus", "faster", "Faster", "leaderboard.faster", key_display="+"),
        bind("minus", "slower", "Slower", "leaderboard.slower", key_display="-"),
        bind("s", "pick_segment", "Segment", "leaderboard.segment"),
        bind("o", "pick_owner", "Owner", "leaderboard.owner"),
        bind("e", "pick_sequence", "Sequence", "leaderboard.sequence"),
        bind("c", "clear_filters", "Clear filters", "leaderboard.clear", show=False),
    ]

    def __init__(self, *, rate_hz: int = 1) -> None:
        super().__init__()
        self.follow = True
        self.followed: str | None = None  # the row key followed (kept while it is off the board)
        self._refreshing = False
        self._status_text = ""
        self._state_text: str | None = None
        self._board: tuple[object, ...] | None = None  # what the table shows: rows, filter, kind
        self.updates = 0
        self.kind: Kind = "leads"
        self.board_filter = BoardFilter()
        self.rate_hz = rate_hz

    def compose_body(self) -> ComposeResult:
        yield LiveTable(id=self.TABLE_ID, cursor_type="row", zebra_stripes=True)
        yield Static("", id="list-state", classes="list-state")
        yield Label("", id="status")

    def fetch(self) -> list[BoardRow]:
        # A new board comes with every row's day delta; a few leads new on it get their start-of-day score
        # after the refresh that shows them (fill_baselines), not in it.
        return self.console.leaderboard.top(TOP, kind=self.kind, board_filter=self.board_filter,
                                            defer_baselines=DEFER_BASELINES)

    def row_key(self, row: BoardRow) -> str:
        return str(row.key) if self.kind == "leads" else f"account-{row.key}"

    def cells(self, row: BoardRow) -> tuple[RenderableType, ...]:
        return (str(row.rank), movement(row.moved), row.name, f"{row.score:.0f}", delta(row.delta_refresh),
                delta(row.delta_day), row.grade, row.stage, row.owner, row.company,
                row.last_engagement.strftime("%m-%d %H:%M") if row.last_engagement else "")

    def search_text(self, row: BoardRow) -> tuple[object, ...]:
        return (row.name, row.company, row.stage, row.grade, row.owner)

    def refresh_rows(self) -> None:
        """With follow, the cursor stays on its lead wherever it moves (scrolled into view); without, it
        keeps its place on screen instead of chasing its lead. A load equal to the one shown (a quiet board)
        changes nothing."""
        if self.console.leaderboard.baselines_deferred(self.kind):
            # between two refreshes: not while this one is drawn (the worker's Python would share the GIL)
            self.set_timer(0.3 / self.rate_hz, self._fill_baselines)
        board = (tuple(self.rows), tuple(self.filter_words), self.kind)
        if board == self._board:
            self.updates += 1
            return
        self._board = board
        if self.follow:
            table = self.table
            self._refreshing = True
            try:
                super().refresh_rows()
            finally:
                self._refreshing = False
            if self.followed in self.shown and table.cursor_key() != self.followed:  # back on the board
                table.move_cursor(row=table.get_row_index(self.followed), animate=False)
        else:
            row = self.table.cursor_row
            super().refresh_rows()
            self.table.move_cursor(row=row, animate=False)
        self.updates += 1
        self._show_status()

    def _fill_baselines(self) -> None:
        kind = self.kind
        self.run_worker(lambda: self.console.leaderboard.fill_baselines(kind), thread=True, exclusive=True,
                        group="leaderboard.baselines", exit_on_error=False, description="leaderboard day deltas")

    def rows_shown(self) -> None:
        """The cursor moved (by a key or a refresh): it picks the lead followed, unless that lead is off the
        board for the moment (then the cursor returns to it when it is back)."""
        if self.follow and not self._refreshing and (self.followed is None or self.followed in self.shown):
            self.followed = self.table.cursor_key()
        self._show_status()

    def _schedule_next(self) -> None:
        """The live poll at the chosen rate (NurtureScreen's, with the rate per screen instead of per class)."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_timer = self.set_timer(1.0 / self.rate_hz, self._poll)

    def _show_status(self) -> None:
        state = "paused" if self.paused else f"{self.rate_hz} Hz"
        current = self.shown.get(self.followed or "") if self.follow else None
        following = (f"following {current.name}" if current else "following a lead off the board" if self.followed
                     else "") if self.follow else "follow off"
        parts = [f"top {len(self.rows)} {self.kind} by live score", state, following,
                 self.board_filter.describe(),
                 f"{len(self.shown)} match /" if self.filter_words else ""]
        text = " · ".join(p for p in parts if p)
        if text != self._status_text:  # an update re-lays out the screen: only when it says something new
            self._status_text = text
            self.query_one("#status", Label).update(text)

    def _set_state(self, text: str) -> None:
        """The empty/no-match line, only when it says something new (an update re-lays out the screen)."""
        if text != self._state_text:
            self._state_text = text
            super()._set_state(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.current()
        if row is not None and row.lead_id:
            self.app.push_screen(LeadDetailScreen(row.lead_id))

    def action_toggle_kind(self) -> None:
        self.kind = "accounts" if self.kind == "leads" else "leads"
        self.followed = None
        table = cast(LiveTable, self.table)
        table.columns[table.ordered_columns[2].key].label = Text("Lead" if self.kind == "leads" else "Account")
        table.columns[table.ordered_columns[9].key].label = Text("Company" if self.kind == "leads" else "Top lead")
        table.refresh_columns()
        self.load()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("leaderboard paused" if self.paused else "leaderboard live")
        self._show_status()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.followed = self.table.cursor_key() if self.follow else None
        self.notify(f"follow {'on' if self.follow else 'off'}")
        self._show_status()

    def _set_rate(self, hz: int) -> None:
        self.rate_hz = max(RATES_HZ[0], min(RATES_HZ[-1], hz))
        self._schedule_next()
        self._show_status()

    def action_faster(self) -> None:
        self._set_rate(self.rate_hz + 1)

    def action_slower(self) -> None:
        self._set_rate(self.rate_hz - 1)

    def action_clear_filters(self) -> None:
        self._apply_filter(BoardFilter())

    def action_pick_segment(self) -> None:
        self._pick("segment")

    def action_pick_owner(self) -> None:
        self._pick("owner")

    def action_pick_sequence(self) -> None:
        self._pick("sequence")

    @work(exclusive=True, group="leaderboard.pick", exit_on_error=False, description="leaderboard filter")
    async def _pick(self, what: str) -> None:
        choices: BoardChoices = await asyncio.to_thread(self.console.leaderboard.choices)
        names = {"segment": choices.segments, "owner": choices.owners, "sequence": choices.sequences}[what]
        picked = await self.app.push_screen_wait(ChoiceModal(
            f"Show only leads of this {what}", [(ANY, f"(any {what})"), *((n, n) for n in names)]))
        if picked is None:
            return
        value = None if picked == ANY else picked
        f = self.board_filter
        self._apply_filter(BoardFilter(segment=value if what == "segment" else f.segment,
                                       owner=value if what == "owner" else f.owner,
                                       sequence=value if what == "sequence" else f.sequence))

    def _apply_filter(self, board_filter: BoardFilter) -> None:
        self.board_filter = board_filter
        self.console.leaderboard.forget_moves(self.kind)
        self.load()
