"""A broken reference stops one program, never the engine (issue 20 item 2).

Deleting or renaming a segment, template or rule that a published program uses is refused up front
(segments/usage.py). If a reference is broken anyway — an old database, a row deleted by hand — compiling
that program's rule fails with a `ValidationError` / `NotFoundError` (e.g. "no saved segment named 'x'")
at run time. Every place that runs the rules of many programs at once (the entry sweep, the entry re-check
after lead changes, goal and exit checks, a batch's branches) catches that error per program: the program is
paused with the error stored in `sequence.error` (shown by `nurture sequences list/show` and the console's
sequence list), an audit row and an error log line are written, and the other programs go on. Resuming the
program clears the error; if the reference is still broken, the engine pauses it again.

Compiling a rule fails before any of its SQL runs, so where the error surfaces inside a transaction the
transaction is still good: the pause is written in it. Inside a batch (`BrokenProgram`, raised by the step
executors) the batch is rolled back, the program paused in its own transaction and the batch run again
without it (engine/advance.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, update

from ..errors import NotFoundError, ValidationError
from ..store import audit
from ..store.tables import sequence

log = logging.getLogger("nurture.engine")

#: what compiling a program's rule raises when something it names is gone
BROKEN_REFERENCE = (ValidationError, NotFoundError)
ENGINE_USER = "engine"


class BrokenProgram(Exception):
    """A program's reference is broken; raised out of a batch so it can be rolled back and retried."""

    def __init__(self, sequence_id: int, name: str, error: str) -> None:
        super().__init__(f"sequence {name!r}: {error}")
        self.sequence_id = sequence_id
        self.name = name
        self.error = error


def pause_broken(conn: Connection, sequence_id: int, name: str, error: str, now: datetime) -> bool:
    """Pause a running program because of `error` (stored for everyone to see). True when it was running."""
    text = error.splitlines()[0][:500] if error else "broken reference"
    done = conn.execute(
        update(sequence).where(sequence.c.id == sequence_id, sequence.c.status == "active")
        .values(status="paused", error=text, updated_at=now)
    ).rowcount
    if done:
        audit.record(conn, at=now, user=ENGINE_USER, action="pause", entity="sequence", entity_id=sequence_id,
                     before={"status": "active"}, after={"status": "paused", "error": text})
        log.error("sequence paused: broken reference", extra={"sequence": name, "error": text})
    return bool(done)


@contextmanager
def program(sequence_id: int, name: str) -> Iterator[None]:
    """Turn a broken reference raised while running one program's rules into `BrokenProgram`."""
    try:
        yield
    except BROKEN_REFERENCE as exc:
        raise BrokenProgram(sequence_id, name, str(exc)) from exc
