"""Issue 21: the tracking writer in a process of its own (`mail.tracking_writer = "process"`, what `nurture
daemon --http` runs): hits answered from the web process's journal are committed by the child, and a child
that dies is replaced and sent the journal again — every answered hit is stored once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from nurture_tui.mail.tokens import TokenSigner
from nurture_tui.store.tables import activity_pending
from nurture_tui.web.app import hit_writer
from nurture_tui.web.server import WebServer
from nurture_tui.workspace import Workspace

from .web_support import sent_messages, stored_agents

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari"


async def _fire(urls: list[tuple[str, str]], connections: int, on_answer: object = None) -> list[tuple[str, int]]:
    answered: list[tuple[str, int]] = []
    queue = list(reversed(urls))

    async def worker() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            while queue:
                url, ua = queue.pop()
                r = await client.get(url, headers={"user-agent": ua}, follow_redirects=False)
                answered.append((ua, r.status_code))
                if callable(on_answer):
                    on_answer(len(answered))

    await asyncio.gather(*(worker() for _ in range(connections)))
    return answered



def test_a_dead_writer_process_is_replaced_and_nothing_is_lost_or_doubled(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace
    monkeypatch.setattr(ws.settings.mail, "tracking_writer", "process")
    msgs = sent_messages(ws, 40)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    later = ws.clock.now() + timedelta(days=30)
    with WebServer(ws, "127.0.0.1", 0) as srv:
        writer = hit_writer(srv.app)
        assert writer is not None and writer.process_pid is not None
        first_pid = writer.process_pid
        urls = [(f"{srv.url}/o/{signer.sign('open', lid, ref, later)}.gif" if i % 2 else
                 f"{srv.url}/c/{signer.sign('click', lid, ref, later, 'https://example.com/x')}", f"{BROWSER} hit-{i}")
                for i, (lid, ref) in enumerate(msgs * 40)]
        killed = threading.Event()

        def kill_mid_load(n: int) -> None:
            if n >= 400 and not killed.is_set():
                killed.set()
                os.kill(first_pid, signal.SIGKILL)

        answered = asyncio.run(_fire(urls, 16, kill_mid_load))
        assert writer.wait_committed(60)
        assert writer.process_pid != first_pid  # replaced
    assert killed.is_set()
    assert sorted(status for _, status in answered) == sorted(200 if "/o/" in u else 302 for u, _ in urls)
    stored = stored_agents(ws)
    assert sorted(stored) == sorted(ua for ua, _ in ((ua, u) for u, ua in urls))  # every hit, once
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(activity_pending)).scalar_one() == 0


def test_the_writer_process_commits_and_the_server_stops_cleanly(
        workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean stop commits everything, applies every effect and removes the journal segment."""
    ws = workspace
    monkeypatch.setattr(ws.settings.mail, "tracking_writer", "process")
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("open", lid, ref, ws.clock.now() + timedelta(days=30))
    with WebServer(ws, "127.0.0.1", 0) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        for n in range(20):
            assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} {n}"}).status_code == 200
        writer = hit_writer(srv.app)
        assert writer is not None and writer.wait_committed(30)
        assert sorted(stored_agents(ws)) == sorted(f"{BROWSER} {n}" for n in range(20))
        directory = writer.journal_dir
    assert not list(directory.glob("*.jnl"))
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(activity_pending)).scalar_one() == 0


def test_the_daemon_and_its_writer_process_stop_cleanly_on_a_process_group_sigterm(workspace: Workspace) -> None:
    """A service manager (or Ctrl-C) signals the whole process group: the writer process leaves its stop to
    the daemon, which commits everything through it and exits 0 — no writer restart on the way out."""
    ws = workspace
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("open", lid, ref, datetime.now(UTC) + timedelta(days=30))  # the daemon's clock
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nurture = str(Path(sys.executable).parent / "nurture")
    proc = subprocess.Popen([nurture, "--db", ws.settings.db_url, "daemon", "--http", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the daemon did not come up"
            time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for n in range(30):
                assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} {n}"}).status_code == 200
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    logs = [json.loads(line)["msg"] for line in err.splitlines() if line.startswith("{")]
    assert "tracking writer process closed" in logs
    assert "tracking writer process died, starting another" not in logs, err[-3000:]
    assert sorted(stored_agents(ws)) == sorted(f"{BROWSER} {n}" for n in range(30))
