"""Leaderboard: the top 50 leads by live (decayed) score, refreshed each second as keyed diffs, so the
cursor stays on its lead while ranks move (htop's follow)."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Label

from ...reports.console import BoardRow, leaderboard
from ..keymap import bind
from .base import FilterableScreen

COLUMNS = (("rank", "#", 4), ("lead", "Lead", 34), ("company", "Company", 22), ("score", "Score", 7),
           ("grade", "Gr", 3), ("stage", "Stage", 13), ("owner", "Owner", 16), ("last", "Last engagement", 16))


def cells(r: BoardRow) -> tuple[str, ...]:
    return (str(r.rank), r.name or r.email, r.company, f"{r.score:.0f}", r.grade, r.stage, r.owner,
            r.last_engagement.strftime("%m-%d %H:%M") if r.last_engagement else "")


class LeaderboardScreen(FilterableScreen):
    CSS_PATH = "leaderboard.tcss"
    TITLE = "Leaderboard"
    AREA = "leaderboard"
    HELP = ("The 50 hottest leads by live score (decay applied), refreshed every second. The cursor follows "
            "its lead as ranks change (`f` toggles following); `p` pauses; `enter` opens the lead.")
    POLL_GROUP = "leaderboard.load"
    POLL_SECONDS = 1.0
    RESULTS: ClassVar[dict[str, str]] = {"leaderboard.load": "apply_rows"}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("enter", "open", "Open", "leaderboard.open"),
        bind("p", "toggle_pause", "Pause", "leaderboard.pause"),
        bind("f", "toggle_follow", "Follow", "leaderboard.follow"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.follow = True
        self.updates = 0
        self.last_rows: list[BoardRow] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="board", cursor_type="row", zebra_stripes=True)
        yield Label("", id="status")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#board", DataTable)

    def on_mount(self) -> None:
        for key, title, width in COLUMNS:
            self.table.add_column(title, key=key, width=width)
        self.table.focus()
        self.load()

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="leaderboard.load", exit_on_error=False, description="Leaderboard")
    def _load(self) -> list[BoardRow]:
        ctx = self.ctx
        with ctx.read() as conn:
            factor = ctx.scale(conn).factor(ctx.now())
            return leaderboard(conn, factor=factor, limit=50, owner_id=ctx.owner_scope)

    def apply_rows(self, rows: list[BoardRow]) -> None:
        """Keyed diff: remove leads that left, update changed cells, add newcomers, re-order by rank."""
        self.last_rows = rows
        table = self.table
        wanted = {str(r.lead_id): r for r in rows
                  if self.keep(r.name, r.email, r.company, r.stage, r.grade, r.owner)}
        cursor_key = None
        if table.row_count:
            cursor_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        keys = [c[0] for c in COLUMNS]
        with self.app.batch_update():
            for gone in [k for k in table.rows if k.value not in wanted]:
                table.remove_row(gone)
            for key, r in wanted.items():
                values = cells(r)
                if key in table.rows:
                    for col, value in zip(keys, values, strict=True):
                        if table.get_cell(key, col) != value:
                            table.update_cell(key, col, value)
                else:
                    table.add_row(*values, key=key)
            table.sort("rank", key=int)
            if self.follow and cursor_key in wanted:
                table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        self.updates += 1
        state = "paused" if self.paused else "live"
        self.query_one("#status", Label).update(
            f"top {len(rows)} by live score · {state} · follow {'on' if self.follow else 'off'}"
            + (f" · {len(wanted)} match the filter" if self.filter_words else ""))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def refilter(self) -> None:
        self.apply_rows(self.last_rows)

    def action_open(self) -> None:
        table = self.table
        if not table.row_count:
            return
        from .lead_detail import LeadDetailScreen

        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.app.push_screen(LeadDetailScreen(int(key or 0)))

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("leaderboard paused" if self.paused else "leaderboard live")

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify(f"follow {'on' if self.follow else 'off'}")
