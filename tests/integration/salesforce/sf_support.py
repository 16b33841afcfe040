"""Helpers shared by the Salesforce integration tests (a uniquely named module, never `conftest`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.salesforce.retry import RetryPolicy
from nurture_tui.salesforce.sync import SyncReport, run_sync
from nurture_tui.store.tables import lead
from nurture_tui.workspace import Workspace

#: Retries without waiting, so fault tests run in milliseconds.
FAST_RETRY = RetryPolicy(max_tries=4, base_delay=0.0, max_relogins=2, sleep=lambda _s: None)


def sync(ws: Workspace, **kw: Any) -> SyncReport:
    return run_sync(ws, policy=FAST_RETRY, **kw)


def count(ws: Workspace, table: Any, *where: Any) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)


def local_lead(ws: Workspace, sf_id: str) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(lead).where(lead.c.sf_id == sf_id)).mappings().first()


def new_lead(emu: Emulator, email: str, **extra: Any) -> str:
    return emu.org.create("Lead", {"LastName": email.split("@")[0], "Company": "Acme", "Email": email, **extra})
