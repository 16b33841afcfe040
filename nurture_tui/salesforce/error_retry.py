"""Retrying one Salesforce sync error by hand (the Sync & audit screen's `t`), audited.

- a push error (it has an outbox row): the row is queued again with its attempts reset and no backoff; the
  error stays open until the next push of it succeeds (the pusher resolves it) or fails again (the pusher
  updates it);
- a pull error of one record: every sync already re-reads such records by Id first, so the error is
  left as it is and the answer says so;
- a whole-sync or whole-job failure (no record): acknowledged (resolved), as `nurture sync --retry-errors`
  does; the next sync runs the whole job again anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from ..errors import NotFoundError
from ..store.audit import record
from ..store.tables import sf_outbox, sync_error


def retry_error(conn: Connection, error_id: int, *, now: datetime, user: str) -> str:
    """Retry sync error `error_id`; returns what was done, in a few words (a `NotFoundError` if it is gone)."""
    e = sync_error.c
    err = conn.execute(select(sync_error).where(e.id == error_id)).first()
    if err is None or err.resolved_at is not None:
        raise NotFoundError(f"sync error {error_id} is not open any more")
    after: dict[str, Any]
    if err.sf_outbox_id is not None:
        before = conn.execute(select(sf_outbox.c.status, sf_outbox.c.attempts)
                              .where(sf_outbox.c.id == err.sf_outbox_id)).first()
        if before is None:
            conn.execute(update(sync_error).where(e.id == error_id).values(resolved_at=now))
            outcome, after = "resolved: its push was already removed", {"resolved": True}
        else:
            conn.execute(update(sf_outbox).where(sf_outbox.c.id == err.sf_outbox_id)
                         .values(status="pending", attempts=0, retry_at=None))
            outcome, after = "queued: the next sync pushes it again", {"status": "pending", "attempts": 0}
        prior = {"status": before.status, "attempts": before.attempts} if before is not None else None
    elif err.record_id:
        return "already retried: every sync reads this record again first"
    else:
        conn.execute(update(sync_error).where(e.id == error_id).values(resolved_at=now))
        outcome, prior, after = "acknowledged: the next sync runs it again", None, {"resolved": True}
    record(conn, at=now, user=user, action="sync.retry", entity="sync_error", entity_id=error_id,
           before={"code": err.code, "message": err.message[:500], "outbox": prior}, after=after)
    return outcome
