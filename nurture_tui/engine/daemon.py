"""`nurture daemon`: the scheduler headless, with JSON-lines logs and a clean SIGTERM shutdown.

SIGTERM/SIGINT: the tick finishes its current batch (no batch is abandoned half-way: each one is a
transaction anyway), the web server stops accepting requests, the lease is released, exit 0.
`--http HOST:PORT` serves the tracking/unsubscribe/events web app (uvicorn) in the same process.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from ..config import require_real_secrets
from ..errors import NurtureError
from ..workspace import Workspace
from .scheduler import NurtureScheduler

#: With the web app served here its tracking writer process applies pending effects within ms: a tick gives it
#: this long before applying them itself (which took a third of this process's interpreter time under load).
APPLIER_GRACE_SECONDS = 0.5


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
        sched.applier_grace = APPLIER_GRACE_SECONDS

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

    config = uvicorn.Config(create_app(ws, deployed=True), host=host, port=port, log_config=None, access_log=False,
                            lifespan="on")
    return uvicorn.Server(config)
