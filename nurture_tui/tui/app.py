"""The Textual app: modes by number key and palette, header status, scheduler host, error routing.

Start-up budget (DESIGN §9): this module imports only what the first screen draws. Screens are imported
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
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from ..errors import NurtureError
from .context import AppContext
from .keymap import MODES, bind, load_ui_state, mode_bindings, save_ui_state, validate_keymap
from .messages import StatusLine

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..commands.common import CliState
    from ..workspace import Workspace

SCREEN_MODULES = {
    "dashboard": ("dashboard", "DashboardScreen"),
    "leads": ("leads", "LeadsScreen"),
    "segments": ("segments", "SegmentsScreen"),
    "sequences": ("sequences", "SequencesScreen"),
    "templates": ("templates", "TemplatesScreen"),
    "leaderboard": ("leaderboard", "LeaderboardScreen"),
    "mql": ("mql_queue", "MqlQueueScreen"),
    "reports": ("reports", "ReportsScreen"),
    "sync": ("sync_audit", "SyncAuditScreen"),
}


def screen_class(mode: str) -> type[Screen[Any]]:
    import importlib

    module, name = SCREEN_MODULES[mode]
    return getattr(importlib.import_module(f"nurture_tui.tui.screens.{module}"), name)


def _provider(name: str) -> Any:
    """Palette providers load on first use of the palette (start-up budget)."""

    def load() -> Any:
        from . import commands

        return getattr(commands, name)

    load.__name__ = name
    return load


def _factory(mode: str) -> Any:
    return lambda: screen_class(mode)()


class NurtureApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "nurture"
    MODES: ClassVar[dict[str, Any]] = {name: _factory(name) for name, _t, _k in MODES}
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {
        _provider("NavigationProvider"), _provider("ActionProvider"), _provider("LeadProvider")}
    BINDINGS: ClassVar[list[BindingType]] = [
        *mode_bindings(),
        bind("question_mark,f1", "help", "Help", "app.help", key_display="?"),
        bind("q", "quit", "Quit", "app.quit"),
        bind("R", "refresh", "Refresh", "app.refresh", show=False),
    ]

    def __init__(self, ctx: AppContext, *, initial_mode: str = "dashboard", background: bool = True,
                 status_interval: float = 2.0) -> None:
        super().__init__()
        self.ctx = ctx
        self.initial_mode = initial_mode
        self.background_enabled = background
        self.status_interval = status_interval
        self.status: StatusLine | None = None
        self.status_signal: Signal[StatusLine] = Signal(self, "status")
        self.scheduler_state = "stopped" if not background else "starting"
        self._runtime: Any = None  # the in-process scheduler or the demo runtime
        self._db_status: Any = None
        self._runtime_state: Any = None
        self._status_timer: Any = None
        self._exiting = False
        self._mounted_once = False
        settings = ctx.ws.settings
        saved = load_ui_state(settings.data_dir).get("theme")
        self._wanted_theme = saved or settings.tui.theme

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        keymap = dict(self.ctx.ws.settings.tui.keymap)
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
        self.ctx.ws.require_schema()

    def watch_theme(self, theme: str) -> None:
        if self._mounted_once and theme != self._wanted_theme:
            self._wanted_theme = theme
            try:
                save_ui_state(self.ctx.ws.settings.data_dir, theme=theme)
            except OSError as exc:
                self.notify(f"could not save the theme: {exc}", severity="warning")

    def on_unmount(self) -> None:
        self._exiting = True
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            with contextlib.suppress(Exception):  # stopping on the way out must not hide the real exit
                runtime.stop()
        self.ctx.close()

    # -- background: scheduler or demo -------------------------------------------------------------

    @work(thread=True, exclusive=True, group="app.background", exit_on_error=False,
          description="Starting the scheduler")
    def _start_background(self) -> None:
        demo = self.ctx.demo
        if demo is not None:
            self._runtime = demo  # before start(): stopping on quit must reach a half-started runtime
            demo.start()
            if self._exiting:  # the app quit while the demo was still preparing
                demo.stop()
            return
        try:
            from ..engine.scheduler import NurtureScheduler
        except ImportError:
            self.scheduler_state = "stopped"
            return
        sched = NurtureScheduler(self.ctx.ws)
        self._runtime = sched
        sched.start()  # leader when no daemon holds the lease, else a live viewer
        if self._exiting:
            sched.stop()

    def _scheduler_label(self) -> str:
        """From the last status poll (the runtime's state() reads the database, so never on this thread)."""
        state = self._runtime_state
        if self._runtime is None or state is None:
            return self.scheduler_state
        role = state.get("role") if isinstance(state, dict) else getattr(state, "role", None)
        return str(role or "running")

    # -- header status -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="app.status", exit_on_error=False, description="Reading status")
    def _poll_status(self) -> None:
        from ..reports.console import header_status

        with self.ctx.read() as conn:
            self._db_status = header_status(conn, self.ctx.now())
        runtime = self._runtime
        state_fn = getattr(runtime, "state", None) if runtime is not None else None
        self._runtime_state = state_fn() if state_fn is not None else None

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
        title = event.worker.description or "Background task"
        if isinstance(error, NurtureError):
            self.notify(str(error), title=title, severity="error", timeout=8)
            return
        from .screens.dialogs.error import ErrorModal

        detail = "".join(traceback.format_exception(error)) if isinstance(error, BaseException) else str(error)
        self.push_screen(ErrorModal(title, f"{type(error).__name__}: {error}", detail))

    def _publish_status(self) -> None:
        ctx = self.ctx
        db = self._db_status
        clock = None
        if ctx.demo is not None:
            clock = ctx.now()
        status = StatusLine(
            workspace=ctx.ws.settings.db_url.rsplit("/", 1)[-1] or ctx.ws.describe(),
            user=ctx.operator.username,
            role=ctx.operator.role,
            scheduler=self._scheduler_label(),
            next_due_at=db.next_due_at if db else None,
            sync=db.sync.label if db else "…",
            clock=clock,
            read_only=ctx.read_only,
        )
        if status != self.status:
            self.status = status
            self.status_signal.publish(status)

    # -- actions -----------------------------------------------------------------------------------

    def action_help(self) -> None:
        from .screens.dialogs.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_refresh(self) -> None:
        refresh = getattr(self.screen, "action_reload", None)
        if refresh is not None:
            refresh()

    def show_error(self, title: str, error: BaseException) -> None:
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

        return {b.id for _scope, b in collect_bindings() if b.id}

    def _handle_exception(self, error: Exception) -> None:
        if self._exiting:  # errors raised while shutting down are noise (harlequin's workaround)
            return
        super()._handle_exception(error)


def make_app(ws: Workspace, *, read_only: bool = False, demo: Any = None, initial_mode: str = "dashboard",
             background: bool = True, status_interval: float = 2.0) -> NurtureApp:
    """The one factory the CLI, the tests and the benchmark use."""
    from ..reports.console import current_operator

    with ws.engine.connect() as conn:
        operator = current_operator(conn, ws.settings)
    ctx = AppContext(ws=ws, operator=operator, read_only=read_only or ws.settings.tui.read_only, demo=demo)
    return NurtureApp(ctx, initial_mode=initial_mode, background=background, status_interval=status_interval)


def open_workspace(state: CliState) -> Workspace:
    """Open the workspace for the TUI with a cheap schema check (one query, no Alembic import); the full
    revision check runs in a worker after the first paint (DESIGN §9 start-up budget)."""
    from sqlalchemy import inspect, text

    ws = state.workspace(check_schema=False)
    try:
        with ws.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        revision = None
    if revision is None and "lead" not in inspect(ws.engine).get_table_names():
        ws.close()
        state.workspace()  # raises the precise "run `nurture init`" error
    return ws


def run_app(state: CliState, read_only: bool = False, demo: Any = None) -> None:
    """Open the TUI on the configured workspace (or the demo runtime's workspace)."""
    ws = getattr(demo, "ws", None) if demo is not None else None
    owned = ws is None
    if ws is None:
        ws = open_workspace(state)
    try:
        app = make_app(ws, read_only=read_only, demo=demo)
        app.run()
    finally:
        if owned:
            ws.close()
