"""What every screen needs from the app: the workspace, who is at the keyboard, what they may change,
and a cached score scale. Screens reach it as `self.app.ctx` (the App is the composition root)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from ..reports.console import Operator
from ..scoring.decay import ScoreScale
from ..workspace import Workspace

#: Areas a rep may change (their own MQL queue and leads); everything else is read-only for them.
REP_WRITABLE = frozenset({"mql", "leads"})


@dataclass
class AppContext:
    ws: Workspace
    operator: Operator
    read_only: bool = False
    demo: Any = None
    _scale: ScoreScale | None = field(default=None, repr=False)
    _reader: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def can_write(self, area: str) -> bool:
        """May the operator change things in `area`? (`--read-only` wins over every role.)"""
        if self.read_only:
            return False
        if self.operator.role == "rep":
            return area in REP_WRITABLE
        return True

    @property
    def owner_scope(self) -> int | None:
        """A rep's lists are limited to their own leads and queue."""
        return self.operator.user_id if self.operator.is_rep else None

    def scale(self, conn: Any) -> ScoreScale:
        """The score scale, read once (the epoch only moves on an explicit rebase)."""
        from ..leads.queries import score_scale

        with self._lock:
            if self._scale is None or self._scale.half_life_days == 0.0:
                self._scale = score_scale(conn, self.ws.settings.scoring.half_life_days)
            return self._scale

    def now(self) -> Any:
        return self.ws.clock.now()

    @property
    def reader(self) -> Engine:
        """The engine the screens read through. On SQLite it is a separate pool whose connections read
        with `pread` into a small page cache instead of the workspace's 256 MB mmap: a count over a
        million leads would otherwise map the table's pages into this process (RSS), and the scheduler
        running in-process keeps the big cache on `ws.engine` for its batch work."""
        with self._lock:
            if self._reader is None:
                database = self.ws.engine.url.database
                in_memory = database in (None, "", ":memory:")
                shared = not self.ws.is_sqlite or in_memory
                self._reader = self.ws.engine if shared else _sqlite_reader(self.ws.engine.url.render_as_string(
                    hide_password=False))
            return self._reader

    def read(self) -> Connection:
        """A read connection (use as a context manager inside a worker)."""
        return self.reader.connect()

    def close(self) -> None:
        if self._reader is not None and self._reader is not self.ws.engine:
            self._reader.dispose()


READER_PRAGMAS = ("PRAGMA mmap_size=0", "PRAGMA cache_size=-16384")


def _sqlite_reader(url: str) -> Engine:
    from sqlalchemy import event

    from ..store.engine import make_engine

    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _reader_pragmas(dbapi_conn: Any, _record: Any) -> None:  # runs after the store's own pragmas
        cur = dbapi_conn.cursor()
        for pragma in READER_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    return engine
