"""The hot-path tuning the scheduler runs under: WAL checkpoints move to a background thread, and come
back to SQLite's default afterwards; the GC settings are restored."""

from __future__ import annotations

import gc
import time

from sqlalchemy import insert

from nurture_tui.engine.tuning import CHECKPOINT_ABOVE_BYTES, HotPathTuning
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead
from nurture_tui.workspace import Workspace


def _autocheckpoint(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_checkpoints_run_in_the_background_and_defaults_come_back(sqlite_workspace: Workspace) -> None:
    ws = sqlite_workspace
    before = gc.get_threshold()
    with HotPathTuning(ws.engine) as tuning:
        assert _autocheckpoint(ws) == 0  # commits no longer checkpoint on the engine's thread
        assert gc.get_threshold() != before
        filler = "x" * 2000
        for batch in range(3):
            with write_tx(ws.engine) as conn:
                conn.execute(insert(lead), [{"email": f"l{batch}-{i}@x.io", "company": filler} for i in range(1500)])
        deadline = time.monotonic() + 10
        while tuning.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tuning.checkpointer.checkpoints > 0, f"WAL grew past {CHECKPOINT_ABOVE_BYTES} bytes unchecked"
    assert _autocheckpoint(ws) == 1000
    assert gc.get_threshold() == before


def test_postgres_and_memory_databases_need_no_checkpointer(workspace: Workspace) -> None:
    with HotPathTuning(workspace.engine) as tuning, write_tx(workspace.engine) as conn:
        conn.execute(insert(lead), [{"email": "a@x.io"}])
    if not workspace.is_sqlite:
        assert tuning.checkpointer.path is None and tuning.checkpointer.checkpoints == 0


def test_two_schedulers_on_one_engine_share_the_checkpointer_setting(sqlite_workspace: Workspace) -> None:
    """A leader and a viewer in one process: auto-checkpointing stays off until the last one stops."""
    ws = sqlite_workspace
    before = gc.get_threshold()
    first, second = HotPathTuning(ws.engine), HotPathTuning(ws.engine)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert _autocheckpoint(ws) == 0
    assert gc.get_threshold() != before
    second.__exit__(None, None, None)
    assert _autocheckpoint(ws) == 1000
    assert gc.get_threshold() == before
