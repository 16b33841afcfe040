"""The Textual app: modes by number key and palette, header status, scheduler host, error routing.

Start-up budget (docs/architecture.md): this module imports only what the first screen draws. Screens are imported
when their mode is first entered; the scheduler, the demo runtime, plotext and Jinja load in workers
after the first paint.
"""

from __future__ import annotations

import contextlib
import traceback
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.command import Provider
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from ..console.facade import Console
from ..console.runtime import Runtime, in_process_scheduler
from ..console.status import HeaderStatus
from ..errors import NurtureError
from .keymap import bind, load_ui_state, save_ui_state, validate_keymap
from .messages import StatusLine
from .modes import MODES, mode_bindings
from .screens.base import NurtureScreen

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..workspace import Workspace

# Palette providers load on first use of the palette (start-up budget).
def _navigation() -> type[Provider]:
    from .commands import NavigationProvider

    return NavigationProvider


def _actions() -> type[Provider]:
    from .commands import ActionProvider

    return ActionProvider


def _leads() -> type[Provider]:
    from .commands import LeadProvider

    return LeadProvider


def _factory(load: Any) -> Any:
    return lambda: load()()


class NurtureApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "nurture"
    MODES: ClassVar[dict[str, Any]] = {m.name: _factory(m.load) for m in MODES}
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {_navigation, _actions, _leads}
    BINDINGS: ClassVar[list[BindingType]] = [
        *mode_bindings(),
        bind("question_mark,f1", "help", "Help", "app.help", key_display="?"),
        bind("q", "quit", "Quit", "app.quit"),
        bind("R", "refresh", "Refresh", "app.refresh", show=False),
    ]

    def __init__(self, console: Console, *, demo: Runtime | None = None, initial_mode: str = "dashboard",
                 background: bool = True, status_interval: float = 2.0) -> None:
        super().__init__()
        self.backend = console  # the headless console (App.console is Rich's)
        self.demo = demo  # the demo runtime (scheduler, simulator, emulated org), or None
        self.initial_mode = initial_mode
        self.background_enabled = background
        self.status_interval = status_interval
        self.status: StatusLine | None = None
        self.status_signal: Signal[StatusLine] = Signal(self, "status")
        self.data_signal: Signal[str] = Signal(self, "data")
        #: Editor screens open in any mode (they add and remove themselves), for the quit guard.
        self.open_editors: set[NurtureScreen] = set()
        self.scheduler_state = "stopped" if not background else "starting"
        self._runtime: Runtime | None = None  # the in-process scheduler or the demo runtime
        self._db_status: HeaderStatus | None = None
        self._runtime_state: dict[str, Any] | None = None
        self._status_timer: Any = None
        self._exiting = False
        self._mounted_once = False
        settings = console.session.settings
        saved = load_ui_state(settings.data_dir).get("theme")
        self._wanted_theme = saved or settings.tui.theme

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        keymap = dict(self.backend.session.settings.tui.keymap)
        if keymap:
            problems = validate_keymap(keymap, self.binding_ids())
            for problem in problems:
                self.notify(problem, severity="warning", timeout=8)
            self.set_keymap(keymap)
        try:
            self.theme = self._wanted_theme
        except Exception:  # InvalidThemeError: a theme from an older config
            self.notify(f"unknown theme {self._wanted_theme!r}; using textual-dark", severity="warning")
            self.theme = "textual-dark"
        self._mounted_once = True
        self._publish_status()
        self.switch_mode(self.initial_mode)
        self.set_interval(1.0, self._publish_status)

    def on_ready(self) -> None:
        if self.background_enabled:
            self._start_background()
            self._check_schema()
        self._poll_status()

    @work(thread=True, exclusive=True, group="app.schema", exit_on_error=False, description="Workspace schema")
    def _check_schema(self) -> None:
        """The full revision check (imports Alembic), after the first paint; a mismatch is a toast."""
        self.backend.session.ws.require_schema()

    def watch_theme(self, theme: str) -> None:
        if self._mounted_once and theme != self._wanted_theme:
            self._wanted_theme = theme
            try:
                save_ui_state(self.backend.session.settings.data_dir, theme=theme)
            except OSError as exc:
                self.notify(f"could not save the theme: {exc}", severity="warning")

    def on_unmount(self) -> None:
        self._exiting = True
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            with contextlib.suppress(Exception):  # stopping on the way out must not hide the real exit
                runtime.stop()
        self.backend.close()

    # -- background: scheduler or demo -------------------------------------------------------------

    @work(thread=True, exclusive=True, group="app.background", exit_on_error=False,
          description="Starting the scheduler")
    def _start_background(self) -> None:
        runtime = self.demo or in_process_scheduler(self.backend.session)
        self._runtime = runtime  # before start(): stopping on quit must reach a half-started runtime
        runtime.start()
        if self._exiting:  # the app quit while the runtime was still starting
            runtime.stop()

    def _scheduler_label(self) -> str:
        """From the last status poll (the runtime's state() reads the database, so never on this thread)."""
        state = self._runtime_state
        if self._runtime is None or state is None:
            return self.scheduler_state
        return str(state.get("role") or "running")

    # -- header status -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="app.status", exit_on_error=False, description="Reading status")
    def _poll_status(self) -> None:
        self._db_status = self.backend.status()
        runtime = self._runtime
        self._runtime_state = runtime.state() if runtime is not None else None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "app.status" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self._publish_status()
            if not self._exiting:
                self._status_timer = self.set_timer(self.status_interval, self._poll_status)
            return
        self.route_worker_error(event)

    def route_worker_error(self, event: Worker.StateChanged) -> None:
        """Worker failures become a toast (user/environment errors) or the error modal (bugs)."""
        if event.state != WorkerState.ERROR or self._exiting:
            return
        error = event.worker.error
        if isinstance(error, BaseException):
            self.show_error(event.worker.description or "Background task", error)

    def _publish_status(self) -> None:
        session = self.backend.session
        db = self._db_status
        status = StatusLine(
            workspace=session.settings.db_url.rsplit("/", 1)[-1] or session.ws.describe(),
            user=session.operator.username,
            role=session.operator.role,
            scheduler=self._scheduler_label(),
            next_due_at=db.next_due_at if db else None,
            sync=db.sync.label if db else "…",
            clock=session.now() if self.demo is not None else None,
            read_only=session.read_only,
        )
        if status != self.status:
            self.status = status
            self.status_signal.publish(status)

    def data_changed(self, what: str) -> None:
        """A screen wrote to area `what`: every screen that shows that data reloads (on the UI thread)."""
        self.data_signal.publish(what)

    # -- actions -----------------------------------------------------------------------------------

    def unsaved_editors(self) -> list[str]:
        """What open editors (in any mode) have not saved yet, by what they edit."""
        return [screen.unsaved_changes() for screen in self.open_editors if screen.unsaved_changes()]

    async def action_quit(self) -> None:
        """`q` and `ctrl+q`: quit, after asking when an editor holds unsaved changes."""
        self._quit_guarded()

    @work(exclusive=True, group="app.quit", exit_on_error=False, description="Quit")
    async def _quit_guarded(self) -> None:
        unsaved = self.unsaved_editors()
        if unsaved:
            from .screens.dialogs.confirm import ConfirmModal

            ok = await self.push_screen_wait(ConfirmModal(
                "Quit without saving?", "Unsaved changes in: " + "; ".join(unsaved), confirm_label="Quit",
                destructive=True))
            if not ok:
                return
        self.exit()

    def action_help(self) -> None:
        from .screens.dialogs.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_refresh(self) -> None:
        if isinstance(self.screen, NurtureScreen):
            self.screen.action_reload()

    def show_error(self, title: str, error: BaseException) -> None:
        """A user or environment error is a toast; anything else is a bug, shown with its traceback."""
        if isinstance(error, NurtureError):
            self.notify(str(error), title=title, severity="error", timeout=8)
        else:
            from .screens.dialogs.error import ErrorModal

            self.push_screen(ErrorModal(title, f"{type(error).__name__}: {error}",
                                        "".join(traceback.format_exception(error))))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)  # theme, keys, screenshot, quit

    def binding_ids(self) -> set[str]:
        """Every binding id the app and its screens declare (for validating a user keymap)."""
        from .keymap_doc import collect_bindings

        return {b.id for _scope, b in collect_bindings(type(self)) if b.id}

    def _handle_exception(self, error: Exception) -> None:
        if self._exiting:  # errors raised while shutting down are noise (harlequin's workaround)
            return
        super()._handle_exception(error)


def make_app(ws: Workspace, *, read_only: bool = False, demo: Runtime | None = None, initial_mode: str = "dashboard",
             background: bool = True, status_interval: float = 2.0) -> NurtureApp:
    """The one factory the CLI, the tests and the benchmark use."""
    return NurtureApp(Console.open(ws, read_only=read_only), demo=demo, initial_mode=initial_mode,
                      background=background, status_interval=status_interval)
