"""The core (everything except nurture_tui.tui and nurture_tui.screens) never loads textual or rich.

import-linter checks the static imports; this runs the real imports in a fresh interpreter, which also
catches lazy/dynamic imports made at module import time (and ones pulled in by third-party packages).
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import importlib, json, pkgutil, sys
import nurture_tui
failed = {}
for info in pkgutil.walk_packages(nurture_tui.__path__, "nurture_tui."):
    name = info.name
    if name.startswith(("nurture_tui.tui", "nurture_tui.screens")) or name == "nurture_tui.__main__":
        continue
    if ".migrations.versions" in name or name.endswith(".migrations.env"):
        continue  # Alembic loads these itself, inside a migration context
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
from nurture_tui import cli
cli._register()  # every command module, as `nurture --help` loads them
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(json.dumps({"ui": ui[:20], "failed": failed}))
"""


def test_core_modules_never_load_textual_or_rich() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, result["failed"]
    assert result["ui"] == [], f"core imported UI modules: {result['ui']}"
