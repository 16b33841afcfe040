"""Issue 20 item 8: a process restarted on the same host takes over its killed predecessor's leader lease
and re-sends the outbox rows it left `sending` at once (same Message-ID), not after 15 s / 600 s."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from mail_support import add_lead, save_template
from sqlalchemy import insert, select

from nurture_tui.engine import lease as lease_mod
from nurture_tui.engine.lease import Holder, acquire, holder_is_dead, make_holder
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.mail.dispatch import Dispatcher
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lease, outbox
from nurture_tui.workspace import Workspace


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _holder_with_pid(pid: int, **change: str) -> str:
    h = Holder.parse(make_holder("scheduler"))
    assert h is not None
    parts = {"kind": h.kind, "host": h.host, "pid": str(pid), "boot": h.boot, "start": h.start,
             "nonce": "deadbeef", **change}
    return ":".join(parts[k] for k in ("kind", "host", "pid", "boot", "start", "nonce"))


def test_only_a_dead_process_on_this_host_and_boot_counts_as_dead() -> None:
    dead = _dead_pid()
    parent = lease_mod._proc_stat(os.getppid())
    assert parent is not None
    assert holder_is_dead(_holder_with_pid(dead))
    assert not holder_is_dead(make_holder())  # this process
    assert not holder_is_dead(_holder_with_pid(os.getpid(), start="1"))  # this pid: never judged dead
    assert not holder_is_dead(_holder_with_pid(os.getppid(), start=parent[1]))  # alive
    assert not holder_is_dead(_holder_with_pid(dead, host="another-host"))
    assert not holder_is_dead(_holder_with_pid(dead, boot="00000000-0000-0000-0000-000000000000"))
    assert not holder_is_dead(f"scheduler:{socket.gethostname()}:{dead}:abcd1234")  # the old format
    # a live pid whose start time differs: the pid was reused by another process, the holder is dead
    assert holder_is_dead(_holder_with_pid(os.getppid(), start=str(int(parent[1]) + 1)))


def test_acquire_takes_a_dead_holders_lease_at_once(workspace: Workspace) -> None:
    far = lease_mod.real_now() + timedelta(hours=1)
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(lease).values(name="scheduler", holder=_holder_with_pid(_dead_pid()), expires_at=far))
        conn.execute(insert(lease).values(name="other", holder=_holder_with_pid(1, host="elsewhere"),
                                          expires_at=far))
    me = make_holder()
    assert acquire(workspace.engine, me, 15)
    assert not acquire(workspace.engine, me, 15, name="other")  # another host: wait for the expiry
    with workspace.engine.connect() as conn:
        assert conn.execute(select(lease.c.holder).where(lease.c.name == "scheduler")).scalar() == me


class StallingRelay:
    """An SMTP server that accepts everything up to the end of DATA and then never answers: the messages
    stay on the wire, as when a process dies mid-send."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.data_ends = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            conn.sendall(b"220 stall ESMTP\r\n")
            for line in f:
                cmd = line.strip().upper()
                if cmd == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    for body in f:
                        if body in (b".\r\n", b".\n"):
                            break
                    self.data_ends += 1
                    threading.Event().wait()  # never answer
                elif cmd == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()
        for c in self._conns:
            c.close()


@pytest.fixture
def stalling() -> Iterator[StallingRelay]:
    relay = StallingRelay()
    yield relay
    relay.close()


def _daemon(url: str, smtp_url: str) -> subprocess.Popen[str]:
    nurture = str(Path(sys.executable).parent / "nurture")
    env = dict(os.environ, NURTURE_MAIL__SMTP_URL=smtp_url, NURTURE_MAIL__RATE_PER_SECOND="1000")
    return subprocess.Popen([nurture, "--db", url, "daemon"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait(cond: Callable[[], bool], timeout: float, proc: subprocess.Popen[str] | None = None) -> float:
    start = time.monotonic()
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"daemon exited: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_restarted_daemon_takes_over_lease_and_in_flight_mail_at_once(workspace: Workspace,
                                                                        stalling: StallingRelay) -> None:
    ws = workspace
    now = ws.clock.now()
    save_template(ws, now, "welcome")
    sends = [SendRequest(add_lead(ws, f"lead{i}@example.com", now), "welcome", None, None, None, "s1", f"k{i}")
             for i in range(12)]
    with write_tx(ws.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(conn, sends, ws.settings, now))

    def rows() -> list[tuple[str, str | None, str]]:
        with ws.engine.connect() as conn:
            return [(r.status, r.claimed_by, r.message_id)
                    for r in conn.execute(select(outbox.c.status, outbox.c.claimed_by, outbox.c.message_id))]

    def leader() -> str | None:
        with ws.engine.connect() as conn:
            return conn.execute(select(lease.c.holder).where(lease.c.name == "scheduler")).scalar()

    first = _daemon(ws.settings.db_url, f"smtp://127.0.0.1:{stalling.port}?timeout=300")
    try:
        _wait(lambda: f":{first.pid}:" in (leader() or ""), 60, first)
        _wait(lambda: all(st == "sending" for st, _, _ in rows()) and stalling.data_ends >= 1, 60, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    left = rows()
    assert {st for st, _, _ in left} == {"sending"}
    assert all(c is not None and f":{first.pid}:" in c for _, c, _ in left)
    ids = sorted(m for _, _, m in left)

    with SmtpSink() as sink:
        second = _daemon(ws.settings.db_url, sink.url)
        try:
            took_lease = _wait(lambda: f":{second.pid}:" in (leader() or ""), 20, second)
            all_sent = _wait(lambda: all(st == "sent" for st, _, _ in rows()), 20, second)
        finally:
            second.send_signal(signal.SIGTERM)
            _out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err[-2000:]
        # the old bounds were a 15 s leader lease and a 600 s send lease
        print(f"lease taken over {took_lease:.2f} s after the restart, all re-sent {all_sent:.2f} s later")
        assert took_lease < 8.0, took_lease
        assert took_lease + all_sent < 12.0, (took_lease, all_sent)
        got = sorted(m.message()["Message-ID"] for m in sink.messages)
    assert got == ids  # each re-sent once, with the Message-ID it had on the wire
    assert "took over the lease of a dead process" in err
    assert "re-sending 12 messages a dead dispatcher left on the wire" in err


def test_rows_of_a_live_or_remote_dispatcher_are_left_alone(workspace: Workspace) -> None:
    ws = workspace
    now = ws.clock.now()
    save_template(ws, now, "welcome")
    sends = [SendRequest(add_lead(ws, f"l{i}@example.com", now), "welcome", None, None, None, "s1", f"k{i}")
             for i in range(3)]
    later = now + timedelta(minutes=10)
    with write_tx(ws.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(conn, sends, ws.settings, now))
        holders = [make_holder("dispatch"), _holder_with_pid(_dead_pid(), host="elsewhere"),
                   _holder_with_pid(_dead_pid())]
        for oid, holder in zip(conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().all(), holders,
                               strict=True):
            conn.execute(outbox.update().where(outbox.c.id == oid)
                         .values(status="sending", next_try_at=later, claimed_by=holder))
    d = Dispatcher(ws)
    try:
        assert d._recover_dead_claims() == 1  # only the dead process on this host
    finally:
        d.close()
    with ws.engine.connect() as conn:
        due = [r.next_try_at for r in conn.execute(select(outbox.c.next_try_at).order_by(outbox.c.id))]
    assert due == [later, later, now]
