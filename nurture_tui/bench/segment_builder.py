"""`nurture bench segment-builder --leads 1000000 --json`: editor latency of the segment builder and the
template editor on the demo data set (issue 15).

The data set is `bench segments`' cached demo workspace (built once under benchmarks/work/, 5 activities a
lead by default). A fresh process (`python -m nurture_tui.tui.bench_builder_probe`, headless, 130×40, the
workspace clock at the data set's "now") drives both editors by key events and reports:

- keystroke_p99_ms: key → the widget changed → the next frame painted, over every key typed into the
  condition form (subject picker and value input) and the template editor's HTML TextArea (p99 pooled;
  `keystroke_p99_by_surface` splits it). Reference: the condition value's keys typed into a bare Textual
  `Input` in a minimal app, in its own fresh process.
- count_p95_ms: the last key of an edit in the builder (the `enter` that saves `activity: click at_least 2`
  after `activity: open within 14d`, then `ctrl+r` re-doing it after each `u`) → the screen shows that
  rule's count, painted. It includes the builder's debounce (the issue says "after the last keystroke");
  `count_p95_minus_debounce_ms` takes it off. Reference: the hand-written SQL of `bench segments` for the
  same rule on a raw sqlite3 connection; `console_evaluate_p95_ms` is the console call alone (count +
  sample), no TUI.
- preview_p95_ms: a key typed into the template editor's HTML part → the preview for the chosen lead shows
  that draft, painted (includes the editor's debounce; `preview_p95_minus_debounce_ms` without).
  Reference: the same template rendered with plain Jinja for the same lead's fields (row read on a raw
  sqlite3 connection, templates compiled from source, as an edit requires); `console_preview_p95_ms` is
  `console.templates.preview_for` alone.
Targets (issue 15): keystroke p99 ≤ 50 ms, count p95 ≤ 400 ms, preview p95 ≤ 150 ms.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from .common import percentile
from .segments import BEHAVIOUR, REF_BEHAVIOUR, T_NOW, _sync_indexes, _template_db

NAME = "segment-builder"
TARGETS = {"keystroke_p99_ms": 50.0, "count_p95_ms": 400.0, "preview_p95_ms": 150.0}
#: The template the probe loads into the editor; HTML_TYPED is then typed at the end of its HTML part.
TEMPLATE_SUBJECT = "{{ lead.first_name | default('there') }}, your {{ lead.company }} plan"
TEMPLATE_HTML = ("<p>Hi {{ lead.first_name | default('there') }},</p>\n"
                 "<p>Teams at {{ lead.company }} in {{ lead.country }} use us to ship faster.</p>\n"
                 "<p><a href=\"https://example.com/demo\">Book a demo</a></p>")
HTML_TYPED = ' <p>Thanks {{ lead.first_name }}, see <a href="https://example.com/x">this</a>.</p>'


def _probe(args: list[str]) -> list[dict[str, Any]]:
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    proc = subprocess.run([sys.executable, "-m", "nurture_tui.tui.bench_builder_probe", *args],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        from ..errors import NurtureError

        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)
        raise NurtureError(f"segment-builder probe failed: {tail}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _ms(fn: Any, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def _p(values: list[float], pct: float) -> float:
    return round(percentile(values, pct), 2)


def _preview_lead(raw: sqlite3.Connection) -> int:
    row = raw.execute("SELECT id FROM lead WHERE first_name IS NOT NULL AND company IS NOT NULL "
                      "AND country IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    return int(row[0])


def _headless(url: str, lead_id: int, runs: int) -> dict[str, list[float]]:
    """Our console calls alone (no TUI), same workspace and clock as the probe: the builder's evaluate of
    the behaviour rule and the editor's preview of the final draft for the lead."""
    from ..clock import VirtualClock
    from ..config import load_settings
    from ..console.facade import Console
    from ..console.templates import TemplateDraft
    from ..workspace import Workspace

    ws = Workspace.open(load_settings(None, url), clock=VirtualClock(T_NOW), check_schema=False)
    try:
        console = Console.open(ws)
        lead = console.templates.find_lead(str(lead_id))
        draft = TemplateDraft("bench-builder", TEMPLATE_SUBJECT, TEMPLATE_HTML + HTML_TYPED)
        return {"evaluate": _ms(lambda: console.segments.evaluate(BEHAVIOUR), runs),
                "preview": _ms(lambda: console.templates.preview_for(draft, lead), max(runs, 20))}
    finally:
        ws.close()


def _references(path: Path, lead_id: int, runs: int) -> dict[str, Any]:
    """The count's hand-written SQL on a raw sqlite3 connection, and the preview rendered by plain Jinja."""
    import jinja2

    from ..store.types import to_db

    raw = sqlite3.connect(path)
    raw.execute("PRAGMA cache_size=-65536")
    raw.execute("PRAGMA mmap_size=268435456")
    raw.row_factory = sqlite3.Row
    try:
        params = {"since14": to_db(T_NOW - timedelta(days=14))}
        ref_count = raw.execute(REF_BEHAVIOUR, params).fetchone()[0]
        count_ms = _ms(lambda: raw.execute(REF_BEHAVIOUR, params).fetchone(), runs)
        env = jinja2.Environment(autoescape=True)
        html_src = TEMPLATE_HTML + HTML_TYPED

        def render() -> tuple[str, str]:
            fields = dict(raw.execute("SELECT * FROM lead WHERE id = ?", (lead_id,)).fetchone())
            ctx = {"lead": fields}
            return env.from_string(TEMPLATE_SUBJECT).render(ctx), env.from_string(html_src).render(ctx)

        preview_ms = _ms(render, max(runs, 20))
    finally:
        raw.close()
    return {"count": ref_count, "count_ms": count_ms, "preview_ms": preview_ms}


