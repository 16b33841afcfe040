"""Issue 21: opens and clicks are answered once they are in the process's tracking journal
(`mail.tracking_ack = "journal"`, web/journal.py) and committed just after; the journal is replayed by the
next writer after a crash, exactly from where the database says the last commit ended."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from nurture_tui.mail.tokens import TokenData, TokenSigner
from nurture_tui.store import meta
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity
from nurture_tui.web import journal
from nurture_tui.web.app import hit_writer
from nurture_tui.web.ingest import HitWriter
from nurture_tui.web.server import WebServer
from nurture_tui.workspace import Workspace

from .web_support import hold_write_lock, sent_messages, stored_agents

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari"



def _journal_keys(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(meta._META)
                                .where(meta._META.c.key.like(journal.KEY_PREFIX + "%"))).scalar_one())


def test_a_crashed_writers_segment_is_replayed_from_its_checkpoint(workspace: Workspace) -> None:
    """A segment left by a dead process: hits after the stored checkpoint are committed once, a torn last
    line is skipped, and the segment and its checkpoint are removed."""
    ws = workspace
    msgs = sent_messages(ws, 10)
    directory = journal.journal_dir(ws.settings.data_dir, ws.engine)
    directory.mkdir(parents=True)
    segment = "1-999999.jnl"
    now = ws.clock.now()
    later = now + timedelta(days=30)
    lines = [journal.encode(seq, TokenData("open", lid, ref, later, ""), f"{BROWSER} j-{seq}", "10.0.0.1", "GET", now)
             for seq, (lid, ref) in enumerate(msgs, start=1)]
    (directory / segment).write_bytes(b"".join(lines) + b'[11,"open",1,"jref')  # torn: the crash mid-write
    with write_tx(ws.engine) as conn:  # the first four were committed before the crash
        journal.store_checkpoints(conn, {segment: 4})
    writer = HitWriter(ws)
    writer.close()
    assert writer.recovered == 6
    assert sorted(stored_agents(ws)) == sorted(f"{BROWSER} j-{seq}" for seq in range(5, 11))
    assert not (directory / segment).exists()
    assert _journal_keys(ws) == 0


def test_a_live_writers_segment_is_not_replayed(workspace: Workspace) -> None:
    """Another process's segment (its lock is held) is left to it."""
    ws = workspace
    (lid, ref), = sent_messages(ws, 1)
    got: list[object] = []
    directory = journal.journal_dir(ws.settings.data_dir, ws.engine)
    live = journal.Journal(directory, fsync=False, flushed=lambda items, _lines, _segment: got.extend(items))
    now = ws.clock.now()
    data = TokenData("open", lid, ref, now + timedelta(days=1), "")
    live.append(lambda seg, seq: (journal.encode(seq, data, BROWSER, None, "GET", now), seq))
    live.close()
    assert got == [1]
    writer = HitWriter(ws)
    writer.close()
    assert writer.recovered == 0 and stored_agents(ws) == []
    assert (directory / live.segment).exists()
    live.finish()


