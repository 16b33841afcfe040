"""The tracking database writer in a process of its own (`mail.tracking_writer`, issue 21).

Why: committing journaled hits (and, on PostgreSQL, applying their effects) is Python work that shares
the interpreter lock with the event loop answering the requests. With the writer threads in the web
process it answered ~3,500 requests/s with a p99 of 45–60 ms; without them (nothing committed, a
diagnostic) ~13,000/s with a p99 of 10–12 ms. So `nurture daemon --http` (`tracking_writer = "auto"`)
keeps the journal, the answers and the pacing in the web process and hands the commits to a child.

How: after each journal flush (the lines are durable) the web process sends the flush's lines to the
child over a pipe; the child decodes them and commits them with the same `HitWriter` code (batches,
checkpoints in the same transaction, effects), then sends back each segment's last committed sequence
number. The web process still owns the journal (segments, rotation, removal) and derives its lag, its
pacing and `wait_committed` from those numbers.

Crashes:
- the child dies: the web process starts a new one and sends its segments again, from the files; the new
  child skips what the database's checkpoints say is committed, so nothing is committed twice or lost;
- the web process dies: the child sees the pipe close and exits at once, committing nothing more. It holds
  a shared lock on every segment it writes for (as does the web process), so a new writer replays those
  segments only once both are gone (`journal.orphans`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import NurtureError

log = logging.getLogger("nurture.web.ingest")

#: Message kinds from the web process (the first byte; then the segment name, a newline, the lines).
LINES, RETIRED = b"L", b"R"
STOP = b""
#: Longest pause before starting a writer process again after one died.
RESTART_MAX_SECONDS = 5.0
#: Longest wait for a starting writer process's first word.
READY_SECONDS = 120.0


class WriterProcess:
    """The web process's end: starts the child (`target(settings, conn)`: `ingest.serve_writer_process`),
    sends it each flush, hands its acknowledgements ({segment: last committed seq}) to `acked`, and restarts
    it if it dies, sending it again the segments `live_segments()` names (files in `journal_dir`)."""

    def __init__(self, settings: Settings, journal_dir: Path, *, target: Callable[[Settings, Connection], None],
                 acked: Callable[[dict[str, int]], None], live_segments: Callable[[], list[str]]) -> None:
        self.settings, self.journal_dir, self.target = settings, journal_dir, target
        self.acked, self.live_segments = acked, live_segments
        self.restarts = 0
        self.final: dict[str, Any] = {}
        self._stopping = False
        self._send_lock = threading.Lock()
        self._spawn()
        if not self._ready():
            raise NurtureError(f"the tracking writer process did not start (exit code {self._proc.exitcode}); "
                               "see its log lines above")
        self._thread = threading.Thread(target=self._receive, name="nurture-hit-writer-acks", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # nothing inherited: not the journal's locks, not the engine
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=self.target, args=(self.settings, child),
                                 name="nurture-hit-writer", daemon=True)
        self._proc.start()
        child.close()

    @property
    def pid(self) -> int | None:
        """The writer process's pid (tests, diagnostics)."""
        return self._proc.pid

    def send(self, segment: str, lines: bytes) -> None:
        self._send(LINES + segment.encode() + b"\n" + lines)

    def retired(self, segment: str) -> None:
        """The segment is committed and removed: the child lets go of it."""
        self._send(RETIRED + segment.encode() + b"\n")

    def _send(self, message: bytes) -> None:
        # OSError: the child is gone; _receive starts another and sends it the segments again
        with self._send_lock, contextlib.suppress(OSError):
            self._conn.send_bytes(message)

    def _receive(self) -> None:
        while True:
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                if self._stopping:  # gone without its goodbye: what it did not commit stays in the journal
                    self.final = {"stuck": True}
                    return
                self._restart()
                continue
            if kind == "bye":
                self.final = payload
                return
            self.acked(payload)

    def _ready(self, timeout: float = READY_SECONDS) -> bool:
        """Wait for the child's first word: it has started and ignores the stop signals (until then a
        SIGTERM to the whole service would kill it)."""
        try:
            return bool(self._conn.poll(timeout)) and self._conn.recv()[0] == "ready"
        except (EOFError, OSError):
            return False

    def _restart(self) -> None:
        self._proc.join(5)
        log.error("tracking writer process died, starting another",
                  extra={"exitcode": self._proc.exitcode, "restarts": self.restarts})
        while not self._stopping:
            time.sleep(min(RESTART_MAX_SECONDS, 0.1 * 2 ** min(self.restarts, 6)))
            self.restarts += 1
            with self._send_lock:  # flushes wait, so each segment's lines arrive in order (the child skips
                # repeats)
                self._spawn()
                if not self._ready():
                    log.error("tracking writer process did not start", extra={"exitcode": self._proc.exitcode})
                    continue
                for name in self.live_segments():
                    try:
                        data = (self.journal_dir / name).read_bytes()
                    except FileNotFoundError:
                        continue
                    complete = data[:data.rfind(b"\n") + 1]  # a flush being written comes with its message
                    if complete:
                        self._conn.send_bytes(LINES + name.encode() + b"\n" + complete)
                return

    def stop(self, timeout: float) -> dict[str, Any]:
        """Let the child commit everything sent, apply its effects and exit; returns its final figures
        (`stuck`: hits were left in the journal)."""
        self._stopping = True
        self._send(STOP)
        self._thread.join(timeout)
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self.final = {"stuck": True}
        return self.final


def share_lock(path: os.PathLike[str]) -> int | None:
    """A shared lock on a segment the web process holds (shared too); a replayer's exclusive lock on it means
    the web process is gone: then so is this one. None: the segment is removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os._exit(0)
    return fd