def run(leads: int, activities: int, seed: int, rounds: int, counts: int, previews: int,
        echo: Any) -> dict[str, Any]:
    path = _template_db(leads, activities, seed, echo)
    _sync_indexes(path, echo)
    url = f"sqlite:///{path}"
    raw = sqlite3.connect(path)
    try:
        lead_id = _preview_lead(raw)
    finally:
        raw.close()

    echo("  driving the builder and the template editor (fresh process)…")
    events = _probe(["--db", url, "--now", T_NOW.isoformat(), "--lead", str(lead_id), "--rounds", str(rounds),
                     "--counts", str(counts), "--previews", str(previews)])
    keys = {e["where"]: e["ms"] for e in events if e.get("event") == "keys"}
    count = next(e for e in events if e.get("event") == "count")
    preview = next(e for e in events if e.get("event") == "preview")
    echo("  the bare-Input reference (fresh process)…")
    ref_keys = next(e for e in _probe(["--reference", "--rounds", str(rounds)])
                    if e.get("event") == "reference_keys")["ms"]
    echo("  console calls alone and the SQL / Jinja references…")
    headless = _headless(url, lead_id, counts)
    refs = _references(path, lead_id, counts)
    if refs["count"] != count["count"]:
        raise RuntimeError(f"the builder showed {count['count']} leads, the reference SQL counts {refs['count']}")

    pooled = [x for ms in keys.values() for x in ms]
    count_debounce = count["debounce_s"] * 1000.0
    preview_debounce = preview["debounce_s"] * 1000.0
    result: dict[str, Any] = {
        "scenario": NAME,
        "keystroke_p99_ms": _p(pooled, 99),
        "count_p95_ms": _p(count["ms"], 95),
        "preview_p95_ms": _p(preview["ms"], 95),
    }
    ref_key_p99 = _p(ref_keys, 99)
    ref_count_p95 = _p(refs["count_ms"], 95)
    ref_preview_p95 = _p(refs["preview_ms"], 95)
    result["reference"] = {
        "keystroke": "the same keys typed into a bare Textual Input in a minimal app",
        "count": "the behaviour rule's hand-written SQL on a raw sqlite3 connection",
        "preview": "the same template rendered by plain Jinja for the same lead's row (raw sqlite3)",
    }
    result["reference_ms"] = {"keystroke_p99": ref_key_p99, "count_p95": ref_count_p95,
                              "preview_p95": ref_preview_p95}
    result["ratio"] = {
        "keystroke": round(result["keystroke_p99_ms"] / ref_key_p99, 2) if ref_key_p99 else None,
        "count": round(result["count_p95_ms"] / ref_count_p95, 2) if ref_count_p95 else None,
        "preview": round(result["preview_p95_ms"] / ref_preview_p95, 2) if ref_preview_p95 else None,
    }
    result["count_p95_minus_debounce_ms"] = round(result["count_p95_ms"] - count_debounce, 2)
    result["preview_p95_minus_debounce_ms"] = round(result["preview_p95_ms"] - preview_debounce, 2)
    result["debounce_ms"] = {"count": count_debounce, "preview": preview_debounce}
    result["keystroke_p99_by_surface"] = {k: _p(v, 99) for k, v in keys.items()}
    result["keystroke_median_ms"] = round(statistics.median(pooled), 2)
    result["reference_keystroke_median_ms"] = round(statistics.median(ref_keys), 2)
    result["keys_typed"] = len(pooled)
    result["count_median_ms"] = round(statistics.median(count["ms"]), 2)
    result["count_samples_ms"] = count["ms"]
    result["undo_count_p95_ms"] = _p(count["undo_ms"], 95) if count["undo_ms"] else None
    result["console_evaluate_p95_ms"] = _p(headless["evaluate"], 95)
    result["preview_median_ms"] = round(statistics.median(preview["ms"]), 2)
    result["console_preview_p95_ms"] = _p(headless["preview"], 95)
    result["rule"] = count["rule"]
    result["count"] = count["count"]
    result["preview_lead_id"] = lead_id
    result["leads"], result["activities"], result["seed"] = leads, activities, seed
    result["targets"] = TARGETS
    result["meets_targets"] = {k: result[k] <= v for k, v in TARGETS.items()}
    return result


def command(
    leads: int = typer.Option(1_000_000, "--leads", help="Leads in the demo data set."),
    activities: int = typer.Option(0, "--activities", help="Activity rows (0: 5 a lead)."),
    seed: int = typer.Option(42, "--seed"),
    rounds: int = typer.Option(3, "--rounds", help="Times each text is typed and erased in the condition form."),
    counts: int = typer.Option(10, "--counts", help="Edits whose count latency is timed."),
    previews: int = typer.Option(20, "--previews", help="Edits whose preview latency is timed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Segment builder and template editor latency (keystroke, live count, preview) on the demo data set."""
    from .common import record

    echo = (lambda msg: typer.echo(msg, err=True)) if as_json else typer.echo
    record(run(leads, activities or 5 * leads, seed, rounds, counts, previews, echo), as_json=as_json)
