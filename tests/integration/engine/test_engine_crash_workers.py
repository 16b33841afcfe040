"""Crash safety (SIGKILL mid-run), PostgreSQL claim workers, and the daemon process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import distinct, func, select

from nurture_tui.engine.advance import run_due
from nurture_tui.engine.node_stats import node_counts
from nurture_tui.engine.seeding import seed_due
from nurture_tui.store.tables import activity, enrollment, lease, outbox
from nurture_tui.workspace import Workspace

RUNNER = """
import sys
from nurture_tui.config import load_settings
from nurture_tui.engine.advance import run_due
from nurture_tui.workspace import Workspace
ws = Workspace.open(load_settings(None, sys.argv[1]))
print("started", flush=True)
run_due(ws.engine, ws.clock.now, ws.settings, limit=200)
"""


def _scalar(ws: Workspace, stmt: Any) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _count(ws: Workspace, table: Any, *where: Any) -> int:
    return _scalar(ws, select(func.count()).select_from(table).where(*where))


def _wait_for(pred: Any, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"process exited early ({proc.returncode}): {err}")
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    return env


def test_sigkill_mid_run_then_restart_exactly_once(workspace: Workspace) -> None:
    n = 12_000
    now = workspace.clock.now()
    seed_due(workspace.engine, n, now)
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, workspace.settings.db_url], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _count(workspace, outbox) >= 2_000, 60, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = _count(workspace, outbox)
    assert 2_000 <= done_before < n, "the kill must land mid-run"
    run_due(workspace.engine, workspace.clock.now, workspace.settings, limit=500)  # the restart
    assert _count(workspace, outbox) == n
    assert _scalar(workspace, select(func.count(distinct(outbox.c.enrollment_id)))) == n
    assert _count(workspace, activity, activity.c.kind == "sent") == n
    assert _count(workspace, enrollment, enrollment.c.node_id == "w1", enrollment.c.status == "waiting") == n
    with workspace.engine.connect() as conn:
        counts = node_counts(conn, [1])
    assert counts["s1"].entered == n and counts["s1"].waiting == 0 and counts["w1"].waiting == n


def _daemon(url: str, *args: str) -> subprocess.Popen[str]:
    nurture = str(Path(sys.executable).parent / "nurture")
    return subprocess.Popen([nurture, "--db", url, "daemon", *args],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.mark.pg
@pytest.mark.slow
def test_three_pg_workers_drain_50k_exactly_once(pg_url: str, tmp_path: Path) -> None:
    from nurture_tui.clock import VirtualClock
    from nurture_tui.config import load_settings
    from nurture_tui.store.engine import make_engine
    from nurture_tui.store.models import metadata

    engine = make_engine(pg_url)
    metadata.create_all(engine)
    ws = Workspace(load_settings(None, pg_url, data_dir=tmp_path), engine, VirtualClock())
    n = 50_000
    seed_due(engine, n, ws.clock.now())
    workers = [_daemon(pg_url, "--worker") for _ in range(3)]
    try:
        _wait_for(lambda: _count(ws, enrollment, enrollment.c.node_id == "s1") == 0, 240)
    finally:
        logs = [_stop(p) for p in workers]
    steps = [next(r["steps"] for r in log if r["msg"] == "daemon stopped") for log in logs]
    assert sum(steps) == n  # one send step per enrollment, across the three workers
    assert all(s > 0 for s in steps), steps  # every worker claimed some
    assert _count(ws, outbox) == n
    assert _scalar(ws, select(func.count(distinct(outbox.c.enrollment_id)))) == n
    assert _count(ws, activity, activity.c.kind == "sent") == n
    assert _count(ws, lease) == 0  # workers never take the leader lease
    engine.dispose()


def test_daemon_runs_and_stops_cleanly_on_sigterm(sqlite_workspace: Workspace) -> None:
    ws = sqlite_workspace
    seed_due(ws.engine, 300, ws.clock.now())
    proc = _daemon(ws.settings.db_url)
    try:
        _wait_for(lambda: _count(ws, outbox) == 300, 30, proc)
        assert _count(ws, lease) == 1
    finally:
        logs = _stop(proc)
    msgs = [rec["msg"] for rec in logs]
    assert "daemon starting" in msgs and "daemon stopped" in msgs
    assert {"ts", "level", "logger", "msg"} <= set(logs[0])
    assert logs[-1]["steps"] == 300
    assert _count(ws, lease) == 0  # released on SIGTERM


def test_daemon_http_event_wakes_lead_within_two_seconds(sqlite_workspace: Workspace) -> None:
    """The whole path: `nurture daemon --http` serves the events API; a form post moves a waiting lead."""
    import socket
    import urllib.request
    from datetime import UTC, datetime

    from nurture_tui.engine.enroll import enroll_lead
    from nurture_tui.engine.seeding import make_leads, publish_definition
    from nurture_tui.store.engine import write_tx

    ws = sqlite_workspace
    now = datetime.now(UTC)  # clock-ok: the daemon runs on the system clock
    with write_tx(ws.engine) as conn:
        publish_definition(conn, {"name": "demo-req", "steps": [
            {"id": "w1", "wait_for": {"events": [{"kind": "form"}], "window": "7d"},
             "yes": [{"id": "y", "wait": {"duration": "1d"}}], "no": [{"id": "n", "exit": {}}]}]}, now)
        (lid,) = make_leads(conn, 1, now)
        eid = enroll_lead(conn, lid, "demo-req", now)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _daemon(ws.settings.db_url, "--http", f"127.0.0.1:{port}")

    def node() -> str | None:
        with ws.engine.connect() as conn:
            return conn.execute(select(enrollment.c.node_id).where(enrollment.c.id == eid)).scalar_one()

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
        except OSError:
            return False

    try:
        _wait_for(healthy, 30, proc)
        _wait_for(lambda: node() == "w1" and _count(ws, enrollment, enrollment.c.status == "waiting") == 1, 10, proc)
        token = ws.settings.mail.events_api_token.get_secret_value()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/events", method="POST",
            data=json.dumps({"events": [{"kind": "form", "lead_id": lid}]}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert urllib.request.urlopen(req, timeout=5).status in (200, 201, 202)
        posted = time.monotonic()
        _wait_for(lambda: node() == "y", 2.0, proc)
        assert time.monotonic() - posted <= 2.0
    finally:
        _stop(proc)
