"""A housekeeping loop on a daemon thread: `tick` every `every` seconds until stopped. A tick that raises
is logged and the next round tries again: housekeeping must never take the process down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Periodic:
    def __init__(self, name: str, every: float, tick: Callable[[], object], failure: str,
                 log: logging.Logger) -> None:
        self.name = name
        self.every = every
        self.tick = tick
        self.failure = failure  # the log message when a tick raises
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a tick in progress to finish."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception:
                self.log.exception(self.failure)
