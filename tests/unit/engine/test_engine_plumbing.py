"""Daemon log format, --http parsing, hook registry, webhook signatures, CLI errors."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from nurture_tui.engine import hooks
from nurture_tui.engine.daemon import JsonLineFormatter, parse_hostport
from nurture_tui.engine.webhooks import backoff, sign
from nurture_tui.errors import NurtureError


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


def test_hook_registry_and_well_known_lookup() -> None:
    from nurture_tui.config import Settings

    calls: list[object] = []
    hooks.register("test-hook", calls.append, 7)
    try:
        found = {h.name: h for h in hooks.active_hooks(Settings())}
        assert found["test-hook"].interval_seconds == 7.0
        found["test-hook"].fn("ws")
        assert calls == ["ws"]
    finally:
        hooks.unregister("test-hook")
    assert "test-hook" not in {h.name for h in hooks.active_hooks(Settings())}


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
