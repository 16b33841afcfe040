"""`nurture serve` and `nurture tui --user` at the command line: who a browser session runs as, what is
refused, and the command each session runs (the browser itself: tests/browser)."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from nurture_tui.commands.common import CliState
from nurture_tui.commands.serve import session_command, user_from_header
from nurture_tui.config import Settings
from nurture_tui.workspace import Workspace
from tests.cli_support import run_cli
from tests.tui.tui_support import seed


@pytest.fixture
def served_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    ws = Workspace.open(Settings(db_url=url, data_dir=tmp_path / "data"), create=True)
    seed(ws)
    ws.close()
    return url


def test_a_session_runs_tui_as_its_user_on_this_workspace(tmp_path: Path) -> None:
    st = CliState(db_url="sqlite:////srv/nurture db.sqlite", config_file=tmp_path / "c.toml")
    argv = shlex.split(session_command(st, "rita", read_only=True))
    assert argv == [sys.executable, "-m", "nurture_tui", "--db", "sqlite:////srv/nurture db.sqlite",
                    "--config", str(tmp_path / "c.toml"), "tui", "--user", "rita", "--read-only"]


def test_only_a_plausible_user_name_is_taken_from_the_header() -> None:
    assert user_from_header({"X-Forwarded-User": " rita "}, "X-Forwarded-User") == "rita"
    assert user_from_header({"X-Forwarded-User": "ana.lopez@example.com"}, "X-Forwarded-User") == \
        "ana.lopez@example.com"
    for bad in ("", "rita; rm -rf /", "$(id)", "a b"):
        assert user_from_header({"X-Forwarded-User": bad}, "X-Forwarded-User") is None
    assert user_from_header({}, "X-Forwarded-User") is None


def test_serve_needs_exactly_one_way_to_name_the_user(capsys: pytest.CaptureFixture[str], served_db: str) -> None:
    code, _out, err = run_cli(capsys, "--db", served_db, "serve")
    assert code == 2 and "exactly one of --user NAME or --user-header HEADER" in err
    code, _out, err = run_cli(capsys, "--db", served_db, "serve", "--user", "rita", "--user-header", "X-User")
    assert code == 2 and err.count("\n") == 1


def test_tui_refuses_a_user_who_is_not_in_the_user_table(capsys: pytest.CaptureFixture[str],
                                                         served_db: str) -> None:
    code, _out, err = run_cli(capsys, "--db", served_db, "tui", "--user", "mallory")
    assert code == 2 and "--user: no nurture user named 'mallory'" in err and "Traceback" not in err


def test_a_websocket_without_the_proxy_header_is_refused(served_db: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "nurture_tui", "--db", served_db, "serve", "--port", str(port),
                             "--user-header", "X-Forwarded-User"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "nurture serve did not start"
                time.sleep(0.2)
        assert page.status_code == 200 and f"ws://127.0.0.1:{port}/ws" in page.text
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        refused = requests.get(f"http://127.0.0.1:{port}/ws", headers=upgrade, timeout=5)
        assert refused.status_code == 403 and "X-Forwarded-User" in refused.text
        forged = requests.get(f"http://127.0.0.1:{port}/ws", timeout=5,
                              headers={**upgrade, "X-Forwarded-User": "rita; id"})
        assert forged.status_code == 403
    finally:
        proc.terminate()
        proc.wait(10)
