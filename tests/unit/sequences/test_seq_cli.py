"""`nurture sequences …` end to end on a SQLite workspace file (in-process CLI)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_support import run_cli as cli
from seq_support import SAMPLES, add_account, add_lead, add_segment, row_counts
from sqlalchemy import insert

from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.tables import enrollment

REPO_SEQUENCES = SAMPLES[0].parent




@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'ws.db'}"
    assert cli(capsys, "init", "--db", url)[0] == 0
    return url


def test_validate_prints_one_line_per_problem_and_exits_2(db: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "welcome.yaml"
    bad.write_text("name: welcome\nsteps:\n  - id: fast_track\n    wait_for: {events: [{kind: click}], window: 3d}\n"
                   "    yes:\n      - {id: tailored, send: {template: nope}}\n"
                   "      - {id: pause, wait: {duration: 0d}}\n")
    code, out, _err = cli(capsys, "sequences", "validate", str(bad), "--db", db)
    assert code == 2
    assert out.splitlines() == [
        "welcome.yaml: steps.fast_track.yes[0].send: unknown template 'nope' (not in templates:, the templates "
        "directory or the store) (line 6)",
        "welcome.yaml: steps.fast_track.yes[1].wait: duration must be > 0 (line 7)",
    ]


def test_validate_the_library(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in SAMPLES]
    code, out, _ = cli(capsys, "sequences", "validate", *files, "--no-db")
    assert (code, out.splitlines()) == (0, [
        "note: abm-named-accounts.yaml: entry.segment: segment 'named-accounts' not checked (no workspace) (line 6)",
        f"ok: {len(files)} files valid; 1 reference not checked (--no-db)"])
    code, out, _ = cli(capsys, "sequences", "validate", *files, "--db", db)
    assert code == 2 and out.strip() == ("abm-named-accounts.yaml: entry.segment: unknown segment "
                                         "'named-accounts' (line 6)")


def test_apply_export_publish_list_simulate(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(REPO_SEQUENCES, lib)
    code, out, err = cli(capsys, "sequences", "apply", str(lib / "consideration-nurture.yaml"), "--db", db)
    assert code == 0, err
    assert out.startswith("consideration-nurture: draft created (templates saved: cn-1-problem,")
    code, out, _ = cli(capsys, "sequences", "list", "--db", db)
    assert out.splitlines()[1].split() == ["consideration-nurture", "draft", "-", "changed", "-"]

    exported = tmp_path / "out.yaml"
    assert cli(capsys, "sequences", "export", "consideration-nurture", "-o", str(exported), "--db", db)[0] == 0
    code, out, _ = cli(capsys, "sequences", "apply", str(exported), "--db", db)
    assert out.strip() == "consideration-nurture: draft unchanged"

    code, out, _ = cli(capsys, "sequences", "publish", "consideration-nurture", "--db", db)
    assert code == 0 and out.startswith("consideration-nurture: published v1 (added: email-1, opened-1,")
    code, out, _ = cli(capsys, "sequences", "publish", "consideration-nurture", "--db", db)
    assert out.strip() == "consideration-nurture: draft unchanged since v1; nothing published"

    engine = make_engine(db)
    with write_tx(engine) as conn:
        acct = add_account(conn, name="Acme Corp")
        lead_id = add_lead(conn, "dana@acme.example", datetime(2026, 1, 1, tzinfo=UTC), account_id=acct,
                           timezone="America/Chicago", country="US")
        conn.execute(insert(enrollment).values(lead_id=lead_id, sequence_id=1, version_id=1, node_id="gap-3",
                                               status="waiting", path=[]))
    text = exported.read_text().replace("window: 7d", "window: 6d", 1)
    exported.write_text(text)
    assert cli(capsys, "sequences", "apply", str(exported), "--db", db)[0] == 0
    code, out, _ = cli(capsys, "sequences", "diff", "consideration-nurture", "--db", db)
    assert out.strip() == "changed: intent-1"
    code, out, _ = cli(capsys, "sequences", "publish", "consideration-nurture", "--migrate", "--db", db)
    assert out.splitlines() == ["consideration-nurture: published v2 (changed: intent-1)",
                                "migration: 1 moved to v2, 0 stayed"]
    code, out, _ = cli(capsys, "sequences", "versions", "consideration-nurture", "--db", db)
    assert [line[:4] for line in out.splitlines()] == ["  v1", "* v2"]

    assert cli(capsys, "sequences", "pause", "consideration-nurture", "--db", db)[1].strip() == \
        "consideration-nurture: paused (was active)"
    code, out, _ = cli(capsys, "sequences", "list", "--db", db)
    assert out.splitlines()[1].split() == ["consideration-nurture", "paused", "v2", "=", "waiting", "1"]
    assert cli(capsys, "sequences", "resume", "consideration-nurture", "--db", db)[1].strip() == \
        "consideration-nurture: active (was paused)"

    with engine.connect() as conn:
        before = row_counts(conn)
    code, out, err = cli(capsys, "sequences", "simulate", "consideration-nurture", "--lead", "dana@acme.example",
                         "--start", "2026-03-03T08:00", "--outcomes", "opened-1=yes,intent-1=yes", "--db", db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("consideration-nurture (v2) for dana@acme.example — times in America/Chicago, "
                        "holidays: US")
    assert lines[2].startswith("Tue 2026-03-03 08:30 CST  email-1")
    assert any("fast-track" in line and "Pricing for Acme Corp, explained" in line for line in lines)
    assert lines[-1].endswith("exits: fast-tracked to sales")
    with engine.connect() as conn:
        assert row_counts(conn) == before
    engine.dispose()


def test_apply_error_exits_2_and_keeps_the_store(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text((REPO_SEQUENCES / "welcome.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - {id: a, send: {template: missing}}\n  - id: b\n    wait: {}\n")
    code, out, err = cli(capsys, "sequences", "apply", str(good), str(bad), "--db", db)
    assert code == 2 and out == ""
    assert err.splitlines() == ["bad.yaml: steps.b.wait: wait needs exactly one of duration, until, weekday "
                                "(line 5)"]
    code, out, _ = cli(capsys, "sequences", "list", "--db", db)
    assert out.splitlines()[1:] == []


def test_simulate_usage_errors(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = cli(capsys, "sequences", "simulate", "welcome", "--db", db)
    assert code == 2 and err.strip() == "error: simulate: give exactly one of --lead EMAIL or --sample-segment NAME"
    code, _out, err = cli(capsys, "sequences", "simulate", "welcome", "--lead", "x@y.example", "--db", db)
    assert code == 2 and err.strip() == "error: sequence 'welcome' not found (see `nurture sequences list`)"


def test_simulate_segment_sample_from_the_cli(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(db)
    with write_tx(engine) as conn:
        add_segment(conn, "named-accounts", {"field": "account.named_account", "eq": True})
        acct = add_account(conn, name="Initech", named_account=True)
        now = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(4):
            add_lead(conn, f"p{i}@initech.example", now, account_id=acct,
                     persona="economic_buyer" if i == 0 else "practitioner")
    engine.dispose()
    assert cli(capsys, "sequences", "apply", str(REPO_SEQUENCES / "abm-named-accounts.yaml"), "--db", db)[0] == 0
    code, out, err = cli(capsys, "sequences", "simulate", "abm-named-accounts", "--draft", "--sample-segment",
                         "named-accounts", "--n", "100", "--db", db)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert rows["exec-brief"][2] == "1.0" and rows["practitioner-playbook"][2] == "3.0"
    assert "assumed" in rows["account-engaged"][-1]  # nothing sent yet: typical rates, said so

    code, out, _ = cli(capsys, "sequences", "simulate", "abm-named-accounts", "--draft", "--sample-segment",
                       "named-accounts", "--json", "--db", db)
    data = json.loads(out)
    assert (data["sample"], data["members"]) == (4, 4)
    assert {n["node_id"]: n["reach"] for n in data["nodes"]}["exec-brief"] == 1.0
