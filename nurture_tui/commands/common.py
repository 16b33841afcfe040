"""Shared CLI plumbing: the global options and how a command opens the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ..config import Settings
    from ..workspace import Workspace


@dataclass
class CliState:
    db_url: str | None = None
    config_file: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        from ..config import load_settings

        return load_settings(self.config_file, self.db_url, **overrides)

    def workspace(self, *, create: bool = False, **kwargs: Any) -> Workspace:
        from ..workspace import Workspace

        return Workspace.open(self.settings(), create=create, **kwargs)


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def echo_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, default=str, ensure_ascii=False))
