"""`nurture segments …` end to end through the real CLI entry point (SQLite workspace file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli as run
from sqlalchemy import insert

from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.models import metadata
from nurture_tui.store.tables import lead


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One workspace for the module (tables from the models: `nurture init` is tested by the foundation)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'w.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    with write_tx(engine) as conn:
        conn.execute(insert(lead), [{"email": f"l{i}@x.io", "industry": ["Software", "fintech", "Retail"][i % 3],
                                     "score": float(i * 10)} for i in range(10)])
    engine.dispose()
    return url


def test_count_save_list_show_delete(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text("all:\n  - {field: industry, op: in, value: [Software, Fintech]}\n  - {field: score, ge: 50}\n")
    code, out, _ = run(capsys, "segments", "count", "--rule", str(rule), "--db", db)
    # industry matches i % 3 in (0, 1); score ≥ 50 means i ≥ 5 → 6, 7, 9
    assert (code, out) == (0, "3\tindustry in [Software, Fintech] AND score ≥ 50\n")
    code, out, _ = run(capsys, "segments", "save", "Warm", "--rule", str(rule), "--description", "warm leads",
                       "--materialize", "--db", db)
    assert code == 0 and out.startswith("saved segment 'Warm' (hot): 3 leads")
    code, out, _ = run(capsys, "segments", "count", "--name", "warm", "--json", "--db", db)
    assert json.loads(out) == {"count": 3, "rule": "industry in [Software, Fintech] AND score ≥ 50"}
    code, out, _ = run(capsys, "segments", "list", "--db", db)
    assert out.split() [:3] == ["Warm", "3", "hot"]
    code, out, _ = run(capsys, "segments", "show", "Warm", "--db", db)
    assert "description: warm leads" in out and "- field: industry" in out
    code, out, _ = run(capsys, "segments", "refresh", "--db", db)
    assert out.strip() == "Warm: 3 (hot: +0 −0)"
    assert run(capsys, "segments", "delete", "Warm", "--db", db)[:2] == (0, "deleted segment 'Warm'\n")
    code, out, _ = run(capsys, "segments", "list", "--json", "--db", db)
    assert "Warm" not in [s["name"] for s in json.loads(out)]


@pytest.mark.parametrize(("body", "args", "message"), [
    ("all:\n  - {field: score, ge: 1}\n  - any:\n    - {field: employees, gt: abc}\n", ["count"],
     'error: {f}: rule.all[1].any[0].gt: expected a number, got "abc"'),
    ("{field: nope, eq: 1}\n", ["count"], 'error: {f}: rule.field: unknown field "nope"'),
    ("{field: email, regex: '(x'}\n", ["save", "X"], 'error: {f}: rule.regex: bad regular expression "(x"'),
    ("{field: industry, in: []}\n", ["count"], "error: {f}: rule.in: empty list: `in` needs at least one value"),
    ("{in_segment: Ghost}\n", ["count"], "error: {f}: rule.in_segment: no saved segment named 'Ghost'"),
    ("{in_segment: Self}\n", ["save", "Self"], "error: {f}: rule.in_segment: segment 'Self' cannot contain itself"),
    ("all: [\n", ["count"], "error: {f}: line 2: not valid YAML/JSON"),
])
def test_bad_input_is_one_line_exit_2(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str,
                                      args: list[str], message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    code, out, err = run(capsys, "segments", *args, "--rule", str(f), "--db", db)
    assert code == 2 and out == ""
    assert err.startswith(message.format(f=f)), err
    assert err.count("\n") == 1


def test_self_reference_on_update_and_usage_errors(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text("{field: score, ge: 1}\n")
    assert run(capsys, "segments", "save", "Self", "--rule", str(ok), "--db", db)[0] == 0
    me = tmp_path / "me.yaml"
    me.write_text("any: [{field: score, ge: 90}, {in_segment: self}]\n")
    code, _, err = run(capsys, "segments", "save", "Self", "--rule", str(me), "--db", db)
    assert code == 2 and err == f"error: {me}: rule.any[1].in_segment: segment 'Self' cannot contain itself\n"
    code, _, err = run(capsys, "segments", "count", "--db", db)
    assert code == 2 and err == "error: give exactly one of --rule FILE or --name NAME\n"
    code, _, err = run(capsys, "segments", "show", "Nope", "--db", db)
    assert code == 2 and "segment 'Nope': no such segment" in err
    code, _, err = run(capsys, "segments", "count", "--rule", str(tmp_path / "absent.yaml"), "--db", db)
    assert code == 2 and err == f"error: {tmp_path / 'absent.yaml'}: file not found\n"


def test_users_rename_duplicate_and_delete(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, user = tmp_path / "base.yaml", tmp_path / "user.yaml"
    base.write_text("{field: score, ge: 50}\n")
    user.write_text("any: [{in_segment: base seg}, {field: industry, eq: Retail}]\n")
    assert run(capsys, "segments", "save", "Base seg", "--rule", str(base), "--db", db)[0] == 0
    assert run(capsys, "segments", "save", "User seg", "--rule", str(user), "--db", db)[0] == 0
    assert run(capsys, "segments", "users", "base SEG", "--db", db)[:2] == (0, "segment\tUser seg\n")
    code, _, err = run(capsys, "segments", "delete", "Base seg", "--db", db)
    assert (code, err) == (2, "error: segment 'Base seg': still used by segment User seg\n")
    code, _, err = run(capsys, "segments", "rename", "Base seg", "user SEG", "--db", db)
    assert (code, err) == (2, "error: new name: a segment named 'User seg' already exists\n")
    code, out, _ = run(capsys, "segments", "rename", "Base seg", "Rich", "--db", db)
    assert (code, out) == (0, "renamed segment 'Base seg' to 'Rich'; updated segment User seg\n")
    code, out, _ = run(capsys, "segments", "users", "Rich", "--json", "--db", db)
    assert json.loads(out) == {"segment": "Rich", "segments": ["User seg"], "sequences": []}
    code, out, _ = run(capsys, "segments", "duplicate", "Rich", "Rich 2", "--db", db)
    assert (code, out) == (0, "saved segment 'Rich 2': 5 leads\tscore ≥ 50\n")
    assert run(capsys, "segments", "users", "Rich 2", "--db", db)[1] == "segment 'Rich 2' is not used\n"
    assert run(capsys, "segments", "delete", "Rich 2", "--db", db)[:2] == (0, "deleted segment 'Rich 2'\n")
    code, _, err = run(capsys, "segments", "rename", "Nope", "X", "--db", db)
    assert code == 2 and err == "error: segment 'Nope': no such segment (see `nurture segments list`)\n"
