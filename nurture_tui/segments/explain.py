"""Query plans of compiled segment statements (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL),
for the plan tests and `nurture bench segments`, so index regressions show up as text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Executable, event


def query_plan(conn: Connection, stmt: Executable) -> list[str]:
    """The plan lines for `stmt`, with its real bound parameters."""
    prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "

    def _explain(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any,
                 _many: bool) -> tuple[str, Any]:
        return prefix + statement, parameters

    event.listen(conn, "before_cursor_execute", _explain, retval=True)
    try:
        rows = conn.execute(stmt).all()
    finally:
        event.remove(conn, "before_cursor_execute", _explain)
    return [str(row[-1]) for row in rows]