def test_rotated_segments_are_removed_once_committed(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace
    monkeypatch.setattr(journal, "ROTATE_BYTES", 2_000)  # a new segment every ~6 hits
    msgs = sent_messages(ws, 20)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    later = datetime.now(UTC) + timedelta(days=30)  # the server verifies against the workspace clock
    later = max(later, ws.clock.now() + timedelta(days=30))
    with WebServer(ws, "127.0.0.1", 0) as srv:
        urls = [f"{srv.url}/o/{signer.sign('open', lid, ref, later)}.gif" for lid, ref in msgs * 10]

        async def fire() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                out = []
                for i, url in enumerate(urls):
                    out.append((await client.get(url, headers={"user-agent": f"{BROWSER} r-{i}"})).status_code)
                return out

        statuses = asyncio.run(fire())
        writer = srv.app.hit_writer  # type: ignore[attr-defined]
    assert statuses == [200] * 200
    assert writer.ack == "journal" and writer._journal is not None and writer._journal.flushes >= 200
    assert sorted(stored_agents(ws)) == sorted(f"{BROWSER} r-{i}" for i in range(200))
    assert not list(writer.journal_dir.glob("*.jnl"))
    assert _journal_keys(ws) == 0


def test_an_open_is_answered_while_the_database_is_locked(sqlite_workspace: Workspace) -> None:
    """The answer waits for the journal, not the database: with another process holding SQLite's write
    lock the pixel is served at once, and the hit is committed when the lock is released."""
    ws = sqlite_workspace
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("open", lid, ref, ws.clock.now() + timedelta(days=30))
    with WebServer(ws, "127.0.0.1", 0) as srv:
        released, releaser = hold_write_lock(ws, 1.5)
        t0 = time.monotonic()
        r = httpx.get(f"{srv.url}/o/{token}.gif", headers={"user-agent": BROWSER}, timeout=30)
        answered_in = time.monotonic() - t0
        assert r.status_code == 200 and r.content.startswith(b"GIF89a")
        assert not released.is_set(), f"answered only after the lock was released ({answered_in:.2f} s)"
        releaser.join()
    assert stored_agents(ws) == [BROWSER]


def test_commit_ack_answers_after_the_commit(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mail.tracking_ack = "commit"`: no journal; the hit is in the database when the answer comes."""
    ws = workspace
    monkeypatch.setattr(ws.settings.mail, "tracking_ack", "commit")
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("click", lid, ref, ws.clock.now() + timedelta(days=30), "https://example.com/x")
    with WebServer(ws, "127.0.0.1", 0) as srv:
        r = httpx.get(f"{srv.url}/c/{token}", headers={"user-agent": BROWSER}, timeout=30)
        assert r.status_code == 302 and r.headers["location"] == "https://example.com/x"
        assert stored_agents(ws) == [BROWSER]  # before the server stops
        writer = srv.app.hit_writer  # type: ignore[attr-defined]
    assert writer._journal is None
    assert not writer.journal_dir.exists() or not list(writer.journal_dir.glob("*.jnl"))
    assert os.environ.get("NURTURE_MAIL__TRACKING_ACK") is None


def test_a_page_view_beacon_records_the_visit_tokens_lead(workspace: Workspace,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With `mail.page_tracking_param`, a click lands with the lead's visit token, and the landing site's
    beacon `GET /v/<token>.gif?u=<page>` records a page view of that lead; a missing, non-http or overlong
    page URL, or another kind of token, is refused."""
    ws = workspace
    monkeypatch.setattr(ws.settings.mail, "page_tracking_param", "nt")
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    later = ws.clock.now() + timedelta(days=30)
    click = signer.sign("click", lid, ref, later, "https://example.com/guide?a=1#top")
    with WebServer(ws, "127.0.0.1", 0) as srv, httpx.Client(base_url=srv.url, timeout=10) as http:
        landed = http.get(f"/c/{click}", headers={"user-agent": BROWSER}, follow_redirects=False)
        assert landed.status_code == 302
        location = landed.headers["location"]
        assert location.startswith("https://example.com/guide?a=1&nt=") and location.endswith("#top")
        visit = location.split("nt=")[1].split("#")[0]
        page = http.get(f"/v/{visit}.gif", params={"u": "https://example.com/pricing"},
                        headers={"user-agent": BROWSER})
        assert page.status_code == 200 and page.content.startswith(b"GIF89a")
        assert http.get(f"/v/{visit}.gif").status_code == 400
        assert http.get(f"/v/{visit}.gif", params={"u": "javascript:alert(1)"}).status_code == 400
        assert http.get(f"/v/{visit}.gif", params={"u": "https://x.example/" + "a" * 2100}).status_code == 400
        opened = signer.sign("open", lid, ref, later)
        assert http.get(f"/v/{opened}.gif", params={"u": "https://example.com/"}).status_code == 400
    with ws.engine.connect() as conn:
        rows = conn.execute(select(activity.c.kind, activity.c.url, activity.c.outbox_id, activity.c.lead_id)
                            .order_by(activity.c.id)).all()
    assert [(r.kind, r.lead_id) for r in rows] == [("click", lid), ("page_view", lid)]
    assert rows[1].url == "https://example.com/pricing" and rows[1].outbox_id is None


def test_answers_wait_for_the_commit_once_the_writer_is_too_far_behind(
        sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal runs ahead of the database by at most LAG_LIMIT_SECONDS: with the writer held up (another
    process holds SQLite's write lock) the first open is answered at once, one arriving after the limit
    only when its commit is done."""
    from nurture_tui.web import ingest

    monkeypatch.setattr(ingest, "LAG_LIMIT_SECONDS", 0.3)
    ws = sqlite_workspace
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("open", lid, ref, ws.clock.now() + timedelta(days=30))
    with WebServer(ws, "127.0.0.1", 0) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        released, releaser = hold_write_lock(ws, 2.0)
        assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} 1"}).status_code == 200
        assert not released.is_set()
        time.sleep(0.6)  # the first hit has now waited longer than the limit
        assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} 2"}).status_code == 200
        assert released.is_set(), "the second answer should have waited for its commit"
        releaser.join()
    assert sorted(stored_agents(ws)) == [f"{BROWSER} 1", f"{BROWSER} 2"]


def test_answers_are_paced_while_the_writer_is_behind(
        sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PACE_FROM_SECONDS of lag a flushed answer is held for the pacer, which releases held answers
    at the writer's commit rate: with the writer stopped (another process holds SQLite's write lock) that
    is none, until the commits catch up; then answers go out at their flush again."""
    from nurture_tui.web import ingest

    monkeypatch.setattr(ingest, "PACE_FROM_SECONDS", 0.2)
    monkeypatch.setattr(ingest, "LAG_LIMIT_SECONDS", 30.0)  # the pacer's doing, not the hard limit's
    ws = sqlite_workspace
    (lid, ref), = sent_messages(ws, 1)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    token = signer.sign("open", lid, ref, ws.clock.now() + timedelta(days=30))
    with WebServer(ws, "127.0.0.1", 0) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        released, releaser = hold_write_lock(ws, 1.5)
        assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} 1"}).status_code == 200
        assert not released.is_set()
        time.sleep(0.4)  # the first hit is now older than the pace threshold
        assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} 2"}).status_code == 200
        assert released.is_set(), "the second answer should have been held until the writer caught up"
        releaser.join()
        started = time.perf_counter()
        assert http.get(f"/o/{token}.gif", headers={"user-agent": f"{BROWSER} 3"}).status_code == 200
        assert time.perf_counter() - started < 1.0
        writer = hit_writer(srv.app)
        assert writer is not None and writer.paced == 1
    assert sorted(stored_agents(ws)) == [f"{BROWSER} {n}" for n in (1, 2, 3)]
