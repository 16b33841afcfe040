"""PostgreSQL planner statistics when the server does not keep them (`autovacuum = off`).

Without statistics PostgreSQL plans from table sizes and default selectivities, and PL/pgSQL caches the
plans of a trigger's statements for the life of the session. Plans the rollup triggers made for their
probes of `activity` (a lead's sends, a message's opens) while the table was small can walk a whole index
once it has grown: on a server with autovacuum off, `nurture bench engine` on PostgreSQL ran at 300–800
steps/s and kept slowing as `activity` grew, against ~2,200 with statistics (an ANALYZE in mid-run brought
it back). Autovacuum prevents that by analysing a table once `50 + 10 %` of it has changed — ANALYZE also
invalidates the cached plans — so where the server's autovacuum is off, the keeper does the same for the
tables of this schema, from a background thread, while the engine runs (`engine.tuning.HotPathTuning`).
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, text

from ..periodic import Periodic

log = logging.getLogger("nurture.store")

#: autovacuum's defaults (`autovacuum_analyze_threshold`, `autovacuum_analyze_scale_factor`, and
#: `autovacuum_naptime`: a table is looked at again a minute after its last analysis at the earliest —
#: analysing a fast-growing table at every 10 % took a third of the engine bench's CPU)
ANALYZE_BASE_ROWS = 50
ANALYZE_SCALE = 0.1
AGAIN_AFTER_S = 60.0
CHECK_EVERY_S = 1.0

_DUE = text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze > :base + :scale * greatest(c.reltuples, 0) "
    "AND (s.last_analyze IS NULL OR s.last_analyze < now() - make_interval(secs => :again)) "
    "ORDER BY s.n_mod_since_analyze DESC")
#: one keeper per schema at a time analyses (two engine workers share a schema); the others skip the round
_TAKE_TURN = text("SELECT pg_try_advisory_xact_lock(hashtext('nurture.analyze:' || current_schema()))")


def server_analyzes(conn: Connection) -> bool:
    """The server's autovacuum analyses changed tables itself (it needs `track_counts` too)."""
    row = conn.execute(text("SELECT current_setting('autovacuum'), current_setting('track_counts')")).one()
    return row[0] == "on" and row[1] == "on"


def analyze_due(conn: Connection, again_after: float = AGAIN_AFTER_S) -> list[str]:
    """ANALYZE this schema's tables that changed by autovacuum's threshold since their last analysis (and
    were not analysed in the last `again_after` seconds); returns their names (none when another keeper of
    the schema is at it)."""
    if not conn.execute(_TAKE_TURN).scalar():
        return []
    names = list(conn.execute(_DUE, {"base": ANALYZE_BASE_ROWS, "scale": ANALYZE_SCALE,
                                     "again": again_after}).scalars())
    quote = conn.dialect.identifier_preparer.quote
    for name in names:
        conn.exec_driver_sql(f"ANALYZE {quote(name)}")
    return names


class StatisticsKeeper:
    """Analyses changed tables every `CHECK_EVERY_S` while running, on PostgreSQL servers whose autovacuum
    does not (elsewhere `start` does nothing)."""

    def __init__(self, engine: Engine, every: float = CHECK_EVERY_S, again_after: float = AGAIN_AFTER_S,
                 always: bool = False) -> None:
        self.engine = engine
        self.again_after = again_after
        self.always = always  # also when the server's autovacuum is on (tests)
        self.analyzed = 0  # ANALYZE statements run
        self._loop = Periodic("nurture-analyze", every, self.run_once, "planner statistics: ANALYZE failed", log)

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        if self._loop.running or self.engine.dialect.name != "postgresql":
            return
        if not self.always:
            with self.engine.connect() as conn:
                if server_analyzes(conn):
                    return
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def __enter__(self) -> StatisticsKeeper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_once(self) -> list[str]:
        with self.engine.begin() as conn:
            names = analyze_due(conn, self.again_after)
        self.analyzed += len(names)
        if names:
            log.debug("analyzed", extra={"tables": names})
        return names
