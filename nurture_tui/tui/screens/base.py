"""The base of every mode screen: header, body, footer, worker-error routing, live-poll helper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from ..keymap import bind
from ..widgets.chrome.header import NurtureHeader

if TYPE_CHECKING:
    from ..app import NurtureApp
    from ..context import AppContext


class NurtureScreen(Screen[None]):
    """Subclasses set TITLE, AREA (permission area) and HELP, and implement compose_body()."""

    TITLE: ClassVar[str] = ""
    AREA: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    #: The worker group whose completion re-arms the live poll (None: no live refresh).
    POLL_GROUP: ClassVar[str | None] = None
    POLL_SECONDS: ClassVar[float] = 2.0
    #: worker group -> method called on the main thread with the worker's result when it succeeds.
    #: (Thread workers return DTOs; superseded `exclusive` workers end CANCELLED, so stale results drop.)
    RESULTS: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._poll_timer: Timer | None = None
        self.paused = False

    @property
    def nurture(self) -> NurtureApp:
        return self.app  # type: ignore[return-value]

    @property
    def ctx(self) -> AppContext:
        return self.nurture.ctx

    def compose(self) -> ComposeResult:
        yield NurtureHeader(self.TITLE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def can_write(self) -> bool:
        return self.ctx.can_write(self.AREA)

    def write_state(self) -> bool | None:
        """For check_action: None dims a write key when the operator may not write here."""
        return True if self.can_write() else None

    # -- live refresh (poll in a worker, re-arm a timer when it finishes) ---------------------------

    def start_poll(self) -> None:
        """Begin one load; subclasses implement `load()` which starts a worker in POLL_GROUP."""
        self.load()

    def load(self) -> None:
        pass

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

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        handler = self.RESULTS.get(event.worker.group or "")
        if handler and event.state == WorkerState.SUCCESS:
            getattr(self, handler)(event.worker.result)
        if self.POLL_GROUP and event.worker.group == self.POLL_GROUP and \
                event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._schedule_next()
        self.nurture.route_worker_error(event)


class NotLanded(Static):
    """Says plainly that a feature's core has not landed yet (never fake data)."""

    DEFAULT_CSS = """
    NotLanded { padding: 1 2; color: $warning; border: round $warning 50%; height: auto; margin: 1 2; }
    """

    def __init__(self, feature: str, detail: str = "") -> None:
        text = f"{feature} is not available in this build yet."
        if detail:
            text += f"\n{detail}"
        super().__init__(text, classes="not-landed")


def feature_available(module: str) -> bool:
    """True when a core module can be imported (the feature has landed)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True



class FilterableScreen(NurtureScreen):
    """A list screen with `/` filtering: the words typed must all appear in a row (case-insensitive).
    Subclasses pass each row's texts through `keep()` when they show data, and implement `refilter()`
    to show the last data again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("slash", "list_filter", "Filter", "list.filter", key_display="/"),
        bind("escape", "clear_list_filter", "Clear filter", "list.clear_filter", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_words: list[str] = []

    def compose(self) -> ComposeResult:
        yield NurtureHeader(self.TITLE)
        yield Input(placeholder="filter: words that must appear in a row", id="list-filter", classes="hidden")
        yield from self.compose_body()
        yield Footer()

    def keep(self, *texts: object) -> bool:
        if not self.filter_words:
            return True
        hay = " ".join(str(t) for t in texts if t is not None).lower()
        return all(word in hay for word in self.filter_words)

    def refilter(self) -> None:
        pass

    def _set_filter(self, text: str) -> None:
        self.filter_words = text.lower().split()
        self.sub_title = f"filter: {text}" if text else ""
        self.refilter()

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
        self._focus_list()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "list-filter":
            return
        event.stop()
        self._set_filter(event.value.strip())
        if not event.value.strip():
            event.input.add_class("hidden")
        self._focus_list()

    def _focus_list(self) -> None:
        from textual.widgets import DataTable

        tables = self.query(DataTable)
        if tables:
            tables.first().focus()

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.query_one("#list-filter", Input).has_focus:
            event.stop()
            self.action_clear_list_filter()
