"""Daemon log format, --http parsing, scheduler jobs and wiring, webhook signatures, CLI errors."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from nurture_tui.engine.daemon import parse_hostport
from nurture_tui.engine.webhooks import backoff, sign
from nurture_tui.errors import NurtureError
from nurture_tui.logs import JsonLineFormatter


def test_json_line_formatter_carries_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    log = logging.getLogger("nurture.test.json")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.info("batch", extra={"steps": 500, "ms": 12.5})
    rec = json.loads(stream.getvalue())
    assert rec["msg"] == "batch" and rec["steps"] == 500 and rec["level"] == "info" and rec["ts"].endswith("+00:00")


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:8080") == ("127.0.0.1", 8080)
    for bad in ("8080", "host:", "host:99999", "host:http"):
        with pytest.raises(NurtureError, match="HOST:PORT"):
            parse_hostport(bad)


def test_scheduler_jobs_are_wired_explicitly_and_extras_passed_in() -> None:
    from nurture_tui.config import Settings
    from nurture_tui.engine.scheduler import Job
    from nurture_tui.wiring import scheduler_jobs

    calls: list[object] = []
    found = {h.name: h for h in scheduler_jobs(Settings(), Job("test-hook", calls.append, 7)).all()}
    assert found["test-hook"].interval_seconds == 7.0
    found["test-hook"].fn("ws")
    assert calls == ["ws"]
    assert "test-hook" not in {h.name for h in scheduler_jobs(Settings()).all()}


def test_the_standard_jobs_are_the_owning_areas_functions() -> None:
    from nurture_tui.config import Settings
    from nurture_tui.mail.dispatch import dispatch_due
    from nurture_tui.salesforce.sync import scheduler_hook as sync_job
    from nurture_tui.scoring.service import decay_job
    from nurture_tui.wiring import scheduler_jobs

    settings = Settings()
    settings.salesforce.sync_interval_seconds = 45
    jobs = scheduler_jobs(settings)
    assert [j.name for j in jobs.all()] == ["dispatch", "sync", "decay"]
    assert jobs.dispatch.fn.func is dispatch_due and jobs.dispatch.fn.keywords == {"limit": 1000}  # type: ignore[attr-defined]
    assert jobs.sync.fn is sync_job and jobs.sync.interval_seconds == 5.0  # ticks; full sync every 45 s
    assert jobs.decay.fn is decay_job and jobs.decay.interval_seconds == 3600.0


def test_the_scheduler_refuses_to_start_without_its_jobs(tmp_path: Path) -> None:
    from nurture_tui.config import load_settings
    from nurture_tui.engine.scheduler import Job, NurtureScheduler, SchedulerJobs
    from nurture_tui.workspace import Workspace

    ws = Workspace.open(load_settings(None, f"sqlite:///{tmp_path / 'w.db'}", data_dir=tmp_path), create=True)
    try:
        noop = Job("noop", lambda _ws: None, 1.0)
        with pytest.raises(TypeError, match="jobs"):
            NurtureScheduler(ws)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="decay"):
            SchedulerJobs(dispatch=noop, sync=Job("sync", lambda _ws: None, 1.0))  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="SchedulerJobs"):
            NurtureScheduler(ws, [noop])  # type: ignore[arg-type]
        twice = SchedulerJobs(dispatch=noop, sync=Job("sync", noop.fn, 1.0), decay=Job("decay", noop.fn, 1.0),
                              extra=(noop,))
        with pytest.raises(ValueError, match="duplicate name"):
            NurtureScheduler(ws, twice)
    finally:
        ws.close()


def test_a_missing_collaborator_is_an_import_error_at_start() -> None:
    """Renaming `mail.dispatch.dispatch_due` must stop the composition root from loading, not stop mail."""
    code = ("import nurture_tui.mail.dispatch as d; del d.dispatch_due\n"
            "try:\n    import nurture_tui.wiring\nexcept ImportError as e:\n    print('ImportError', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError") and "dispatch_due" in out.stdout


def test_webhook_signature_and_backoff() -> None:
    assert sign("k", "1700000000", b"{}") == sign("k", "1700000000", b"{}")
    assert sign("k", "1700000000", b"{}") != sign("k", "1700000001", b"{}")
    assert sign("k", "1", b"x").startswith("sha256=")
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(30).total_seconds() == 6 * 3600


def test_daemon_worker_on_sqlite_is_a_one_line_error(tmp_path: Path) -> None:
    from nurture_tui.store.engine import make_engine
    from nurture_tui.store.models import metadata

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    nurture = str(Path(sys.executable).parent / "nurture")
    proc = subprocess.run([nurture, "--db", url, "daemon", "--worker"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "PostgreSQL" in proc.stderr
