"""The console in a browser: `nurture serve --user rita` on loopback, headless Chromium (Playwright driving
the system `chromium`) opens the page, `7` opens the MQL queue, which shows rita's MQL only (she is a rep),
`a` accepts it by keyboard, and the store has it accepted — by rita, audited.

`.ci/run` installs Chromium (Debian `chromium`) and Playwright (the `dev` extra); the test is skipped only
when no Chromium binary can be found at all."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nurture_tui.config import Settings
from nurture_tui.store.tables import audit, mql
from nurture_tui.workspace import Workspace
from tests.tui.tui_support import seed

CHROMIUM = next((p for p in (os.environ.get("NURTURE_TEST_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), shutil.which("google-chrome")) if p), None)
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the dev extra")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (.ci/run installs Debian's)"),
              pytest.mark.timeout(180)]

RITA_MQL, OTHER_MQL = 1, 2  # seed(): MQL 1 is rita's (lead 8), MQL 2 alice's (lead 9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def workspace_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    ws = Workspace.open(Settings(db_url=url, data_dir=tmp_path / "data"), create=True)
    seed(ws)
    ws.close()
    yield url


@pytest.fixture
def served(workspace_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "nurture_tui", "--db", workspace_url, "serve", "--host",
                             "127.0.0.1", "--port", str(port), "--user", "rita"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TEXTUAL_ANIMATIONS": "none"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("nurture serve did not start:\n"
                                         + (tmp_path / "serve.log").read_text()) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _status(url: str, mql_id: int) -> str:
    ws = Workspace.open(Settings(db_url=url))
    try:
        with ws.engine.connect() as conn:
            return str(conn.execute(select(mql.c.status).where(mql.c.id == mql_id)).scalar_one())
    finally:
        ws.close()


class TerminalOutput:
    """What the served app wrote to the page's terminal (the websocket's binary frames), escape sequences
    removed: the page draws it on a canvas, so the text is read where it arrives."""

    ESCAPES = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")

    def __init__(self) -> None:
        self.raw = bytearray()

    def attach(self, socket: Any) -> None:
        socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.raw += payload

    @property
    def text(self) -> str:
        return self.ESCAPES.sub("", self.raw.decode("utf-8", errors="replace"))

    def wait_for(self, page: Any, needle: str, *, after: int = 0, timeout: float = 30.0) -> int:
        """Wait until `needle` is written after text position `after`; returns where the text ends now."""
        deadline = time.monotonic() + timeout
        while needle not in self.text[after:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared; the terminal got:\n{self.text[after:][-3000:]}")
            page.wait_for_timeout(100)
        return len(self.text)


def test_rep_accepts_an_mql_in_the_browser(served: str, workspace_url: str) -> None:
    out = TerminalOutput()
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("websocket", out.attach)
            page.goto(served)
            seen = out.wait_for(page, "Dashboard", timeout=60)
            page.locator(".xterm-helper-textarea").focus()
            page.keyboard.press("7")
            seen = out.wait_for(page, "MQL queue", after=seen)
            out.wait_for(page, "Ivan Gray", after=seen)  # lead 8: rita's MQL
            assert "Jo Diaz" not in out.text[seen:]  # lead 9: alice's MQL is not in a rep's queue
            page.keyboard.press("a")
            out.wait_for(page, "accepted", after=seen)
        finally:
            browser.close()
    deadline = time.monotonic() + 10
    while _status(workspace_url, RITA_MQL) != "accepted" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _status(workspace_url, RITA_MQL) == "accepted"
    assert _status(workspace_url, OTHER_MQL) == "new"
    ws = Workspace.open(Settings(db_url=workspace_url))
    try:
        with ws.engine.connect() as conn:
            who = conn.execute(select(audit.c.user).where(audit.c.entity == "mql", audit.c.entity_id == "1")).scalars()
            assert "rita" in list(who)
    finally:
        ws.close()
