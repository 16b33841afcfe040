"""`nurture daemon`: the scheduler headless, with JSON-lines logs and a clean SIGTERM shutdown.

SIGTERM/SIGINT: the tick finishes its current batch (no batch is abandoned half-way: each one is a
transaction anyway), the web server stops accepting requests, the lease is released, exit 0.
`--http HOST:PORT` serves the tracking/unsubscribe/events web app (uvicorn) in the same process.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from ..config import require_real_secrets
from ..errors import NurtureError
from ..workspace import Workspace
from .scheduler import NurtureScheduler

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and any `extra={...}` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(stream: TextIO = sys.stderr, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise NurtureError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def run_daemon(ws: Workspace, sched: NurtureScheduler, *, http: str | None = None,
               stop: threading.Event | None = None) -> int:
    """Run `sched` (built by `nurture_tui.wiring`) until SIGTERM/SIGINT or `stop`."""
    log = logging.getLogger("nurture.daemon")
    require_real_secrets(ws.settings, "daemon")
    stop = stop or threading.Event()
    hostport = parse_hostport(http) if http else None
    worker = sched.worker
    server = None
    server_thread = None
    if hostport is not None:
        server = _http_server(ws, *hostport)

    def _signal(signum: int, _frame: Any) -> None:
        log.info("signal received, shutting down", extra={"signal": signal.Signals(signum).name})
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _signal)
        signal.signal(signal.SIGINT, _signal)
    log.info("daemon starting", extra={"db": ws.describe(), "worker": worker, "http": http})
    sched.start()
    if server is not None:
        server_thread = threading.Thread(target=server.run, name="http", daemon=True)
        server_thread.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        if server is not None:
            server.should_exit = True
            if server_thread is not None:
                server_thread.join(timeout=10)
        sched.stop()
        log.info("daemon stopped", extra={"steps": sched.steps_total, "batches": sched.batches_total})
    return 0


def _http_server(ws: Workspace, host: str, port: int) -> Any:
    import uvicorn  # the web stack loads only with --http

    from ..web.app import create_app

    config = uvicorn.Config(create_app(ws), host=host, port=port, log_config=None, access_log=False,
                            lifespan="on")
    return uvicorn.Server(config)
