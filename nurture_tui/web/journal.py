"""The tracking journal: opens and clicks are answered once appended here, and committed to the database just
after (issue 21, `mail.tracking_ack = "journal"`, the default).

Each writer owns one segment file at a time, `<data_dir>/tracking-journal/<store key>/<ns>-<pid>.jnl`, held
under a `flock` (shared with its writer process, if any) for the life of the process (the kernel drops it
when the process dies, however it dies). A hit is one JSON line with a sequence number. The flusher thread
writes everything appended since its last write in one `write()` and, with `mail.tracking_journal_fsync`
(default on), one `fdatasync` — so an answered hit survives a crash of the process, and of the machine — and
then resolves the waiting requests (one wake-up per event loop, not one per request) and hands the hits to
the database writer. The writer commits them in big batches and stores the segment's last committed sequence
number in the same transaction (`meta` key `tracking_journal:<segment>`): a hit is in the database once,
whatever crashes when.

On start a writer replays the segments no live process holds (their lock is free): the lines after the
stored sequence number are committed, then the file is removed. A segment is rotated at `ROTATE_BYTES` and
removed once everything in it is committed. A torn last line (a crash during the write, never answered) is
skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from ..mail.tokens import TokenData
from ..store import meta

#: A segment is closed for appends past this size and removed once all its hits are committed.
ROTATE_BYTES = 32 * 1024 * 1024
SUFFIX = ".jnl"
#: How long a new writer waits for the lock of a segment whose web process is gone (its writer process exits
#: as soon as it sees the pipe close).
OWNER_GONE_WAIT = 5.0
KEY_PREFIX = "tracking_journal:"


def journal_dir(data_dir: Path, engine: Engine) -> Path:
    """The segments of this database (a data directory may serve several workspaces): one directory per
    database URL (without its password), so a replay never goes to the wrong store."""
    url = engine.url.render_as_string(hide_password=True)
    return data_dir / "tracking-journal" / hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Entry:
    """One journaled hit: what the database writer needs to record it."""

    segment: str
    seq: int
    data: TokenData
    user_agent: str | None
    ip: str | None
    method: str
    now: datetime


def encode(seq: int, data: TokenData, ua: str | None, ip: str | None, method: str, now: datetime) -> bytes:
    return (json.dumps([seq, data.kind, data.lead_id, data.message_ref, data.url, data.expires.isoformat(),
                        ua, ip, method, now.isoformat()], separators=(",", ":")) + "\n").encode()


def decode(segment: str, line: bytes) -> Entry | None:
    """The entry of one line; None for a torn or foreign line."""
    try:
        seq, kind, lead_id, ref, url, expires, ua, ip, method, now = json.loads(line)
        data = TokenData(kind, int(lead_id), str(ref), datetime.fromisoformat(expires), str(url))
        return Entry(segment, int(seq), data, ua, ip, str(method), datetime.fromisoformat(now))
    except (ValueError, TypeError):
        return None


def checkpoint(conn: Connection, segment: str) -> int:
    value = meta.get(conn, KEY_PREFIX + segment)
    return int(value["seq"]) if isinstance(value, dict) else 0


def store_checkpoints(conn: Connection, seqs: dict[str, int]) -> None:
    """In the transaction that commits these hits: the last committed sequence number per segment."""
    for segment, seq in seqs.items():
        meta.put(conn, KEY_PREFIX + segment, {"seq": seq})


def forget(conn: Connection, segment: str) -> None:
    meta.delete(conn, KEY_PREFIX + segment)


def orphans(directory: Path) -> Iterator[tuple[str, int]]:
    """(segment name, locked fd) of every segment no live process holds; the caller closes the fd (which
    releases the lock) after replaying and removing it."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*" + SUFFIX)):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # removed by its owner meanwhile
            continue
        if not _lock_exclusive(fd, OWNER_GONE_WAIT if _owner_gone(path.name) else 0.0):  # a live writer's
            os.close(fd)
            continue
        yield path.name, fd


