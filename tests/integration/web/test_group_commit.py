"""Issue 21: opens, clicks and events-API requests are recorded by a per-process group-commit writer and
answered only once their transaction has committed.

- acknowledged hits survive a SIGKILL of the server (every 2xx/3xx answered is in the database);
- 1,000 concurrent clicks of one lead, committed in a few batches, score as they would one by one
  (capped rules once) and wake the lead's `wait_for` once;
- two server processes on PostgreSQL under load: every hit recorded exactly once.

The SIGKILL and two-server tests run with the writer as a thread of the server and as its own process
(`mail.tracking_writer`; test_writer_process.py kills that process instead).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from nurture_tui.config import load_settings
from nurture_tui.engine.advance import run_batch
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.seeding import publish_definition as publish
from nurture_tui.mail.tokens import TokenSigner
from nurture_tui.scoring.history import history
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, activity_pending, enrollment, lead
from nurture_tui.web.ingest import HitWriter
from nurture_tui.web.server import WebServer
from nurture_tui.web.tracking import Hit, record_hit
from nurture_tui.workspace import Workspace

from .web_support import sent_messages, stored_agents

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari"

# A server process as deployed: SIGTERM stops it cleanly (the journal flushed, everything committed)
SERVE = """
import signal, sys, threading
from nurture_tui.config import load_settings
from nurture_tui.web.server import WebServer
from nurture_tui.workspace import Workspace
ws = Workspace.open(load_settings(None, sys.argv[1]))
srv = WebServer(ws, "127.0.0.1", int(sys.argv[2])).start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print("ready", flush=True)
stop.wait(3600)
srv.stop()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int, writer: str = "auto") -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVE, url, str(port)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "NURTURE_MAIL__TRACKING_WRITER": writer})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


async def _fire(urls: list[tuple[str, str]], connections: int,
                on_answer: Any = None) -> list[tuple[str, int]]:
    """GET each (url, user agent) with `connections` concurrent clients; returns (user agent, status) of the
    requests that were answered (a refused or cut connection is left out)."""
    answered: list[tuple[str, int]] = []
    queue = list(reversed(urls))

    async def worker() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while queue:
                url, ua = queue.pop()
                try:
                    r = await client.get(url, headers={"user-agent": ua}, follow_redirects=False)
                except httpx.HTTPError:
                    continue
                answered.append((ua, r.status_code))
                if on_answer is not None:
                    on_answer(len(answered))

    await asyncio.gather(*(worker() for _ in range(connections)))
    return answered



@pytest.mark.parametrize("writer", ["thread", "process"])
def test_acknowledged_hits_survive_sigkill(workspace: Workspace, tmp_path: Path, writer: str) -> None:
    """Every hit answered before the kill is stored once; on PostgreSQL (effects applied after the answer,
    web/ingest.py) the next writer applies the effects the killed one left pending. With a writer process
    (`mail.tracking_writer`) it is left orphaned by the kill: it exits, and the next writer replays."""
    ws = workspace
    msgs = sent_messages(ws, 50)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    later = datetime.now(UTC) + timedelta(days=30)  # the server runs on the system clock
    port = _free_port()
    proc = _serve(ws.settings.db_url, port, writer)
    base = f"http://127.0.0.1:{port}"
    urls = [(f"{base}/o/{signer.sign('open', lid, ref, later)}.gif" if i % 2 else
             f"{base}/c/{signer.sign('click', lid, ref, later, 'https://example.com/x')}", f"{BROWSER} hit-{i}")
            for i, (lid, ref) in enumerate(msgs * 100)]

    enough = threading.Event()  # kill once 200 hits have been answered: mid-load however slow the machine

    def kill_soon() -> None:
        enough.wait(120)
        os.kill(proc.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    try:
        answered = asyncio.run(_fire(urls, 32, lambda n: n >= 200 and enough.set()))
    finally:
        enough.set()
        killer.join()
        proc.wait(timeout=30)
    acked = {ua for ua, status in answered if status in (200, 302)}
    assert sorted({status for _, status in answered}) in ([200, 302], [200], [302])
    assert 200 <= len(acked) < len(urls), "the kill should land mid-load"
    # a fresh process opens the database as after a crash: starting its writer commits what the killed one
    # answered from its journal but had not committed, and applies what is pending (closing waits for it) —
    # then every acknowledged hit is there, once
    with Workspace.open(load_settings(None, ws.settings.db_url)) as fresh:
        writer = HitWriter(fresh)
        writer.close()
        stored = stored_agents(fresh)
        assert not list(writer.journal_dir.glob("*.jnl"))  # the killed writer's segment, replayed and removed
        with fresh.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(activity_pending)).scalar_one() == 0
            hit_leads = set(conn.execute(select(activity.c.lead_id).where(activity.c.kind.in_(("open", "click"))))
                            .scalars())
            untouched = conn.execute(select(func.count()).select_from(lead).where(
                lead.c.id.in_(hit_leads), lead.c.last_activity_at.is_(None))).scalar_one()
    assert len(stored) == len(set(stored))
    assert acked <= set(stored)
    assert untouched == 0  # every stored hit's effects were applied, before the kill or after


