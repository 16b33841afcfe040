"""`nurture` command line: the composition root for every command (DESIGN §10).

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
) -> None:
    st = common.state(ctx)
    st.db_url = db or st.db_url
    st.config_file = config or st.config_file
    if ctx.invoked_subcommand is None:
        from .commands.tui import open_tui

        open_tui(st)


@app.command("init")
def init_cmd(ctx: typer.Context) -> None:
    """Create or upgrade a workspace."""
    from .workspace import Workspace

    settings = common.state(ctx).settings()
    with Workspace.open(settings, check_schema=False) as ws:
        before, after = ws.migrate()
        where = ws.describe()
    if before == after:
        typer.echo(f"workspace {where} is up to date (schema {after})")
    else:
        typer.echo(f"workspace {where} ready (schema {before or 'empty'} → {after})")


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
        if arg in _GLOBAL_OPTS and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
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


def main(argv: list[str] | None = None) -> None:
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    _register()
    try:
        app(args=args, prog_name="nurture", standalone_mode=False)
    except NurtureError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(err.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except typer.Exit as ex:
        raise SystemExit(ex.exit_code) from None
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(2) from None
        raise
