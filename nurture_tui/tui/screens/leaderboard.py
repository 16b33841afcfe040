"""Leaderboard: the top 50 leads by live (decayed) score, refreshed each second as keyed diffs, so the
cursor stays on its lead while ranks move (htop's follow)."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Label

from ...console.leaderboard import BoardRow
from ..keymap import bind
from .base import LIST_LOAD, Column, ListScreen
from .lead_detail import LeadDetailScreen


class LeaderboardScreen(ListScreen[BoardRow]):
    CSS_PATH = "leaderboard.tcss"
    TITLE = "Leaderboard"
    AREA = "leaderboard"
    HELP = ("The 50 hottest leads by live score (decay applied), refreshed every second. The cursor follows "
            "its lead as ranks change (`f` toggles following); `p` pauses; `enter` opens the lead.")
    COLUMNS = (Column("rank", "#", 4), Column("lead", "Lead", 34), Column("company", "Company", 22),
               Column("score", "Score", 7), Column("grade", "Gr", 3), Column("stage", "Stage", 13),
               Column("owner", "Owner", 16), Column("last", "Last engagement", 16))
    TABLE_ID = "board"
    EMPTY = "No leads yet."
    POLL_GROUP = LIST_LOAD
    POLL_SECONDS = 1.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("enter", "open", "Open", "leaderboard.open"),
        bind("p", "toggle_pause", "Pause", "leaderboard.pause"),
        bind("f", "toggle_follow", "Follow", "leaderboard.follow"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.follow = True
        self.updates = 0

    def compose_body(self) -> ComposeResult:
        yield from self.compose_list()
        yield Label("", id="status")

    def fetch(self) -> list[BoardRow]:
        return self.console.leaderboard.top(50)

    def row_key(self, row: BoardRow) -> str:
        return str(row.lead_id)

    def cells(self, row: BoardRow) -> tuple[RenderableType, ...]:
        return (str(row.rank), row.name or row.email, row.company, f"{row.score:.0f}", row.grade, row.stage,
                row.owner, row.last_engagement.strftime("%m-%d %H:%M") if row.last_engagement else "")

    def search_text(self, row: BoardRow) -> tuple[object, ...]:
        return (row.name, row.email, row.company, row.stage, row.grade, row.owner)

    def refresh_rows(self) -> None:
        """Without follow, the cursor keeps its place on screen instead of chasing its lead."""
        if self.follow:
            super().refresh_rows()
        else:
            row = self.table.cursor_row
            super().refresh_rows()
            self.table.move_cursor(row=row, animate=False)
        self.updates += 1
        state = "paused" if self.paused else "live"
        self.query_one("#status", Label).update(
            f"top {len(self.rows)} by live score · {state} · follow {'on' if self.follow else 'off'}"
            + (f" · {len(self.shown)} match the filter" if self.filter_words else ""))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.current()
        if row is not None:
            self.app.push_screen(LeadDetailScreen(row.lead_id))

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("leaderboard paused" if self.paused else "leaderboard live")

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify(f"follow {'on' if self.follow else 'off'}")
