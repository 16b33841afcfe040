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


def open_workspace(st: CliState, user: str | None = None) -> Workspace:
    """Open the workspace for the TUI with a cheap schema check (one query, no Alembic import); the full
    revision check runs in a worker after the first paint (the start-up budget in docs/architecture.md).
    `user`: run as that nurture user (`nurture tui --user`, what `nurture serve` starts per browser)."""
    from sqlalchemy import inspect, text

    from ..workspace import Workspace

    ws = Workspace.open(st.settings(user={"name": user}) if user else st.settings(), check_schema=False)
    try:
        with ws.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        revision = None
    if revision is None and "lead" not in inspect(ws.engine).get_table_names():
        ws.close()
        st.workspace()  # raises the precise "run `nurture init`" error
    if user:
        _require_known_user(ws, user)
    return ws


def _require_known_user(ws: Workspace, name: str) -> None:
    """`--user` names someone in the user table: their role comes from there, never from a default."""
    from sqlalchemy import select

    from ..errors import NurtureError
    from ..store.tables import user

    with ws.engine.connect() as conn:
        known = conn.execute(select(user.c.id).where(user.c.username == name)).first()
    if known is None:
        ws.close()
        raise NurtureError(f"--user: no nurture user named {name!r} (users come from the Salesforce sync)")


def open_tui(st: CliState, read_only: bool = False, demo: Runtime | None = None,
             ws: Workspace | None = None, user: str | None = None) -> None:
    """Run the TUI. `demo` is a not-yet-started demo runtime (`DemoRuntime(ws, speed)`) on workspace `ws`:
    the app starts it in a worker after the first paint and shows its clock in the header."""
    from ..tui.app import make_app

    owned = ws is None
    if ws is None:
        ws = open_workspace(st, user)
    try:
        make_app(ws, read_only=read_only, demo=demo).run()
    finally:
        if owned:
            ws.close()


def tui(
    ctx: typer.Context,
    read_only: bool = typer.Option(False, "--read-only", help="Browse without changing anything."),
    user: str | None = typer.Option(None, "--user", help="Run as this nurture user (from the user table; "
                                    "a rep sees only their own queue and leads)."),
) -> None:
    """Open the TUI on the configured workspace."""
    open_tui(state(ctx), read_only=read_only, user=user)


COMMANDS = [("tui", tui)]