def _owner_gone(name: str) -> bool:
    """The process named in the segment's file name (`<ns>-<pid>.jnl`) no longer exists."""
    try:
        os.kill(int(name.removesuffix(SUFFIX).rpartition("-")[2]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OSError):
        return False
    return False


def _lock_exclusive(fd: int, wait: float) -> bool:
    """Take the segment's lock exclusively, waiting up to `wait` seconds (for a dead web process's writer
    process, which holds it shared until it has exited)."""
    deadline = time.monotonic() + wait  # clock-ok: a real-time bound
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:  # clock-ok
                return False
            time.sleep(0.05)


def read_entries(fd: int, segment: str, after: int) -> list[Entry]:
    """The segment's entries with seq > `after` (a torn last line is left out)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    out = []
    for line in b"".join(chunks).splitlines():
        entry = decode(segment, line)
        if entry is not None and entry.seq > after:
            out.append(entry)
    return out


class Journal:
    """This writer's segment and its flusher thread. `append(...)` (event loop) returns at once; the
    request's future resolves after the flush (write + fdatasync). `flushed(items, lines, segment)` is called
    on the flusher thread, in sequence order, once they are durable (`lines`: those written, to `segment`)."""

    def __init__(self, directory: Path, *, fsync: bool, flushed: Callable[[list[Any], bytes, str], None],
                 rotate_bytes: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.fsync = fsync
        self.rotate_bytes = rotate_bytes or ROTATE_BYTES
        self._flushed = flushed
        self._cond = threading.Condition()
        self._buffer: list[bytes] = []
        self._items: list[Any] = []
        self._seq = 0
        self.appended = 0
        self._closed = False
        self.segment, self._fd = self._open_segment()
        self._size = 0
        #: segments closed for appends: (name, last seq, fd), removed once committed up to that seq
        self.retired: list[tuple[str, int, int]] = []
        self.flushes = 0
        self._thread = threading.Thread(target=self._run, name="nurture-hit-journal", daemon=True)
        self._thread.start()

    def _open_segment(self) -> tuple[str, int]:
        name = f"{time.time_ns()}-{os.getpid()}{SUFFIX}"  # clock-ok: a unique, ordered file name
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # shared: the process's writer process (writer_process.py) holds it too; a replayer needs it exclusive
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return name, fd

    def append(self, make: Callable[[str, int], tuple[bytes, Any]]) -> Any:
        """`make(segment, seq)` → (line, item); the item is handed to `flushed` after the flush."""
        with self._cond:
            if self._closed:
                raise RuntimeError("tracking journal is closed")
            self._seq += 1
            self.appended += 1
            line, item = make(self.segment, self._seq)
            self._buffer.append(line)
            self._items.append(item)
            self._cond.notify()
        return item

    def close(self) -> None:
        """Flush what is appended and stop the flusher (the segment stays until its hits are committed)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buffer and not self._closed:
                    self._cond.wait()
                if not self._buffer and self._closed:
                    return
                lines, self._buffer = self._buffer, []
                items, self._items = self._items, []
                last = self._seq
                rotate = self._size + sum(map(len, lines)) > self.rotate_bytes
                name = self.segment
                if rotate:  # later appends go to a new segment; this one ends with `last`
                    old_name, old_fd = self.segment, self._fd
                    self.segment, self._fd = self._open_segment()
                    self._size = 0
            data = b"".join(lines)
            fd = old_fd if rotate else self._fd
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                os.fdatasync(fd)
            if rotate:
                self.retired.append((old_name, last, old_fd))
            else:
                self._size += len(data)
            self.flushes += 1
            self._flushed(items, data, name)

    def release(self, name: str, fd: int) -> None:
        """Remove a segment whose hits are all committed (and release its lock)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / name)
        os.close(fd)

    def finish(self) -> str:
        """After close and the last commit: remove the current segment; returns its name."""
        self.release(self.segment, self._fd)
        return self.segment


def resolve_all(futures: list[asyncio.Future[Any]]) -> None:
    """On the event loop: answer every request of one flush."""
    for fut in futures:
        if not fut.done():
            fut.set_result(None)
