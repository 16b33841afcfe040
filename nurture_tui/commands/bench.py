"""`nurture bench <scenario>`: every module in `nurture_tui.bench` that defines `NAME` and a Typer
command function `command` becomes a scenario."""

from __future__ import annotations

import importlib
import pkgutil

import typer

NAME = "bench"
app = typer.Typer(help="Benchmarks: each prints figures and a ratio against a reference timed in the same run.",
                  no_args_is_help=True)


def _discover() -> None:
    from .. import bench

    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "common":
            continue
        mod = importlib.import_module(f"{bench.__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "command"):
            app.command(mod.NAME)(mod.command)


_discover()
