"""Engine factory: SQLite (WAL, NORMAL, busy_timeout, foreign keys) or PostgreSQL via psycopg 3.

SQLite transactions: pysqlite's own BEGIN handling is disabled and we emit BEGIN ourselves, so that
write paths can ask for `BEGIN IMMEDIATE` (take the write lock up front, no upgrade deadlocks) with
`conn.execution_options(sqlite_begin="IMMEDIATE")` or the `write_tx()` helper.

Several processes writing one SQLite file (consoles, the daemon, the tracking app; issue 20 item 12):
SQLite's own busy handler polls with growing sleeps, so a writer that commits and begins again at once
(the engine draining a backlog batch after batch) can starve a waiting console past any timeout, and the
waiter gets "database is locked". `write_tx` therefore queues writers before `BEGIN IMMEDIATE`: a writer
first takes the workspace's *writer gate* — an exclusive `flock` on `<db>-writers.lock` (plus a thread lock
inside the process) — waits for the database lock while holding it, and lets the gate go as soon as its
`BEGIN IMMEDIATE` succeeded. So at most one writer at a time polls for the lock, the one that holds it
next; a writer that has just committed has to queue behind the writers already waiting. Waiting is bounded
by `WRITE_WAIT_SECONDS`, after which a one-line error says the database stayed busy. BEGIN is retried with
backoff on SQLITE_BUSY within that bound. In-memory databases and PostgreSQL have no gate.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ..errors import NurtureError

BUSY_TIMEOUT_MS = 30_000  # one BEGIN's wait inside SQLite (the gate makes it the current writer's turn)
WRITE_WAIT_SECONDS = 120.0  # a writer gives up (one line) after waiting this long in all
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=268435456",
)


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` as psycopg 3; leave everything else alone."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    if isinstance(engine_or_url, Engine):
        return engine_or_url.dialect.name == "sqlite"
    return make_url(engine_or_url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise NurtureError(f"--db {url!r}: not a database URL ({exc})") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, echo=echo)
    if backend == "postgresql":
        return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)
    raise NurtureError(f"--db {url!r}: unsupported database (use sqlite:/// or postgresql://)")


#: Engines whose new connections run without WAL auto-checkpoints (engine.tuning's background checkpointer
#: does them instead). A flag their own connect listener reads: adding or removing a listener while other
#: threads open connections races SQLAlchemy's event dispatch ("deque mutated during iteration").
_NO_AUTOCHECKPOINT: set[int] = set()


def set_autocheckpoint(engine: Engine, enabled: bool) -> None:
    """Connections opened from now on auto-checkpoint (SQLite's default) or not; dispose the pool to apply
    it to pooled ones."""
    if enabled:
        _NO_AUTOCHECKPOINT.discard(id(engine))
    else:
        _NO_AUTOCHECKPOINT.add(id(engine))


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    memory = database in (None, "", ":memory:")
    if not memory and database:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}}
    if memory:
        from sqlalchemy.pool import StaticPool

        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            if memory and "journal_mode" in pragma:
                continue
            cur.execute(pragma)
        if id(engine) in _NO_AUTOCHECKPOINT:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def make_single_connection_engine(url: str) -> Engine:
    """An engine without pooling, for short-lived subprocess tools and tests that must not hold files open."""
    url = normalise_url(url)
    if is_sqlite(url):
        engine = _sqlite_engine(url, echo=False)
        engine.pool = NullPool(engine.pool._creator)
        return engine
    return create_engine(url, poolclass=NullPool)


class WriterGate:
    """The queue in front of one SQLite file's write lock (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(f"{path}-writers.lock")
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own description
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def turn(self, deadline: float) -> Iterator[None]:
        """Hold the gate (threads of this process, then processes) until the block ends."""
        if not self._thread_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):  # clock-ok
            raise NurtureError(f"{self.path.name}: another writer in this process held the database for "
                               f"{WRITE_WAIT_SECONDS:.0f} s")
        try:
            fd = self._file()
            _flock_until(fd, deadline, self.path)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


def _flock_until(fd: int, deadline: float, path: Path) -> None:
    """An exclusive flock, waiting in the kernel's queue in slices so the deadline holds."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if time.monotonic() > deadline:  # clock-ok: a real-time bound on waiting
            raise NurtureError(f"{path.name}: the database stayed busy for {WRITE_WAIT_SECONDS:.0f} s")
        # a blocking flock in a helper thread would queue in the kernel; a short sleep is as fair here,
        # because only writers that queue at the gate compete and the holder is next at the database
        time.sleep(0.002)


_GATES: dict[str, WriterGate] = {}
_GATES_LOCK = threading.Lock()


def writer_gate(engine: Engine) -> WriterGate | None:
    """The gate of an SQLite file database (one per file and process), None otherwise."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    key = os.path.abspath(os.path.expanduser(database))
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = WriterGate(Path(key))
        return gate


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return "database is locked" in text or "database is busy" in text


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: `BEGIN IMMEDIATE` on SQLite (writer lock up front, after waiting its turn at
    the writer gate), plain BEGIN elsewhere."""
    gate = writer_gate(engine)
    if gate is None:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
        return
    deadline = time.monotonic() + WRITE_WAIT_SECONDS  # clock-ok: a real-time bound on waiting
    with engine.connect() as raw:
        conn = raw.execution_options(sqlite_begin="IMMEDIATE")
        with gate.turn(deadline):
            trans = _begin_until(conn, deadline, gate.path)
        with trans:
            yield conn


#: PostgreSQL: leads a bulk writer (an entry sweep, a segment enrolled by hand) writes per transaction. Each
#: enrollment takes its lead's rollup lock (store/rollups.py: an advisory lock, held to the end of the
#: transaction), and the server's shared lock table holds `max_locks_per_transaction × max_connections`
#: (6,400 by default) plus some slack: a sequence launched to 25,000 new members in one transaction failed
#: with "out of shared memory", at every sweep.
BULK_TX_LEADS = 5_000


@contextmanager
def bulk_write_tx(engine: Engine) -> Iterator[tuple[Connection, Callable[[], None] | None]]:
    """A write transaction a bulk writer may commit part-way through: `(conn, commit)`, where `commit` ends
    the transaction so far and begins the next (PostgreSQL: see `BULK_TX_LEADS`), and is None on SQLite, whose
    one writer lock is taken once and whose transactions have no such limit. Work committed part-way stays
    when a later part fails, so a bulk writer using it must be safe to run again (a sweep is)."""
    if engine.dialect.name != "postgresql":
        with write_tx(engine) as conn:
            yield conn, None
        return
    with engine.connect() as conn:  # autobegin: every statement after a commit begins the next transaction
        yield conn, conn.commit
        conn.commit()


def _begin_until(conn: Connection, deadline: float, path: Path) -> Any:
    delay = 0.005
    while True:
        try:
            return conn.begin()
        except OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:  # clock-ok
                if _is_busy(exc):
                    raise NurtureError(f"{path.name}: the database stayed busy for {WRITE_WAIT_SECONDS:.0f} s") \
                        from exc
                raise
            conn.rollback()
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
