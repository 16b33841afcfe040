"""Run the tracking app under uvicorn in a background thread (daemon, demo, tests)."""

from __future__ import annotations

import threading
import time

import uvicorn

from ..errors import NurtureError
from ..workspace import Workspace
from .app import create_app, hit_writer


def parse_listen(value: str, where: str = "--http") -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT', or 'PORT') → (host, port)."""
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise NurtureError(f"{where} {value!r}: expected HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise NurtureError(f"{where} {value!r}: port out of range")
    return host.strip("[]") or "127.0.0.1", number


class WebServer:
    """`WebServer(ws, "127.0.0.1", 0).start()` → serving; `.url`; `.stop()`. Port 0 = a free port."""

    def __init__(self, ws: Workspace, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.app = create_app(ws)
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off", server_header=False)
        self.server = uvicorn.Server(config)
        self.host = host
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> WebServer:
        self._thread = threading.Thread(target=self.server.run, name="nurture-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout  # clock-ok: start-up timeout, not domain time
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:  # clock-ok
                raise NurtureError(f"web app could not listen on {self.host}:{self.server.config.port}")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        writer = hit_writer(self.app)
        if writer is not None:
            writer.close()  # commits what is still queued

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
