"""`nurture bench sequence-editor --json`: how fast the sequence editor is to build with and to work in
(issue 16).

A fresh SQLite workspace (benchmarks/work/sequence-editor/) gets the store templates the samples name and a
200-node program, `bench-200` (50 blocks of send → wait → wait_for with a yes action). A fresh process
(`python -m nurture_tui.tui.bench_sequence_probe`, headless, 130×40) then:

- builds `cold-lead-reengagement`, `consideration-nurture` and `decision-stage` from nothing by keys
  (`tui.sequence_builds`, every character a key press), each checked equal to its file. `keys_per_node`
  counts navigation, kind and option choices, picker searches, `enter` between fields, the condition
  builder's keys and confirmations — over all nodes of the three samples, their settings included
  (`keys_per_node_steps_only` leaves the settings out); `all_keys_per_node` adds the free text the samples
  spell out (ids, names, labels, subjects, descriptions, template YAML, and the values typed into text
  fields: durations, numbers, URLs, filters);
- opens `bench-200` and times key → tree changed → painted for cursor moves and edits
  (`keystroke_p99_ms`), and an edit's key → the check of that revision shown (`validate_ms`, p95).

References, measured in the same run: the same cursor keys in a bare Textual `Tree` of 200 leaves in a
minimal app (its own fresh process), and the draft's check alone (`SequenceDraft.problems()` in this
process). Targets: keys_per_node ≤ 8, keystroke_p99_ms ≤ 50, validate_ms ≤ 150.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from .common import percentile

NAME = "sequence-editor"
TARGETS = {"keys_per_node": 8.0, "keystroke_p99_ms": 50.0, "validate_ms": 150.0}
WORK = Path("benchmarks/work/sequence-editor")
SAMPLES = Path(__file__).resolve().parents[2] / "sequences"
BLOCKS = 50  # × 4 nodes


def big_program() -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for i in range(BLOCKS):
        steps += [
            {"id": f"send-{i}", "send": {"template": "cn-1-problem"}},
            {"id": f"wait-{i}", "wait": {"duration": "1d"}},
            {"id": f"opened-{i}", "wait_for": {"events": [{"kind": "open", "node": f"send-{i}"}], "window": "3d"},
             "yes": [{"id": f"points-{i}", "action": {"type": "adjust_score", "points": 5}}]},
        ]
    return {"name": "bench-200", "description": "200 nodes for the editor benchmark", "steps": steps}


def _workspace(echo: Any) -> tuple[str, Path]:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from ..config import Settings
    from ..mail.files import load_template_file
    from ..mail.templates import upsert_template
    from ..sequences.model import SequenceDef
    from ..sequences.service import save_draft
    from ..store.tables import user
    from ..workspace import Workspace

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    url = f"sqlite:///{(WORK / 'bench.db').resolve()}"
    echo("  a fresh workspace with the store templates and the 200-node program…")
    settings = Settings(db_url=url, data_dir=WORK.resolve(), user={"name": "bench", "role": "admin"})
    ws = Workspace.open(settings, create=True)
    now = datetime.now(UTC)  # clock-ok: set-up of a throwaway workspace
    try:
        with ws.engine.begin() as conn:
            conn.execute(insert(user).values(username="bench", name="Bench Admin", role="admin", created_at=now))
            for spec in load_template_file(SAMPLES / "templates" / "consideration.yaml"):
                upsert_template(conn, **spec, user="bench", now=now)
            save_draft(conn, SequenceDef.model_validate(big_program()), user="bench", now=now)
    finally:
        ws.close()
    return url, WORK.resolve()


def _probe(args: list[str]) -> list[dict[str, Any]]:
    env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
    proc = subprocess.run([sys.executable, "-m", "nurture_tui.tui.bench_sequence_probe", *args],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        from ..errors import NurtureError

        raise NurtureError(f"the editor probe failed: {proc.stderr.strip().splitlines()[-1:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _check_alone(runs: int) -> list[float]:
    """The reference for validate_ms: what the editor's worker does for an edit — a snapshot of the draft
    and its check — on the same program, no UI."""
    from ..console.sequence_draft import SequenceDraft
    from ..sequences.model import SequenceDef
    from ..sequences.validate import Catalog, default_rule_parser

    catalog = Catalog(templates={"cn-1-problem"}, segment_exists=lambda _n: True, parse_rule=default_rule_parser())
    draft = SequenceDraft(SequenceDef.model_validate(big_program()), catalog)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        draft.snapshot().problems()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run(rounds: int, builds: bool, echo: Any) -> dict[str, Any]:
    url, data_dir = _workspace(echo)
    echo("  the builds by keys and the 200-node program (fresh process; the builds take minutes)…")
    events = _probe(["--db", url, "--data-dir", str(data_dir), "--rounds", str(rounds),
                     *([] if builds else ["--no-builds"])])
    built = [e for e in events if e.get("event") == "build"]
    keys = next(e for e in events if e.get("event") == "keys")
    validate = next(e for e in events if e.get("event") == "validate")
    echo("  the bare-Tree reference (fresh process) and the check alone…")
    ref_keys = next(e for e in _probe(["--reference", str(keys["nodes"]), "--rounds", str(rounds)])
                    if e.get("event") == "reference_keys")["ms"]
    alone = _check_alone(len(validate["ms"]))

    result: dict[str, Any] = {"scenario": NAME}
    if built:
        nodes = sum(b["nodes"] for b in built)
        settings_keys = sum(b["parts"].get("settings", 0) for b in built)
        result["keys_per_node"] = round(sum(b["keys"] for b in built) / nodes, 2)
        result["all_keys_per_node"] = round(sum(b["keys"] + b["free"] for b in built) / nodes, 2)
        result["keys_per_node_steps_only"] = round((sum(b["keys"] for b in built) - settings_keys) / nodes, 2)
        result["builds"] = {b["name"]: {k: b[k] for k in ("nodes", "keys", "free", "parts", "seconds")}
                            for b in built}
    result["keystroke_p99_ms"] = percentile(keys["ms"], 99)
    result["validate_ms"] = percentile(validate["ms"], 95)
    ref_key_p99 = percentile(ref_keys, 99)
    ref_check_p95 = percentile(alone, 95)
    result["reference"] = {"keystroke": f"the same cursor keys in a bare Textual Tree of {keys['nodes']} leaves",
                           "validate": "the draft's snapshot and check of the same program, no UI"}
    result["reference_ms"] = {"keystroke_p99": ref_key_p99, "validate_p95": ref_check_p95}
    result["ratio"] = {"keystroke": round(result["keystroke_p99_ms"] / ref_key_p99, 2) if ref_key_p99 else None,
                       "validate": round(result["validate_ms"] / ref_check_p95, 2) if ref_check_p95 else None}
    result["keystroke_median_ms"] = round(statistics.median(keys["ms"]), 2)
    result["validate_median_ms"] = round(statistics.median(validate["ms"]), 2)
    result["program_nodes"] = keys["nodes"]
    result["targets"] = TARGETS
    result["meets_targets"] = {k: result[k] <= v for k, v in TARGETS.items() if k in result}
    return result


def command(
    rounds: int = typer.Option(2, "--rounds", help="Rounds of cursor moves and edits in the 200-node program."),
    builds: bool = typer.Option(True, "--builds/--no-builds", help="Build the three samples by keys first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Sequence editor: keys per node to build the samples, keystroke and validation latency on 200 nodes."""
    from .common import record

    echo = (lambda msg: typer.echo(msg, err=True)) if as_json else typer.echo
    record(run(rounds, builds, echo), as_json=as_json)
