"""`nurture bench import --rows N --json`: CSV → leads, end to end, against plain sqlite3 executemany.

Ours: `nurture_tui.leads.importer.import_csv` on a freshly initialised SQLite workspace (header aliases,
parse, per-row validation, chunked upserts, errors file, audit). Reference, in the same run: the same
rows, already parsed and in memory, inserted with one `sqlite3` `executemany` into the `lead` table of
another fresh workspace (same schema, indexes and constraints), in one transaction.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import typer

NAME = "import"


def _workspace(path: Path):  # type: ignore[no-untyped-def]
    from ..config import load_settings
    from ..workspace import Workspace

    return Workspace.open(load_settings(None, f"sqlite:///{path}", data_dir=path.parent), create=True)


def _reference(db: Path, rows: list[tuple[object, ...]], now: str) -> float:
    from ..demo.csvgen import COLUMNS
    from .common import timed

    cols = (*COLUMNS, "score", "opted_out", "bounced", "custom", "created_at", "updated_at")
    tail = (0.0, False, False, "{}", now, now)
    full = [(*row, *tail) for row in rows]
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        sql = f"INSERT INTO lead ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

        def run() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, full)
            conn.execute("COMMIT")

        seconds, _ = timed(run)
        inserted = conn.execute("SELECT count(*) FROM lead").fetchone()[0]
    finally:
        conn.close()
    if inserted != len(rows):
        raise RuntimeError(f"reference inserted {inserted} of {len(rows)} rows")
    return seconds


def command(
    rows: int = typer.Option(1_000_000, "--rows", min=1, help="How many leads the CSV holds."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """CSV import of N leads into a fresh SQLite workspace vs plain sqlite3 executemany of the same rows."""
    from ..demo.csvgen import lead_rows, write_csv
    from ..leads.importer import import_csv
    from ..store.types import to_db
    from .common import record, timed

    with tempfile.TemporaryDirectory(prefix="nurture-bench-import-") as tmp:
        base = Path(tmp)
        data = lead_rows(rows, seed)
        csv_path = base / "leads.csv"
        write_csv(csv_path, data)
        ours_ws = _workspace(base / "ours.db")
        try:
            seconds, result = timed(lambda: import_csv(ours_ws, csv_path))
            now = to_db(ours_ws.clock.now())
        finally:
            ours_ws.close()
        if result.imported != rows or result.rejected:
            raise RuntimeError(f"benchmark import went wrong: {result.summary()}")
        _workspace(base / "reference.db").close()
        ref_seconds = _reference(base / "reference.db", data, now)  # type: ignore[arg-type]
    rate = rows / seconds
    ref_rate = rows / ref_seconds
    record({
        "scenario": "import", "rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rate),
        "reference_rows_per_s": round(ref_rate), "ratio": round(rate / ref_rate, 4),
    }, as_json=json_, echo=typer.echo)
