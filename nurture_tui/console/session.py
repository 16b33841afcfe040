"""Who is at the keyboard, what they may change, and how the console reads the store.

A `ConsoleSession` is built once per TUI (or test) from a `Workspace`; every console area takes it. It owns
the read engine (on SQLite a separate small-cache pool, so screen reads never grow the process through
the workspace's big mmap) and the cached score scale.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, select

from ..config import Settings
from ..errors import PermissionDenied
from ..scoring.scale import ScoreScale, read_scale
from ..store.engine import make_engine, write_tx
from ..store.tables import user
from ..workspace import Workspace

ROLES = ("admin", "operator", "rep")
#: Areas a rep may change (their own MQL queue and leads); everything else is read-only for them.
REP_WRITABLE = frozenset({"mql", "leads"})
#: The reader pool's pragmas (after the store's own): no mmap, a 16 MB page cache.
READER_PRAGMAS = ("PRAGMA mmap_size=0", "PRAGMA cache_size=-16384")


@dataclass(frozen=True)
class Operator:
    """The person at the keyboard: config/`$USER` name, role from the user table when known there."""

    username: str
    role: str
    user_id: int | None

    @property
    def is_rep(self) -> bool:
        return self.role == "rep"


def current_operator(conn: Connection, settings: Settings) -> Operator:
    name = settings.user.name
    row = conn.execute(select(user.c.id, user.c.role).where(user.c.username == name)).first()
    if row is not None and row.role in ROLES:
        return Operator(name, row.role, row.id)
    return Operator(name, settings.user.role, row.id if row else None)


@dataclass
class ConsoleSession:
    ws: Workspace
    operator: Operator
    read_only: bool = False
    _scale: ScoreScale | None = field(default=None, repr=False)
    _reader: Engine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, ws: Workspace, *, read_only: bool = False) -> ConsoleSession:
        with ws.engine.connect() as conn:
            operator = current_operator(conn, ws.settings)
        return cls(ws=ws, operator=operator, read_only=read_only or ws.settings.tui.read_only)

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    def now(self) -> datetime:
        return self.ws.clock.now()

    # -- permissions -------------------------------------------------------------------------------

    def can_write(self, area: str) -> bool:
        """May the operator change things in `area`? (`--read-only` wins over every role.)"""
        if self.read_only:
            return False
        if self.operator.role == "rep":
            return area in REP_WRITABLE
        return True

    def require_write(self, area: str) -> None:
        """Writes check here too, not only in the key bindings: a write never slips past the role."""
        if not self.can_write(area):
            why = "the console is read-only" if self.read_only else f"a {self.operator.role} cannot change {area}"
            raise PermissionDenied(f"{area}: {why}")

    @property
    def owner_scope(self) -> int | None:
        """A rep's lists are limited to their own leads and queue."""
        return self.operator.user_id if self.operator.is_rep else None

    # -- store access ------------------------------------------------------------------------------

    @property
    def reader(self) -> Engine:
        with self._lock:
            if self._reader is None:
                database = self.ws.engine.url.database
                shared = not self.ws.is_sqlite or database in (None, "", ":memory:")
                self._reader = self.ws.engine if shared else _sqlite_reader(
                    self.ws.engine.url.render_as_string(hide_password=False))
            return self._reader

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read connection (call from a worker thread, never the UI thread)."""
        with self.reader.connect() as conn:
            yield conn

    @contextmanager
    def write(self, area: str) -> Iterator[Connection]:
        """A write transaction for a service call in `area`, after the permission check."""
        self.require_write(area)
        with write_tx(self.ws.engine) as conn:
            yield conn

    def scale(self, conn: Connection) -> ScoreScale:
        """The score scale, read once (the epoch only moves on an explicit rebase)."""
        with self._lock:
            if self._scale is None or self._scale.half_life_days == 0.0:
                self._scale = read_scale(conn, self.ws.settings.scoring.half_life_days)
            return self._scale

    def close(self) -> None:
        if self._reader is not None and self._reader is not self.ws.engine:
            self._reader.dispose()


def _sqlite_reader(url: str) -> Engine:
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _reader_pragmas(dbapi_conn: Any, _record: Any) -> None:  # runs after the store's own pragmas
        cur = dbapi_conn.cursor()
        for pragma in READER_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    return engine
