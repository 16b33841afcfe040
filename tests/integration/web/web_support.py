"""Helpers shared by the tracking web tests: sent messages to hit, and another process's SQLite write lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta

from sqlalchemy import insert, select

from nurture_tui.engine.seeding import make_leads
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, outbox
from nurture_tui.workspace import Workspace


def sent_messages(ws: Workspace, n: int) -> list[tuple[int, str]]:
    """n leads with one message each, sent an hour ago: (lead id, message_ref)."""
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        ids = make_leads(conn, n, now)
        conn.execute(insert(outbox), [{
            "idempotency_key": f"t:{lid}", "lead_id": lid, "to_email": f"l{lid}@example.com", "status": "sent",
            "message_ref": f"ref-{lid}", "sent_at": now - timedelta(hours=1), "created_at": now, "headers": {},
        } for lid in ids])
    return [(lid, f"ref-{lid}") for lid in ids]


def hold_write_lock(ws: Workspace, seconds: float) -> tuple[threading.Event, threading.Thread]:
    """Another connection takes SQLite's write lock now and releases it after `seconds`; the event is set
    just before the release."""
    db_path = ws.engine.url.database
    assert db_path
    locker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_later() -> None:
        time.sleep(seconds)
        released.set()
        locker.execute("COMMIT")
        locker.close()

    thread = threading.Thread(target=release_later)
    thread.start()
    return released, thread


def stored_agents(ws: Workspace) -> list[str]:
    """The user agents of the stored opens and clicks (each test hit carries its own)."""
    with ws.engine.connect() as conn:
        return [m["ua"] for m in conn.execute(select(activity.c.meta).where(activity.c.kind.in_(("open", "click"))))
                .scalars()]
