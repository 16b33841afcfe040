"""`nurture` command line: the composition root for every command (docs/architecture.md, "The CLI contract").

`--db URL` and `--config FILE` are accepted anywhere on the command line: `main()` hoists them in front
of the sub-command so the root callback sees them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .commands import common
from .errors import NurtureError

app = typer.Typer(
    name="nurture",
    help="Keyboard-first lead nurturing: segments, sequences, scoring, Salesforce sync.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", help="Database URL (default: the workspace SQLite file)."),
    config: Path | None = typer.Option(None, "--config", help="Config TOML (default: $NURTURE_CONFIG or the "
                                       "platform config dir)."),
    read_only: bool = typer.Option(False, "--read-only", help="With no command: open the TUI read-only."),
) -> None:
    st = common.state(ctx)
    st.db_url = db or st.db_url
    st.config_file = config or st.config_file
    if ctx.invoked_subcommand is None:
        from .commands.tui import open_tui

        open_tui(st, read_only=read_only)


@app.command("init")
def init_cmd(ctx: typer.Context) -> None:
    """Create or upgrade a workspace; give the config file fresh mail secrets (mode 0600) if it has none."""
    from .config import resolve_config_path
    from .configfile import ensure_secrets
    from .workspace import Workspace

    settings = common.state(ctx).settings()
    with Workspace.open(settings, check_schema=False) as ws:
        before, after = ws.migrate()
        where = ws.describe()
    if before == after:
        typer.echo(f"workspace {where} is up to date (schema {after})")
    else:
        typer.echo(f"workspace {where} ready (schema {before or 'empty'} → {after})")
    res = ensure_secrets(settings.config_file or resolve_config_path())
    if res.written:
        typer.echo(f"config {res.path}: fresh {' and '.join('mail.' + k for k in res.written)} (mode 0600)")
    elif res.chmod:
        typer.echo(f"config {res.path}: mode tightened to 0600")


def _register() -> None:
    from .commands import registry

    for name, sub in registry.sub_apps():
        app.add_typer(sub, name=name)
    for name, fn in registry.top_level_commands():
        app.command(name)(fn)


_GLOBAL_OPTS = ("--db", "--config")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move `--db X` / `--config X` (and `--db=X`) from anywhere to the front."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _GLOBAL_OPTS:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise NurtureError(f"{arg} needs a value")
            front += argv[i : i + 2]
            i += 2
            continue
        if any(arg.startswith(opt + "=") for opt in _GLOBAL_OPTS):
            front.append(arg)
        elif arg == "--":
            rest += argv[i:]
            break
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _usage_error_line(exc: Exception) -> str | None:
    """One line for a command-line usage error (click's or Typer's vendored copy), else None."""
    fmt = getattr(exc, "format_message", None)
    if fmt is None or not callable(getattr(exc, "show", None)):
        return None
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"{fmt()}{where}"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Exit codes: 0 success, 2 bad input (one line on stderr, never a traceback), 130 aborted."""
    try:
        args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    except NurtureError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(err.exit_code) from None
    _register()
    try:
        rv = app(args=args, prog_name="nurture", standalone_mode=False)
    except NurtureError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(err.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except typer.Exit as ex:
        raise SystemExit(ex.exit_code) from None
    except Exception as exc:
        line = _usage_error_line(exc)
        if line is None:
            raise
        typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None
    # Without standalone mode an explicit `typer.Exit(n)` (and `--help`) comes back as the return value.
    if isinstance(rv, int) and not isinstance(rv, bool):
        raise SystemExit(rv)
