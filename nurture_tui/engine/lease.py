"""A DB lease elects one leader per database for the singleton jobs (entry sweep, dispatch, sync, decay,
maintenance). Acquire and renew are one conditional UPDATE (or INSERT when the row is new), so two
processes can never both believe they hold it. Lease expiry is real time (process liveness), not the
workspace clock, which may be virtual.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..store.engine import write_tx
from ..store.tables import lease

LEADER = "scheduler"


def real_now() -> datetime:
    return datetime.now(UTC)  # clock-ok: lease liveness is measured in real time


def make_holder(kind: str = "scheduler") -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    expires_at: datetime


def acquire(engine: Engine, holder: str, ttl_seconds: float, name: str = LEADER) -> bool:
    """Take or renew the lease; True when `holder` holds it afterwards."""
    now = real_now()
    expires = now + timedelta(seconds=ttl_seconds)
    with write_tx(engine) as conn:
        got = conn.execute(
            update(lease)
            .where(lease.c.name == name, or_(lease.c.holder == holder, lease.c.expires_at < now))
            .values(holder=holder, expires_at=expires)
        ).rowcount
        if got:
            return True
        if conn.execute(select(lease.c.name).where(lease.c.name == name)).first() is not None:
            return False
    try:
        with write_tx(engine) as conn:
            conn.execute(insert(lease).values(name=name, holder=holder, acquired_at=now, expires_at=expires))
        return True
    except IntegrityError:  # another process inserted it first
        return False


def release(engine: Engine, holder: str, name: str = LEADER) -> None:
    with write_tx(engine) as conn:
        conn.execute(delete(lease).where(lease.c.name == name, lease.c.holder == holder))


def current(engine: Engine, name: str = LEADER) -> LeaseInfo | None:
    """The live lease, or None when nobody holds it (or it expired)."""
    with engine.connect() as conn:
        row = conn.execute(select(lease.c.holder, lease.c.expires_at).where(lease.c.name == name)).first()
    if row is None or row.expires_at < real_now():
        return None
    return LeaseInfo(row.holder, row.expires_at)
