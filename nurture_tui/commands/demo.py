"""`nurture demo [--leads N] [--seed S] [--no-tui] [--speed X]`: build (or reuse) the demo workspace and
open the TUI on it with the live demo runtime."""

from __future__ import annotations

import typer

from .common import state
from .leads import StderrProgress


def demo(
    ctx: typer.Context,
    leads: int = typer.Option(50_000, "--leads", min=1, help="How many leads the demo company has."),
    seed: int = typer.Option(42, "--seed", help="Same seed, same data."),
    activities: int | None = typer.Option(None, "--activities", min=0,
                                          help="Exact number of activity rows (default: two per lead)."),
    no_tui: bool = typer.Option(False, "--no-tui", help="Only build the demo workspace and say what it holds."),
    speed: float = typer.Option(1440.0, "--speed", min=0.0,
                                help="Virtual clock speed in the TUI (1440 = a demo day per real minute)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build afresh even if a matching demo exists."),
) -> None:
    """Build the demo workspace (default: <data dir>/demo.db) and open the TUI on it."""
    from ..demo.workspace import demo_db_url, ensure_demo
    from ..workspace import Workspace

    st = state(ctx)
    settings = st.settings()
    if st.db_url is None:
        settings.db_url = demo_db_url(settings)
    bar = StderrProgress("building the demo")
    ws = Workspace.open(settings, create=True)
    try:
        try:
            ws, summary = ensure_demo(ws, leads=leads, seed=seed, activities=activities, rebuild=rebuild,
                                      progress=lambda phase, done, total: bar.show(
                                          f"{phase} {done:,}/{total:,}" if total > 1 else phase))
        finally:
            bar.done()
        typer.echo(f"demo workspace: {ws.describe()}")
        for line in summary.lines():
            typer.echo(line)
        if no_tui:
            return
        from ..demo.live import DemoRuntime
        from .tui import open_tui

        open_tui(st, demo=DemoRuntime(ws, speed), ws=ws)
    finally:
        ws.close()


COMMANDS = [("demo", demo)]
