"""docs/keymap.md is generated from the live bindings; every binding has a unique, stable id."""

from __future__ import annotations

from pathlib import Path

from nurture_tui.tui.app import NurtureApp
from nurture_tui.tui.keymap_doc import collect_bindings, render_keymap

ROOT = Path(__file__).resolve().parents[2]


def test_keymap_doc_matches_the_bindings() -> None:
    committed = (ROOT / "docs" / "keymap.md").read_text()
    assert committed == render_keymap(NurtureApp), \
        "docs/keymap.md is stale: run `.venv/bin/python scripts/gen_keymap.py`"


def test_every_binding_has_an_id_unique_within_its_scope() -> None:
    seen: dict[str, set[str]] = {}
    for scope, binding in collect_bindings(NurtureApp):
        assert binding.id, f"{scope}: binding {binding.key!r} has no id"
        ids = seen.setdefault(scope, set())
        assert binding.id not in ids, f"{scope}: duplicate binding id {binding.id}"
        ids.add(binding.id)


def test_core_read_models_do_not_import_textual() -> None:
    import subprocess
    import sys

    code = ("import sys, nurture_tui.leads.queries, nurture_tui.leads.bulk, nurture_tui.reports.dashboard, "
            "nurture_tui.console.facade, nurture_tui.console.leads, nurture_tui.console.leaderboard, "
            "nurture_tui.console.mql, nurture_tui.console.sync, nurture_tui.console.segments, "
            "nurture_tui.console.sequences, nurture_tui.console.templates, nurture_tui.console.reports, "
            "nurture_tui.console.runtime, nurture_tui.bench.tui; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_first_screen_imports_only_what_it_draws() -> None:
    """The start-up budget (docs/architecture.md): the scheduler, Salesforce client, Jinja, plotext,
    Starlette and Alembic load after the first screen, not on the way to it."""
    import subprocess
    import sys

    code = ("import sys; from nurture_tui import cli; cli._register(); "
            "import nurture_tui.tui.app, nurture_tui.tui.screens.leads, nurture_tui.tui.screens.dashboard; "
            "print(sorted(m for m in ('jinja2', 'apscheduler', 'plotext', 'textual_plotext', 'starlette', "
            "'uvicorn', 'simple_salesforce', 'alembic', 'aiosmtpd', 'holidays') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