def test_a_thousand_concurrent_clicks_of_one_lead_score_and_wake_once(workspace: Workspace) -> None:
    ws = workspace
    now = ws.clock.now()
    definition = {"name": "wake", "steps": [
        {"id": "w1", "wait_for": {"events": [{"kind": "click"}], "window": "5d"},
         "yes": [{"id": "y", "wait": {"duration": "1d"}}], "no": [{"id": "n", "exit": {}}]},
    ]}
    with write_tx(ws.engine) as conn:
        publish(conn, definition, now)
    (lid, ref), (solo, solo_ref) = sent_messages(ws, 2)
    with write_tx(ws.engine) as conn:
        eid = enroll_lead(conn, lid, "wake", now)
    run_batch(ws.engine, ws.clock.now(), ws.settings, 10)
    with ws.engine.connect() as conn:
        assert conn.execute(select(enrollment.c.status, enrollment.c.node_id)
                            .where(enrollment.c.id == eid)).one() == ("waiting", "w1")
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("click", lid, ref, now + timedelta(days=30), "https://example.com/pricing")
    with WebServer(ws, "127.0.0.1", 0) as srv:
        answered = asyncio.run(_fire([(f"{srv.url}/c/{token}", BROWSER)] * 1000, 64))
        writer = srv.app.hit_writer  # type: ignore[attr-defined]
        writer.wait_committed()  # answered from the journal: their commits may still be on their way
        batches = writer.batches
        # the same 1,000 clicks for another lead, one transaction each
        solo_token = signer.sign("click", solo, solo_ref, now + timedelta(days=30), "https://example.com/pricing")
        for _ in range(1000):
            record_hit(ws, writer, solo_token, "click", Hit(BROWSER, "127.0.0.1"))
        assert writer.batches == batches + 1000
    assert [s for _, s in answered] == [302] * 1000
    assert batches < 500  # they were grouped
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(activity)
                            .where(activity.c.kind == "click", activity.c.lead_id == lid)).scalar_one() == 1000
        # capped per message: "email click" (3) and "pricing page click" (10) once each, as one by one
        assert sorted(c.points for c in history(conn, lid) if c.kind == "rule") == [3, 10]
        assert sorted(c.points for c in history(conn, solo) if c.kind == "rule") == [3, 10]
        scores = dict(conn.execute(select(lead.c.id, lead.c.score).where(lead.c.id.in_((lid, solo)))).all())
        assert scores[lid] == pytest.approx(scores[solo]) and scores[lid] > 0
        wf = conn.execute(select(enrollment.c.wait_for).where(enrollment.c.id == eid)).scalar_one()
        assert wf["outcome"] == "yes"
        first_click = conn.execute(select(func.min(activity.c.id))
                                   .where(activity.c.kind == "click", activity.c.lead_id == lid)).scalar_one()
        assert wf["activity_id"] == first_click
    run_batch(ws.engine, ws.clock.now(), ws.settings, 10)
    with ws.engine.connect() as conn:
        row: Any = conn.execute(select(enrollment).where(enrollment.c.id == eid)).one()
        assert (row.node_id, row.status) == ("y", "waiting")
        assert conn.execute(select(func.count()).select_from(enrollment)).scalar_one() == 1


@pytest.mark.pg
@pytest.mark.parametrize("writer", ["thread", "process"])
def test_two_server_processes_on_postgresql_record_every_hit_once(pg_url: str, tmp_path: Path, writer: str) -> None:
    from nurture_tui.store.engine import make_engine
    from nurture_tui.store.models import metadata

    engine = make_engine(pg_url)
    metadata.create_all(engine)
    engine.dispose()
    ws = Workspace.open(load_settings(None, pg_url, data_dir=tmp_path))
    try:
        msgs = sent_messages(ws, 40)
        signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
        later = datetime.now(UTC) + timedelta(days=30)  # the servers run on the system clock
        ports = [_free_port(), _free_port()]
        procs = [_serve(pg_url, p, writer) for p in ports]
        try:
            urls = []
            for i, (lid, ref) in enumerate(msgs * 30):
                base = f"http://127.0.0.1:{ports[i % 2]}"
                url = (f"{base}/o/{signer.sign('open', lid, ref, later)}.gif" if i % 3 else
                       f"{base}/c/{signer.sign('click', lid, ref, later, 'https://example.com/pricing')}")
                urls.append((url, f"{BROWSER} hit-{i}"))
            answered = asyncio.run(_fire(urls, 48))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
        assert sorted(s for _, s in answered) == sorted(200 if "/o/" in u else 302 for u, _ in urls)
        stored = stored_agents(ws)
        assert sorted(stored) == sorted(ua for _, ua in urls)  # every hit, once
    finally:
        ws.close()
