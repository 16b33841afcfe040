"""Drive `nurture demo` in a real terminal (tmux): it opens alive (scheduler leader, demo clock), every
screen is reachable by its number key, help and the palette open, and `q` quits with exit code 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCREENS = [("1", "Dashboard", "Leads"), ("2", "Leads", "Email"), ("3", "Segments", "Live count"),
           ("4", "Sequences", "Sequence"), ("5", "Templates", "Template"), ("6", "Leaderboard", "Last engagement"),
           ("7", "MQL queue", "Age"), ("8", "Reports", "time-to-opportunity"), ("9", "Sync & audit", "Audit log")]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait_screen(session: str, *needles: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", session)
        if all(n in screen for n in needles):
            return screen
        time.sleep(0.25)
    raise AssertionError(f"never saw {needles!r}; the terminal showed:\n{screen}")


def _wait_gone(session: str, needle: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while needle in _tmux("capture-pane", "-p", "-t", session):
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} stayed on screen")
        time.sleep(0.25)


def test_demo_in_a_real_terminal(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is required in CI (.ci/run installs it)")
        pytest.skip("tmux not installed")
    session = f"nurture-test-{uuid.uuid4().hex[:8]}"
    exit_file = tmp_path / "exit"
    db = tmp_path / "demo.db"
    # pytest exports COLUMNS/LINES, which Textual would take over the real terminal size
    cmd = (f"cd {Path.cwd()} && unset COLUMNS LINES && NURTURE_DATA_DIR={tmp_path / 'data'} "
           f"NURTURE_CONFIG={tmp_path / 'none.toml'} "
           f"USER=tester TEXTUAL_ANIMATIONS=none {sys.executable} -c 'from nurture_tui.cli import main; main()' "
           f"demo --leads 1500 --db sqlite:///{db}; echo $? > {exit_file}")
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd)
    try:
        _tmux("resize-window", "-t", session, "-x", "160", "-y", "40")  # some tmux versions ignore -x/-y
        first = _wait_screen(session, "Dashboard", "sched leader", "demo ", timeout=120)
        assert "tester (admin)" in first
        clock_before = first.split("demo ")[-1][:16]
        for key, title, body in SCREENS:
            _tmux("send-keys", "-t", session, key)
            _wait_screen(session, f" {title} ", body)
        _tmux("send-keys", "-t", session, "2")
        _wait_screen(session, " Leads ", "leads")
        _tmux("send-keys", "-t", session, "?")
        _wait_screen(session, "Help · Leads", "Enrol")
        _tmux("send-keys", "-t", session, "Escape")
        _wait_gone(session, "Help · Leads")  # ESC and ^P sent together would read as one alt-key sequence
        _tmux("send-keys", "-t", session, "C-p")
        _wait_screen(session, "Search for commands")
        _tmux("send-keys", "-t", session, "Escape")
        _wait_gone(session, "Search for commands")
        later = _wait_screen(session, " Leads ", "demo ")
        assert later.split("demo ")[-1][:16] != clock_before  # the demo clock runs
        _tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 30
        while not exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert exit_file.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
