"""A DB lease elects one leader per database for the singleton jobs (entry sweep, dispatch, sync, decay,
maintenance). Acquire and renew are one conditional UPDATE (or INSERT when the row is new), so two
processes can never both believe they hold it. Lease expiry is real time (process liveness), not the
workspace clock, which may be virtual.

Crash recovery (issue 20 item 8): a holder string names its process — `kind:host:pid:boot_id:start:nonce`
(the kernel's boot id from /proc/sys/kernel/random/boot_id with the pid namespace, and the process start
time in clock ticks from /proc/<pid>/stat). A process on the same host, boot and pid namespace can tell
that such a holder is dead (no process with that pid, a zombie, or a different process that reused the
pid) and takes its lease over at
once instead of waiting for it to expire. A holder on another host, from another boot or in an older format
is only taken over when its lease expires, as before. The dispatcher marks the outbox rows it claims with its
holder, so rows left `sending` by a dead process are re-sent at once too (mail/dispatch.py).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..store.engine import write_tx
from ..store.tables import lease

LEADER = "scheduler"
log = logging.getLogger("nurture.engine")


def real_now() -> datetime:
    return datetime.now(UTC)  # clock-ok: lease liveness is measured in real time


_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """The kernel's boot id and this process's pid namespace (`<boot id>.<pid ns inode>`): pids are only
    comparable within one namespace, so two containers that share a host name never judge each other's
    processes dead. "" where either is unknown: then no holder is ever judged dead early."""
    try:
        boot = _BOOT_ID.read_text().strip()
        ns = os.readlink("/proc/self/ns/pid")  # e.g. "pid:[4026531836]"
    except OSError:
        return ""
    digits = "".join(ch for ch in ns if ch.isdigit())
    return f"{boot}.{digits}" if boot and digits else ""


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ("?", "")
    fields = raw[raw.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    return (fields[0], fields[19]) if len(fields) > 19 else ("?", "")


def make_holder(kind: str = "scheduler") -> str:
    pid = os.getpid()
    stat = _proc_stat(pid)
    start = stat[1] if stat else ""
    return f"{kind}:{socket.gethostname()}:{pid}:{boot_id()}:{start}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Holder:
    kind: str
    host: str
    pid: int
    boot: str
    start: str
    nonce: str

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.split(":")
        if len(parts) != 6 or not parts[2].isdigit():
            return None  # another format (older versions): only expiry frees it
        return cls(parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5])


def holder_is_dead(text: str) -> bool:
    """True only when `text` names a process on this host, in this boot, that no longer runs. Anything
    this process cannot be sure of (another host, another boot, an unknown format) is alive."""
    h = Holder.parse(text)
    if h is None or h.host != socket.gethostname() or not h.boot or h.boot != boot_id():
        return False
    if h.pid == os.getpid():
        return False  # this very process (another scheduler or dispatcher in it)
    try:
        os.kill(h.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's: still check the start time below
    stat = _proc_stat(h.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return True  # gone, or a zombie its parent has not reaped yet
    return bool(h.start) and bool(stat[1]) and stat[1] != h.start  # the pid was reused


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
        other = conn.execute(select(lease.c.holder).where(lease.c.name == name)).scalar()
        if other is not None:
            if not holder_is_dead(other):
                return False
            # the previous holder crashed on this host: take over now, not when its lease expires
            took = conn.execute(
                update(lease).where(lease.c.name == name, lease.c.holder == other)
                .values(holder=holder, acquired_at=now, expires_at=expires)
            ).rowcount
            if took:
                log.warning("took over the lease of a dead process", extra={"lease": name, "dead": other})
            return bool(took)
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
