"""CSV lead export: the importable fields under their canonical names, plus one `custom.KEY` column per
custom key, so that importing an export reproduces the leads (`import(export(x)) == x`)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, true

from ..store.tables import lead, user
from . import fields as F

#: progress(rows_written)
ExportProgress = Callable[[int], None]


def custom_keys(conn: Connection, where: ColumnElement[bool] | None = None) -> list[str]:
    """Every key used in the selected leads' custom JSON, sorted."""
    fn = func.jsonb_each if conn.dialect.name == "postgresql" else func.json_each
    each = fn(lead.c.custom).table_valued("key")
    stmt = select(each.c.key).distinct().select_from(lead).join(each, true())
    if where is not None:
        stmt = stmt.where(where)
    return sorted(str(k) for k in conn.execute(stmt).scalars() if k is not None)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def export_csv(
    conn: Connection,
    path: Path | str,
    *,
    where: ColumnElement[bool] | None = None,
    progress: ExportProgress | None = None,
    batch: int = 10_000,
) -> int:
    """Write the selected leads (all, or those matching a Core `where` over `lead`) to `path` in id
    order; returns the number of leads written."""
    path = Path(path)
    keys = custom_keys(conn, where)
    columns = [lead.c[F.column_for(f)] if f != "owner" else user.c.username.label("owner")
               for f in F.FIELD_NAMES]
    stmt = (select(*columns, lead.c.custom)
            .select_from(lead.outerjoin(user, user.c.id == lead.c.owner_id))
            .order_by(lead.c.id))
    if where is not None:
        stmt = stmt.where(where)
    written = 0
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*F.FIELD_NAMES, *(F.CUSTOM_PREFIX + k for k in keys)])
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
        for part in result.partitions():
            out = []
            for row in part:
                custom = row[-1] or {}
                out.append([_cell(v) for v in row[:-1]] + [_cell(custom.get(k)) for k in keys])
            writer.writerows(out)
            written += len(out)
            if progress:
                progress(written)
    tmp.replace(path)  # a reader never sees a half-written export
    return written
