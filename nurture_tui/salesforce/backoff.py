"""The capped retry backoff shared by every push that Salesforce refuses record by record with a transient code
(UNABLE_TO_LOCK_ROW …): a lead's live values or create (`sf_lead_sync`, live.py / create.py) and an
`sf_outbox` row (a Task, a Campaign Member, an erasure, a field update; push.py).

After the n-th failure in a row the record waits `retry_backoff_seconds · 2^(n−1)` (at most
`retry_backoff_max_seconds`); after `max_attempts` failures in a row it is given up — kept in `sync_error`
until a fix (`nurture sync --retry-errors`). Times are unix seconds (the capture triggers' clock)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, or_, update

from ..config import SalesforceSettings
from ..store.tables import sf_lead_sync, sf_outbox


def backoff_seconds(cfg: SalesforceSettings, attempts: int) -> float:
    """The wait before retry number `attempts` (1 = after the first failure): base · 2^(attempts − 1), capped."""
    return float(min(cfg.retry_backoff_max_seconds, cfg.retry_backoff_seconds * 2 ** max(0, attempts - 1)))


def next_try(cfg: SalesforceSettings, attempts: int, wall: float) -> float | None:
    """When to try again after the `attempts`-th transient failure in a row at unix time `wall`; None = give up
    (`max_attempts` reached)."""
    if attempts >= cfg.max_attempts:
        return None
    return wall + backoff_seconds(cfg, attempts)


def ready(retry_at: Any, wall: float) -> Any:
    """SQL: rows whose `retry_at` column is not waiting out a backoff at unix time `wall`."""
    return or_(retry_at.is_(None), retry_at <= wall)


def given_up(cfg: SalesforceSettings, when: str = "on `nurture sync --retry-errors`") -> str:
    """What a given-up record's error message ends with."""
    return f" (given up after {cfg.max_attempts} attempts: retried {when})"


def end(conn: Connection, lead_ids: list[int] | None = None) -> int:
    """End every retry backoff (of `lead_ids` only, when given) with a fresh round of attempts: the leads'
    live values and their pending outbox rows go with the next push (`--retry-errors`, or a pulled
    conversion that gives the refused pushes a new record). Returns the rows changed."""
    n = 0
    for table, where in ((sf_lead_sync, ()), (sf_outbox, (sf_outbox.c.status == "pending",))):
        stmt = update(table).where(table.c.retry_at.is_not(None), *where)
        if lead_ids is not None:
            stmt = stmt.where(table.c.lead_id.in_(lead_ids))
        n += conn.execute(stmt.values(retry_at=None, attempts=0)).rowcount or 0
    return n
