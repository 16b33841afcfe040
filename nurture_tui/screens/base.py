"""The base of every mode screen: header, body, footer, worker-error routing, live-poll helper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from ..tui.widgets.header import NurtureHeader

if TYPE_CHECKING:
    from ..tui.app import NurtureApp
    from ..tui.context import AppContext


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


BACK = Binding("escape", "app.pop_screen", "Back", id="screen.back")
