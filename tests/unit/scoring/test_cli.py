"""`nurture mql …` and `nurture scoring …` end to end through the CLI (SQLite workspace)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli as run
from sqlalchemy import select

from nurture_tui.config import load_settings
from nurture_tui.scoring import service
from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.models import GRADES
from nurture_tui.store.tables import audit, lead

from .helpers import add_lead, add_user


@pytest.fixture
def db(sqlite_url: str, capsys) -> str:
    assert run(capsys, "--db", sqlite_url, "init")[0] == 0
    return sqlite_url


def _mql_lead(db_url: str, email: str) -> int:
    from datetime import UTC, datetime

    engine = make_engine(db_url)
    with write_tx(engine) as conn:
        if conn.execute(select(lead.c.id).limit(1)).first() is None:
            add_user(conn, "rita")
            add_user(conn, "sam")
        lid = add_lead(conn, email, grade="B", grade_rank=GRADES.index("B"))
        service.adjust_score(conn, lid, 130, "trade show", datetime.now(UTC),  # clock-ok: CLI uses the system clock
                             load_settings(None, db_url))
    engine.dispose()
    return lid


def test_mql_queue_commands(db, capsys):
    _mql_lead(db, "a@x.io")
    _mql_lead(db, "b@x.io")
    code, out, _ = run(capsys, "mql", "list", "--json", "--db", db)
    entries = json.loads(out)
    assert code == 0 and [e["email"] for e in entries] == ["a@x.io", "b@x.io"]
    first, second = entries[0]["id"], entries[1]["id"]
    code, out, _ = run(capsys, "mql", "show", str(first), "--db", db)
    assert code == 0 and "WHY IT QUALIFIED" in out and "SCORE HISTORY" in out and "trade show" in out
    assert run(capsys, "mql", "accept", str(first), "--as", "rita", "--db", db)[0] == 0
    code, _, err = run(capsys, "mql", "reject", str(second), "--db", db)
    assert code == 2  # --reason is required
    assert run(capsys, "mql", "reassign", str(second), "--to", "sam", "--db", db)[0] == 0
    assert run(capsys, "mql", "snooze", str(second), "--for", "2d", "--db", db)[0] == 0
    code, out, _ = run(capsys, "mql", "list", "--db", db)
    assert out.strip() == "no MQLs"
    code, out, _ = run(capsys, "mql", "reject", str(second), "--reason", "student", "--db", db)
    assert code == 0 and "rejected" in out
    code, _, err = run(capsys, "mql", "accept", str(second), "--db", db)
    assert code == 2 and err.startswith("error: mql ") and "already rejected" in err
    code, _, err = run(capsys, "mql", "snooze", "999", "--for", "soon", "--db", db)
    assert code == 2 and err.strip() == "error: --for: not a duration: 'soon' (use e.g. 5d, 36h, 1w2d, 90m)"
    engine = make_engine(db)
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(select(audit.c.action).order_by(audit.c.id))]
    engine.dispose()
    assert actions.count("mql.qualify") == 2
    assert actions[-4:] == ["mql.accept", "mql.reassign", "mql.snooze", "mql.reject"]


def test_rules_apply_and_explain(db, capsys, tmp_path: Path):
    _mql_lead(db, "a@x.io")
    good = tmp_path / "rules.yaml"
    good.write_text("rules:\n  - {name: email click, kind: click, points: 4}\n"
                    "  - {name: webinar, kind: campaign_response, points: 20, cap: {points: 40, per: 30d}}\n")
    code, out, err = run(capsys, "scoring", "rules", "apply", str(good), "--db", db)
    assert code == 0 and "1 added, 1 updated" in out and "rescored 1 leads" in out and "rescored 1/1" in err
    code, out, _ = run(capsys, "scoring", "rules", "list", "--json", "--db", db)
    active = [r["name"] for r in json.loads(out) if r.get("active", True)]
    assert active == ["email click", "webinar"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, kind: click, points: 1, cap: {points: 2, per: fortnight}}\n")
    code, _, err = run(capsys, "scoring", "rules", "apply", str(bad), "--db", db)
    assert code == 2 and err.strip().startswith(f"error: {bad}: rules[0].cap.per: not a duration")
    code, out, _ = run(capsys, "scoring", "explain", "a@x.io", "--json", "--db", db)
    data = json.loads(out)
    assert code == 0 and data["history"][0]["reason"] == "trade show" and data["score"] == pytest.approx(130, abs=1)


def test_grades_and_groups(db, capsys, tmp_path: Path):
    engine = make_engine(db)
    with write_tx(engine) as conn:
        add_user(conn, "rita")
        add_lead(conn, "vp@x.io", title="VP Sales")
    engine.dispose()
    prof = tmp_path / "grades.yaml"
    prof.write_text("profiles:\n  - name: default\n    criteria:\n"
                    "      - {field: title, op: contains, value: [vp], steps: 4}\n")
    code, out, _ = run(capsys, "scoring", "grades", "apply", str(prof), "--db", db)
    assert code == 0 and "1 profiles saved" in out
    code, out, _ = run(capsys, "scoring", "explain", "vp@x.io", "--db", db)
    assert "grade C+ by profile 'default'" in out
    assert run(capsys, "scoring", "group", "emea", "--members", "rita", "--country", "Germany,France",
               "--db", db)[0] == 0
    code, _, err = run(capsys, "scoring", "group", "x", "--members", "nobody", "--db", db)
    assert code == 2 and "no user 'nobody'" in err
