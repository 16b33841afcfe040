"""`nurture tui` (and bare `nurture`): open the Textual app on the configured workspace."""

from __future__ import annotations

from typing import Any

import typer

from ..errors import NurtureError
from .common import CliState, state


def open_tui(st: CliState, read_only: bool = False, demo: Any = None) -> None:
    """Run the TUI. `demo` is a not-yet-started demo runtime (`DemoRuntime(ws, speed)`): the app starts it
    in a worker after the first paint and shows its clock in the header."""
    try:
        from ..tui.app import run_app
    except ImportError as exc:
        raise NurtureError(f"the TUI is not available in this build ({exc})") from exc
    run_app(st, read_only=read_only, demo=demo)


def tui(
    ctx: typer.Context,
    read_only: bool = typer.Option(False, "--read-only", help="Browse without changing anything."),
) -> None:
    """Open the TUI on the configured workspace."""
    open_tui(state(ctx), read_only=read_only)


COMMANDS = [("tui", tui)]
