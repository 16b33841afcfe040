"""Engine factory: SQLite (WAL, NORMAL, busy_timeout, foreign keys) or PostgreSQL via psycopg 3.

SQLite transactions: pysqlite's own BEGIN handling is disabled and we emit BEGIN ourselves, so that
write paths can ask for `BEGIN IMMEDIATE` (take the write lock up front, no upgrade deadlocks) with
`conn.execution_options(sqlite_begin="IMMEDIATE")` or the `write_tx()` helper.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ..errors import NurtureError

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
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


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    memory = database in (None, "", ":memory:")
    if not memory and database:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 5.0}}
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


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: `BEGIN IMMEDIATE` on SQLite (writer lock up front), plain BEGIN elsewhere."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn
