"""`nurture serve`: the console in a browser (textual-serve), for reps who do not use SSH.

Each browser tab gets its own `nurture tui --user NAME` process, speaking to the page over a websocket.
Who NAME is comes either from `--user` (one person per server) or, behind a reverse proxy that logs people
in, from a request header the proxy sets (`--user-header X-Forwarded-User`); a connection without it is
refused. The name must be a nurture user (the user table): a rep sees only their own queue and leads.
The server listens on loopback by default — put a TLS-terminating proxy in front (docs/tui.md, "In a
browser"); it has no login of its own.

The name `serve` is free: the tracking web app is `nurture daemon --http`, the Salesforce emulator
`nurture salesforce emulator`.
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import TYPE_CHECKING, Any

import typer

from .common import CliState, state

if TYPE_CHECKING:
    from textual_serve.server import Server

#: What a user name from a header may look like (it ends up on a command line, quoted, all the same).
USER_NAME = re.compile(r"^[\w.@+-]{1,120}$")


def session_command(st: CliState, user: str, *, read_only: bool = False) -> str:
    """The shell command one browser session runs: this Python, this workspace, `tui --user NAME`."""
    argv = [sys.executable, "-m", "nurture_tui"]
    if st.db_url:
        argv += ["--db", st.db_url]
    if st.config_file:
        argv += ["--config", str(st.config_file)]
    argv += ["tui", "--user", user]
    if read_only:
        argv.append("--read-only")
    return shlex.join(argv)


def user_from_header(headers: Any, header: str) -> str | None:
    """The user a proxy vouches for in `header`, or None when it is missing or not a plausible name."""
    name = (headers.get(header) or "").strip()
    return name if USER_NAME.match(name) else None


def make_server(st: CliState, *, host: str, port: int, user: str | None, user_header: str | None,
                public_url: str | None, read_only: bool) -> Server:
    """A textual-serve `Server` whose command is chosen per websocket (per browser session)."""
    from contextvars import ContextVar

    from aiohttp import web
    from textual_serve.server import Server

    session_user: ContextVar[str] = ContextVar("session_user")

    class ConsoleServer(Server):
        # textual-serve reads `self.command` when a websocket starts its app; each request is handled in
        # a task of its own, so a context variable set there names that session's user.
        @property
        def command(self) -> str:
            return session_command(st, session_user.get(user or ""), read_only=read_only)

        @command.setter
        def command(self, _value: str) -> None:
            pass  # Server.__init__ assigns it; the property answers per session

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            name = user_from_header(request.headers, user_header) if user_header else user
            if not name:
                raise web.HTTPForbidden(text=f"{user_header}: no user given by the proxy")
            session_user.set(name)
            return await super().handle_websocket(request)

    return ConsoleServer("nurture tui", host=host, port=port, title="nurture", public_url=public_url)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep loopback behind a proxy)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    user: str | None = typer.Option(None, "--user", help="Every browser session runs as this nurture user."),
    user_header: str | None = typer.Option(None, "--user-header", help="Take each session's user from this "
                                           "request header, set by the reverse proxy that logs people in."),
    public_url: str | None = typer.Option(None, "--public-url", help="The URL browsers use (https://… behind "
                                          "a TLS proxy); default http://HOST:PORT."),
    read_only: bool = typer.Option(False, "--read-only", help="Sessions browse without changing anything."),
) -> None:
    """Serve the console to browsers (textual-serve): one `nurture tui --user NAME` per browser session."""
    from ..errors import ValidationError

    if bool(user) == bool(user_header):
        raise ValidationError("serve", "give exactly one of --user NAME or --user-header HEADER")
    if user and not USER_NAME.match(user):
        raise ValidationError("--user", f"{user!r} is not a user name")
    st = state(ctx)
    st.workspace().close()  # a missing or uninitialised workspace fails here, not in every browser tab
    make_server(st, host=host, port=port, user=user, user_header=user_header, public_url=public_url,
                read_only=read_only).serve()


COMMANDS = [("serve", serve)]
