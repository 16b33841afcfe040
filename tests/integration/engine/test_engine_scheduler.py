"""The real scheduler: wake latency, leader election, restart catch-up, webhooks, maintenance."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from nurture_tui.activity import ActivityEvent
from nurture_tui.clock import VirtualClock
from nurture_tui.engine import lease
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.events import record_events
from nurture_tui.engine.maintenance import run_maintenance
from nurture_tui.engine.seeding import make_leads, seed_due
from nurture_tui.engine.seeding import publish_definition as publish
from nurture_tui.engine.webhooks import deliver_due
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, enrollment, outbox, webhook_outbox
from nurture_tui.wiring import build_scheduler
from nurture_tui.workspace import Workspace


def state(ws: Workspace, eid: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(enrollment).where(enrollment.c.id == eid)).one()


def _until(pred: Any, timeout: float, step: float = 0.02) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def live_clock(workspace: Workspace) -> VirtualClock:
    clock = VirtualClock(workspace.clock.now(), speed=1.0)  # runs in real time
    workspace.clock = clock
    return clock


def test_click_moves_lead_within_two_seconds(workspace: Workspace, live_clock: VirtualClock) -> None:
    definition = {"name": "wake", "steps": [
        {"id": "w1", "wait_for": {"events": [{"kind": "click"}], "window": "5d"},
         "yes": [{"id": "y", "wait": {"duration": "1d"}}], "no": [{"id": "n", "exit": {}}]},
    ]}
    now = live_clock.now()
    with write_tx(workspace.engine) as conn:
        publish(conn, definition, now)
        (lid,) = make_leads(conn, 1, now)
        eid = enroll_lead(conn, lid, "wake", now)
    sched = build_scheduler(workspace)
    sched.start()
    try:
        assert sched.state()["role"] == "leader"
        _until(lambda: state(workspace, eid).node_id == "w1" and state(workspace, eid).status == "waiting", 5)
        with write_tx(workspace.engine) as conn:
            record_events(conn, [ActivityEvent(lead_id=lid, kind="click", url="https://x.test/")],
                          live_clock.now(), workspace.settings)
        latency = _until(lambda: state(workspace, eid).node_id == "y", 2.0)
        assert latency <= 2.0
    finally:
        sched.stop()
    assert lease.current(workspace.engine) is None  # released on stop


def test_one_leader_viewer_takes_over(workspace: Workspace) -> None:
    workspace.settings.engine.lease_seconds = 1.5
    a = build_scheduler(workspace)
    b = build_scheduler(workspace)
    a.start()
    b.start()
    try:
        assert (a.role, b.role) == ("leader", "viewer")
        assert b.state()["holder"] == a.holder
        a.stop()
        _until(lambda: b.role == "leader", 5)
    finally:
        a.stop()
        b.stop()


def test_worker_refused_on_sqlite(sqlite_workspace: Workspace) -> None:
    from nurture_tui.errors import NurtureError

    with pytest.raises(NurtureError, match="PostgreSQL"):
        build_scheduler(sqlite_workspace, worker=True)


@pytest.mark.slow
def test_restart_catch_up_100k_in_order(sqlite_workspace: Workspace) -> None:
    ws = sqlite_workspace
    now = ws.clock.now()
    n = 100_000
    dues = seed_due(ws.engine, n, now, spread=timedelta(days=2))  # "downtime": due over the last two days
    sched = build_scheduler(ws)
    sched.start()
    try:
        def drained() -> bool:
            with ws.engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(enrollment)
                                    .where(enrollment.c.node_id == "s1")).scalar_one() == 0
        _until(drained, 400, step=0.5)
    finally:
        sched.stop()
    with ws.engine.connect() as conn:
        order = conn.execute(select(outbox.c.enrollment_id).order_by(outbox.c.id)).scalars().all()
        sent = conn.execute(select(func.count()).select_from(activity).where(activity.c.kind == "sent")).scalar_one()
    assert len(order) == n and len(set(order)) == n and sent == n  # none dropped, none repeated
    due_seq = [dues[e] for e in order]
    assert all(a <= b for a, b in itertools.pairwise(due_seq))  # oldest due first


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((dict(self.headers), body))
        status = 500 if len(_Hook.received) <= _Hook.fail_first else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[str]:
    _Hook.received = []
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/hook"
    srv.shutdown()
    srv.server_close()


def test_webhook_signed_and_retried(workspace: Workspace, hook_server: str) -> None:
    from nurture_tui.engine.advance import run_due

    clock = workspace.clock
    assert isinstance(clock, VirtualClock)
    now = clock.now()
    with write_tx(workspace.engine) as conn:
        publish(conn, {"name": "hook", "steps": [{"id": "h", "action": {"type": "webhook", "url": hook_server}}]},
                now)
        (lid,) = make_leads(conn, 1, now)
        enroll_lead(conn, lid, "hook", now)
    run_due(workspace.engine, clock.now, workspace.settings)
    first = deliver_due(workspace)
    assert (first.sent, first.retried) == (0, 1)
    assert deliver_due(workspace).sent == 0  # not due again yet
    clock.advance(timedelta(minutes=1))
    assert deliver_due(workspace).sent == 1
    headers, body = _Hook.received[-1]
    secret = workspace.settings.mail.secret_key.get_secret_value().encode()
    expected = hmac.new(secret, headers["X-Nurture-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Nurture-Signature"] == f"sha256={expected}"
    assert json.loads(body)["lead_id"] == lid
    assert headers["Idempotency-Key"] == _Hook.received[0][0]["Idempotency-Key"]
    with workspace.engine.connect() as conn:
        row = conn.execute(select(webhook_outbox.c.status, webhook_outbox.c.attempts)).one()
    assert tuple(row) == ("sent", 2)


def test_maintenance_prunes_old_activity(workspace: Workspace) -> None:
    now = workspace.clock.now()
    workspace.settings.engine.activity_retention_days = 30
    with write_tx(workspace.engine) as conn:
        (lid,) = make_leads(conn, 1, now)
        record_events(conn, [ActivityEvent(lead_id=lid, kind="page_view", at=now - timedelta(days=40)),
                             ActivityEvent(lead_id=lid, kind="page_view", at=now - timedelta(days=10))],
                      now, workspace.settings)
    res = run_maintenance(workspace)
    assert res.pruned == 1
    assert (res.checkpoint.startswith("PASSIVE")) == workspace.is_sqlite
