"""Issue 20 item 10: a plain install (no dev extras) has everything the program imports at run time.

Installing into a throwaway venv takes ~50 s here, too slow for every CI run, so this builds the same
environment from what is already installed: the dependency closure of `[project].dependencies` in
pyproject.toml (read from the file, markers and extras evaluated) is linked into an empty directory, and
a fresh interpreter started with `-I -S` (no site-packages, no PYTHON* variables) sees only that directory
and `nurture_tui`. In it:

- every import statement in `nurture_tui` — module level *and* inside functions (the webhook job imported
  `httpx`, a dev-only package, only when it ran) — must resolve;
- `nurture init` and `nurture daemon --http …` run for a few seconds (past the first webhook job) and stop
  on SIGINT with no traceback and no error logged.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nurture_tui"
DAEMON_SECONDS = 7.0  # the webhook job first runs 5 s after start (engine/scheduler.py WEBHOOK_SECONDS)


def _closure() -> dict[str, metadata.Distribution]:
    declared = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [r for r in declared if r.marker is None or r.marker.evaluate()]
    while todo:
        req = todo.pop()
        dist = metadata.distribution(req.name)  # PackageNotFoundError: declared but not installed
        key = (dist.metadata["Name"] or req.name).lower().replace("_", "-")
        found[key] = dist
        if (key, frozenset(req.extras)) in seen:
            continue
        seen.add((key, frozenset(req.extras)))
        envs = [{"extra": e} for e in (*req.extras, "")]
        for spec in dist.requires or []:
            sub = Requirement(spec)
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append(sub)
    return found


def _runtime_site(tmp: Path) -> Path:
    site = tmp / "site"
    site.mkdir()
    for dist in _closure().values():
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth") or (site / top).exists():
                continue
            src = Path(str(dist.locate_file(top)))
            if src.exists():
                (site / top).symlink_to(src)
    (site / "nurture_tui").symlink_to(PACKAGE)
    return site


def _imported_top_levels() -> dict[str, str]:
    """Every absolute import in nurture_tui (function-level ones too) → one place it is imported."""
    names: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations/versions" in path.as_posix():
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    else [])
            for mod in mods:
                top = mod.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("nurture_tui", "__future__"):
                    names.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return names


def _isolated(site: Path, code: str, **kw):
    boot = f"import sys; sys.path.insert(0, {str(site)!r}); " + code
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NURTURE_"))}
    env.update(kw.pop("env", {}))
    return [sys.executable, "-I", "-S", "-c", boot], env


def test_every_import_resolves_with_only_the_runtime_dependencies(tmp_path: Path) -> None:
    site = _runtime_site(tmp_path)
    imports = _imported_top_levels()
    assert "httpx" in imports and "sqlalchemy" in imports  # the scan sees function-level imports
    code = ("import importlib.util, json; "
            f"names = {sorted(imports)!r}; "
            "print(json.dumps([n for n in names if importlib.util.find_spec(n) is None]))")
    argv, env = _isolated(site, code)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    missing = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not missing, "imported but not a runtime dependency: " + ", ".join(f"{n} ({imports[n]})" for n in missing)
    # and the isolation is real: a dev-only package is not importable there
    argv, env = _isolated(site, "import pytest")
    assert subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_daemon_runs_without_dev_packages_and_without_a_traceback(tmp_path: Path) -> None:
    site = _runtime_site(tmp_path)
    db = f"sqlite:///{tmp_path / 'ws.db'}"
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "NURTURE_MAIL__SECRET_KEY": os.urandom(24).hex(),
           "NURTURE_MAIL__EVENTS_API_TOKEN": os.urandom(24).hex()}
    run = "from nurture_tui.cli import main; main(sys.argv[1:])"
    argv, full_env = _isolated(site, run, env=env)
    init = subprocess.run([*argv, "init", "--db", db], env=full_env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    daemon = subprocess.Popen([*argv, "daemon", "--db", db, "--http", f"127.0.0.1:{_free_port()}"], env=full_env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(DAEMON_SECONDS)  # clock-ok: the daemon runs in real time
        assert daemon.poll() is None, daemon.communicate()[1]
        daemon.send_signal(signal.SIGINT)
        out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out, err
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e.get("msg") == "scheduler started" for e in logged), err
    assert any(e.get("msg") == "daemon stopped" for e in logged), err
    assert [e for e in logged if e.get("level") in ("error", "critical")] == []
    assert [e for e in logged if e.get("level") == "warning" and "failed" in str(e.get("msg"))] == []
