"""What runs in the background of a console: the in-process scheduler, or the demo runtime (scheduler,
engagement simulator, emulated Salesforce org). The app starts it after the first paint and stops it on
quit; both report their state for the header."""

from __future__ import annotations

from typing import Any, Protocol

from .session import ConsoleSession


class Runtime(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> dict[str, Any]:
        """role (leader / viewer / worker / stopped) and figures; reads the database (call off the UI thread)."""
        ...


def in_process_scheduler(session: ConsoleSession) -> Runtime:
    """The scheduler this console hosts: the leader when no daemon holds the lease, else a live viewer."""
    from ..wiring import build_scheduler  # the engine and APScheduler load here, after the first paint

    return build_scheduler(session.ws)
