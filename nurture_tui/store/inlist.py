"""`column IN (…)` for thousands of values as one bound parameter: a JSON array read by `json_each` on SQLite,
an array compared with `= ANY` on PostgreSQL.

An expanded `IN` list costs SQLAlchemy a bind parameter per value to compile (more than the database's index
probes for 25,000 Salesforce ids) and needs chunking under SQLite's parameter limit; with one parameter the
statement is compiled once and cached, and a page of ids is one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, String, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY


def in_values(conn: Connection, column: Any, values: Iterable[str] | Iterable[int]) -> ColumnElement[bool]:
    """`column IN values` (text or integer values, all of one kind) with the values in one parameter."""
    vals = list(values)
    if conn.dialect.name == "postgresql":
        kind = BigInteger() if vals and isinstance(vals[0], int) else String()
        expr: ColumnElement[bool] = column == any_(bindparam(None, vals, type_=ARRAY(kind)))
        return expr
    each = func.json_each(bindparam(None, json.dumps(vals), type_=String()))
    out: ColumnElement[bool] = column.in_(select(literal_column("value")).select_from(each))
    return out
