"""Process settings that keep the batch hot path fast and its latency tail short (see `nurture bench engine`).

WAL auto-checkpoints and cyclic GC passes made the slowest 1 % of claim → execute → advance batches 2–3×
slower than the median; stale planner statistics made PostgreSQL servers without autovacuum several times
slower overall:

- **WAL auto-checkpoints.** SQLite copies the WAL back into the database inside whichever commit crosses
  `wal_autocheckpoint` pages (4 MB); with ~1 MB written per batch that is every few batches, on the
  engine's own thread. While the engine runs we switch auto-checkpointing off for this process's
  connections and a background thread runs PASSIVE checkpoints on its own connection instead (PASSIVE
  never blocks readers or the writer; sqlite3 releases the GIL, so it runs on the other core).
- **Stale planner statistics (PostgreSQL).** Where the server's autovacuum is off, a background thread
  analyses the tables that changed, as autovacuum would (`store.planner_stats`): without it the rollup
  triggers' cached plans degrade as `activity` grows.
- **Cyclic GC passes.** A batch allocates tens of thousands of short-lived dicts, which triggers full
  collections over every long-lived object (templates, SQLAlchemy metadata, compiled plans). We move
  what exists after start-up into the permanent generation (`gc.freeze()`) and collect gen 0 less often.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Engine

from .. import heap
from ..periodic import Periodic
from ..store.engine import set_autocheckpoint
from ..store.planner_stats import StatisticsKeeper

log = logging.getLogger("nurture.engine")

CHECKPOINT_EVERY_S = 0.25
CHECKPOINT_ABOVE_BYTES = 4 * 1024 * 1024
GC_THRESHOLDS = (50_000, 50, 100)


_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


def tune_gc() -> None:
    """Freeze start-up objects out of the cyclic GC and raise the gen-0 threshold (nestable)."""
    global _gc_users, _gc_saved
    with _gc_lock:
        _gc_users += 1
        if _gc_users == 1:
            _gc_saved = gc.get_threshold()
            gc.collect()
            heap.hold()
            gc.set_threshold(*GC_THRESHOLDS)


def restore_gc() -> None:
    """Undo `tune_gc` when its last user is done."""
    global _gc_users, _gc_saved
    with _gc_lock:
        _gc_users = max(0, _gc_users - 1)
        if _gc_users == 0 and _gc_saved is not None:
            gc.set_threshold(*_gc_saved)
            heap.release()
            _gc_saved = None


class BackgroundCheckpointer:
    """Runs PASSIVE WAL checkpoints off the engine thread while auto-checkpointing is off (SQLite only).

    Several may run on one engine (a leader and a viewer scheduler in one process): auto-checkpointing
    stays off until the last of them stops."""

    _active: ClassVar[dict[int, int]] = {}  # id(engine) → running checkpointers
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        db = engine.url.database if engine.dialect.name == "sqlite" else None
        self.path = Path(db) if db and db != ":memory:" else None
        self._loop = Periodic("nurture-wal-checkpoint", CHECKPOINT_EVERY_S, self._tick,
                              "background WAL checkpoint failed", log)
        self.checkpoints = 0

    def start(self) -> None:
        if self.path is None or self._loop.running:
            return
        with self._lock:
            users = self._active.get(id(self.engine), 0)
            self._active[id(self.engine)] = users + 1
            if users == 0:
                set_autocheckpoint(self.engine, False)
                self.engine.dispose()  # pooled connections reopen with auto-checkpointing off
        self._loop.start()

    def stop(self) -> None:
        if not self._loop.running:
            return
        self._loop.stop()
        with self._lock:
            users = self._active.pop(id(self.engine), 1) - 1
            if users > 0:
                self._active[id(self.engine)] = users
            else:
                set_autocheckpoint(self.engine, True)
                self.engine.dispose()  # back to SQLite's default auto-checkpointing
        self._checkpoint_once()

    def _tick(self) -> None:
        wal = Path(f"{self.path}-wal")
        if wal.exists() and wal.stat().st_size > CHECKPOINT_ABOVE_BYTES:
            self._checkpoint_once()

    def _checkpoint_once(self) -> None:
        if self.path is None:
            return
        conn = sqlite3.connect(self.path, timeout=5.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
        finally:
            conn.close()


class HotPathTuning:
    """All three measures together, for the scheduler's lifetime (or a benchmark run)."""

    def __init__(self, engine: Engine) -> None:
        self.checkpointer = BackgroundCheckpointer(engine)
        self.statistics = StatisticsKeeper(engine)
        self._tuned = False

    def __enter__(self) -> HotPathTuning:
        self.checkpointer.start()
        self.statistics.start()
        if not self._tuned:
            tune_gc()
            self._tuned = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tuned:
            restore_gc()
            self._tuned = False
        self.statistics.stop()
        self.checkpointer.stop()
