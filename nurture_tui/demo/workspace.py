"""Where the demo lives and when to rebuild it: `<data_dir>/demo.db` unless `--db` names another
database; an existing demo built with the same parameters is reused; anything else is rebuilt, but a
database that holds real (non-demo) data is never touched."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, inspect, select

from ..errors import NurtureError
from ..store.engine import write_tx
from ..store.models import metadata
from ..store.tables import lead
from .generate import DemoProgress, DemoSummary, build_demo, default_activities, is_demo, stored_demo

if TYPE_CHECKING:
    from ..config import Settings
    from ..workspace import Workspace


def demo_db_url(settings: Settings) -> str:
    return f"sqlite:///{Path(settings.data_dir) / 'demo.db'}"


def _sqlite_file(ws: Workspace) -> Path | None:
    if not ws.is_sqlite:
        return None
    database = ws.engine.url.database
    return Path(database) if database and database != ":memory:" else None


def _has_leads(ws: Workspace) -> bool:
    with ws.engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(lead)).scalar_one())


def clear(ws: Workspace) -> Workspace:
    """Empty a demo workspace: delete the SQLite files (fast) or every row (PostgreSQL)."""
    from ..workspace import Workspace as WorkspaceCls

    path = _sqlite_file(ws)
    if path is not None:
        settings, clock = ws.settings, ws.clock
        ws.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return WorkspaceCls.open(settings, clock=clock, create=True)
    existing = set(inspect(ws.engine).get_table_names())
    with write_tx(ws.engine) as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name in existing:
                conn.execute(delete(table))
    return ws


def ensure_demo(
    ws: Workspace, *, leads: int, seed: int, activities: int | None = None, rebuild: bool = False,
    progress: DemoProgress | None = None,
) -> tuple[Workspace, DemoSummary]:
    """Reuse the demo in `ws` if it was built with these parameters, else (re)build it. Returns the
    workspace to use (a new one when the SQLite file was recreated) and the summary."""
    wanted = default_activities(leads) if activities is None else activities
    existing = stored_demo(ws)
    if existing is not None and not rebuild and (existing.leads, existing.seed, existing.activities) == (
            leads, seed, wanted):
        return ws, DemoSummary(**{**existing.params(), "reused": True})
    if _has_leads(ws) or is_demo(ws):
        if not is_demo(ws):
            raise NurtureError(f"{ws.describe()}: holds leads that are not a nurture demo; point --db at an "
                               "empty database (or leave --db out to use the demo workspace)")
        ws = clear(ws)
    return ws, build_demo(ws, leads=leads, seed=seed, activities=wanted, progress=progress)
