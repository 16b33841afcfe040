"""Helpers for running the `nurture` CLI in tests (in-process and as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nurture_tui.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `nurture ARGS` in-process; returns (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NURTURE_CONFIG=str(tmp_path / "none.toml"), NURTURE_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-m", "nurture_tui", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
