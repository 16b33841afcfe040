"""`nurture tui` (and bare `nurture`): open the Textual app on the configured workspace.

The composition root of the console: opens the workspace (cheaply: the full schema check runs after the
first paint), builds the app through `tui.app.make_app`, runs it, closes what it opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from .common import CliState, state

if TYPE_CHECKING:
    from ..console.runtime import Runtime
    from ..workspace import Workspace


def open_workspace(st: CliState) -> Workspace:
    """Open the workspace for the TUI with a cheap schema check (one query, no Alembic import); the full
    revision check runs in a worker after the first paint (the start-up budget in docs/architecture.md)."""
    from sqlalchemy import inspect, text

    ws = st.workspace(check_schema=False)
    try:
        with ws.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        revision = None
    if revision is None and "lead" not in inspect(ws.engine).get_table_names():
        ws.close()
        st.workspace()  # raises the precise "run `nurture init`" error
    return ws


def open_tui(st: CliState, read_only: bool = False, demo: Runtime | None = None,
             ws: Workspace | None = None) -> None:
    """Run the TUI. `demo` is a not-yet-started demo runtime (`DemoRuntime(ws, speed)`) on workspace `ws`:
    the app starts it in a worker after the first paint and shows its clock in the header."""
    from ..tui.app import make_app

    owned = ws is None
    if ws is None:
        ws = open_workspace(st)
    try:
        make_app(ws, read_only=read_only, demo=demo).run()
    finally:
        if owned:
            ws.close()


def tui(
    ctx: typer.Context,
    read_only: bool = typer.Option(False, "--read-only", help="Browse without changing anything."),
) -> None:
    """Open the TUI on the configured workspace."""
    open_tui(state(ctx), read_only=read_only)


COMMANDS = [("tui", tui)]
