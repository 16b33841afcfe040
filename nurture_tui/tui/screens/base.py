"""The one screen pattern.

`NurtureScreen` is the base of every mode screen: header, body, footer, the typed way to reach the
console, the live-poll loop and error routing. `ListScreen[Row]` adds what every list screen needs: the
columns, a load in a worker, keyed refresh (rows added, updated, removed and re-ordered in place, so the
cursor stays on its row), the `/` filter, and empty and error states.

Worker results follow one convention: a thread worker calls the console, then `post_result(Message)`
with a typed message (dropped if the worker was superseded); an `@on(Message)` handler applies it on the
UI thread. Failures reach the app's router (a toast for user errors, the error modal for bugs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from rich.console import RenderableType
from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..keymap import bind
from ..messages import WorkerFailed
from ..widgets.common.header import NurtureHeader
from ..widgets.common.keyed_table import KeyedTable

if TYPE_CHECKING:
    from ...console.facade import Console
    from ...console.session import ConsoleSession
    from ..app import NurtureApp

Row = TypeVar("Row")
#: The worker group of every list screen's load (a live list sets POLL_GROUP = LIST_LOAD).
LIST_LOAD = "list.load"


class NurtureScreen(Screen[None]):
    """Subclasses set TITLE, AREA (permission area) and HELP, and implement compose_body()."""

    TITLE: ClassVar[str] = ""
    AREA: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    #: The worker group whose completion re-arms the live poll (None: no live refresh).
    POLL_GROUP: ClassVar[str | None] = None
    POLL_SECONDS: ClassVar[float] = 2.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._poll_timer: Timer | None = None
        self.paused = False

    @property
    def nurture(self) -> NurtureApp:
        return cast("NurtureApp", self.app)

    @property
    def console(self) -> Console:
        return self.nurture.backend

    @property
    def session(self) -> ConsoleSession:
        return self.nurture.backend.session

    def compose(self) -> ComposeResult:
        yield NurtureHeader(self.TITLE, self.nurture.status_signal, self.nurture.status)
        yield from self.compose_body()
        yield Footer()

    @on(events.Mount)
    def _subscribe_to_changes(self) -> None:
        self.nurture.data_signal.subscribe(self, self.data_changed)

    def data_changed(self, what: str) -> None:
        """Something in area `what` was written from another screen; screens showing it reload."""

    def unsaved_changes(self) -> str:
        """Editors: what is unsaved ("segment Hot leads"), or "" (the app asks before quitting)."""
        return ""

    async def may_leave(self, save: Callable[[], Awaitable[bool]]) -> bool:
        """Editors, on `esc`: with unsaved changes, ask to save (then `save()` must succeed), discard, or
        keep editing. True when the screen may close. Call from an async worker (it waits on a modal)."""
        what = self.unsaved_changes()
        if not what:
            return True
        from .dialogs.prompt import ChoiceModal

        choice = await self.app.push_screen_wait(ChoiceModal(
            f"Unsaved changes to {what}", [("save", "Save, then leave"), ("discard", "Discard the changes"),
                                           ("stay", "Keep editing")]))
        if choice == "save":
            return await save()
        return choice == "discard"

    def compose_body(self) -> ComposeResult:
        yield from ()

    def can_write(self) -> bool:
        return self.session.can_write(self.AREA)

    def write_state(self) -> bool | None:
        """For check_action: None dims a write key when the operator may not write here."""
        return True if self.can_write() else None

    # -- worker results -----------------------------------------------------------------------------

    def post_result(self, message: Message) -> None:
        """From a thread worker: hand a typed result to the UI thread, unless the worker was superseded."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    # -- live refresh (poll in a worker, re-arm a timer when it finishes) ---------------------------

    def load(self) -> None:
        """Start the screen's load worker (in POLL_GROUP for live screens)."""

    def _schedule_next(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_timer = self.set_timer(self.POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        if self.paused or not self.is_current:
            self._schedule_next()
            return
        self.load()

    def action_reload(self) -> None:
        self.load()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("refresh paused" if self.paused else "refresh resumed")

    @on(WorkerFailed)
    def _widget_failed(self, event: WorkerFailed) -> None:
        event.stop()
        self.nurture.show_error(event.description, event.error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if self.POLL_GROUP and event.worker.group == self.POLL_GROUP and \
                event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._schedule_next()
        self.nurture.route_worker_error(event)


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int


class ListScreen(NurtureScreen, Generic[Row]):
    """A list of rows from the console with `/` filtering: the words typed must all appear in a row.

    Subclasses set COLUMNS (and TABLE_ID, EMPTY) and implement `fetch` (runs in a worker thread: a console
    call), `row_key`, `cells` and `search_text`; `rows_shown` is the hook for side panels."""

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    TABLE_ID: ClassVar[str] = "list"
    EMPTY: ClassVar[str] = "Nothing here yet."
    #: Keep the table in the order `fetch` returns (False: rows stay where they were first added).
    ORDERED: ClassVar[bool] = True
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("slash", "list_filter", "Filter", "list.filter", key_display="/"),
        bind("escape", "clear_list_filter", "Clear filter", "list.clear_filter", show=False),
    ]

    @dataclass
    class RowsLoaded(Message, bubble=False):
        rows: list[Any]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_words: list[str] = []
        self.rows: list[Row] = []  # the last load, unfiltered
        self.shown: dict[str, Row] = {}  # key -> row, in table order, after the filter

    # -- what subclasses provide --------------------------------------------------------------------

    def fetch(self) -> list[Row]:
        raise NotImplementedError

    def row_key(self, row: Row) -> str:
        raise NotImplementedError

    def cells(self, row: Row) -> tuple[RenderableType, ...]:
        raise NotImplementedError

    def search_text(self, row: Row) -> Iterable[object]:
        return (str(c) for c in self.cells(row))

    def rows_shown(self) -> None:
        """Called after every refresh of the table (side panels, status lines)."""

    # -- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NurtureHeader(self.TITLE, self.nurture.status_signal, self.nurture.status)
        yield Input(placeholder="filter: words that must appear in a row", id="list-filter", classes="hidden")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from self.compose_list()

    def compose_list(self) -> ComposeResult:
        """The table and its state line; screens with side panels place these inside their layout."""
        yield KeyedTable(id=self.TABLE_ID, cursor_type="row", zebra_stripes=True)
        yield Static("", id="list-state", classes="list-state")

    @property
    def table(self) -> KeyedTable:
        return self.query_one(f"#{self.TABLE_ID}", KeyedTable)

    def on_mount(self) -> None:
        table = self.table
        for col in self.COLUMNS:
            table.add_column(col.title, key=col.key, width=col.width)
        table.focus()
        self.load()

    # -- loading ------------------------------------------------------------------------------------

    def load(self) -> None:
        self.run_worker(self._load_rows, thread=True, exclusive=True, group=LIST_LOAD, exit_on_error=False,
                        description=self.TITLE)

    def _load_rows(self) -> None:
        self.post_result(self.RowsLoaded(self.fetch()))

    @on(RowsLoaded)
    def _rows_loaded(self, message: RowsLoaded) -> None:
        self.rows = message.rows
        self.refresh_rows()

    @on(Worker.StateChanged)
    def _load_failed(self, event: Worker.StateChanged) -> None:
        # Textual also runs NurtureScreen's handler (it dispatches to every class in the MRO): no super().
        if event.worker.group == LIST_LOAD and event.state == WorkerState.ERROR and not self.rows:
            self._set_state(f"Could not load: {event.worker.error}")

    # -- keyed refresh ------------------------------------------------------------------------------

    def keep(self, row: Row) -> bool:
        if not self.filter_words:
            return True
        hay = " ".join(str(t) for t in self.search_text(row) if t is not None).lower()
        return all(word in hay for word in self.filter_words)

    def refresh_rows(self) -> None:
        """Apply the last load through the filter as a keyed diff; the cursor stays on its row."""
        wanted = {self.row_key(r): r for r in self.rows if self.keep(r)}
        self.shown = wanted
        table = self.table
        cursor_key = table.cursor_key()
        with self.app.batch_update():
            table.apply({key: self.cells(row) for key, row in wanted.items()}, ordered=self.ORDERED)
            if cursor_key is not None and cursor_key in wanted:
                table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        if not self.rows:
            self._set_state(self.EMPTY)
        elif not wanted:
            self._set_state("No row matches the filter (esc clears it).")
        else:
            self._set_state("")
        self.rows_shown()

    def _set_state(self, text: str) -> None:
        state = self.query_one("#list-state", Static)
        state.update(text)
        state.display = bool(text)

    def current(self) -> Row | None:
        """The row under the cursor."""
        key = self.table.cursor_key()
        return self.shown.get(key) if key is not None else None

    # -- `/` filter ---------------------------------------------------------------------------------

    def _set_filter(self, text: str) -> None:
        self.filter_words = text.lower().split()
        self.sub_title = f"filter: {text}" if text else ""
        self.refresh_rows()

    def action_list_filter(self) -> None:
        box = self.query_one("#list-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_clear_list_filter(self) -> None:
        box = self.query_one("#list-filter", Input)
        box.value = ""
        box.add_class("hidden")
        if self.filter_words:
            self._set_filter("")
        self.table.focus()

    @on(Input.Submitted, "#list-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._set_filter(event.value.strip())
        if not event.value.strip():
            event.input.add_class("hidden")
        self.table.focus()

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.query_one("#list-filter", Input).has_focus:
            event.stop()
            self.action_clear_list_filter()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == self.TABLE_ID:
            self.rows_shown()
