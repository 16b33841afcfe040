"""Discovers command modules in this package, so each area adds its commands without touching cli.py.

A module registers by defining either or both of:
- `NAME = "segments"` and `app = typer.Typer(...)`: a sub-command group (`nurture segments …`);
- `COMMANDS = [("demo", demo_fn), …]`: top-level commands (`nurture demo`).
Keep module imports light (typer and stdlib only); import heavy things inside the command functions.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import typer

_SKIP = {"common", "registry"}


def _modules() -> Iterator[Any]:
    from .. import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _SKIP:
            continue
        yield importlib.import_module(f"{commands.__name__}.{info.name}")


def sub_apps() -> Iterator[tuple[str, typer.Typer]]:
    for mod in _modules():
        sub = getattr(mod, "app", None)
        if isinstance(sub, typer.Typer):
            yield getattr(mod, "NAME", mod.__name__.rsplit(".", 1)[-1]), sub


def top_level_commands() -> Iterator[tuple[str, Callable[..., Any]]]:
    for mod in _modules():
        yield from getattr(mod, "COMMANDS", [])
