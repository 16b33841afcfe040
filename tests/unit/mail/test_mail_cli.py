"""`nurture templates …` and `nurture mail …` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import run_cli as run


@pytest.fixture
def db(tmp_path: Path, capsys) -> str:
    url = f"sqlite:///{tmp_path / 'ws.db'}"
    assert run(capsys, "init", "--db", url)[0] == 0
    return url


GOOD = """templates:
  - name: hello
    category: newsletter
    subject: 'Hi {{ lead.first_name | default("there") }}'
    html: |
      <p>Hello {{ lead.company }}</p>
      <p><a href="https://example.com/x">x</a></p>
"""


def test_validate_apply_list_show_preview(tmp_path: Path, db: str, capsys) -> None:
    from sqlalchemy import insert

    from nurture_tui.store.engine import make_engine
    from nurture_tui.store.tables import lead

    f = tmp_path / "t.yaml"
    f.write_text(GOOD)
    assert run(capsys, "templates", "validate", str(f))[1].strip() == f"{f}: 1 template(s) OK"
    assert run(capsys, "templates", "apply", str(f), "--db", db)[0] == 0
    code, out, _ = run(capsys, "templates", "list", "--db", db, "--json")
    assert code == 0 and '"name": "hello"' in out and '"category": "newsletter"' in out
    assert "--- html" in run(capsys, "templates", "show", "hello", "--db", db)[1]
    eng = make_engine(db)
    with eng.begin() as conn:
        conn.execute(insert(lead).values(email="ann@x.test", first_name="Ann", company="<Acme>"))
    eng.dispose()
    code, out, _ = run(capsys, "templates", "preview", "hello", "--lead", "ann@x.test", "--db", db)
    assert code == 0 and "Subject: Hi Ann" in out and "Hello &lt;Acme&gt;" in out and "List-Unsubscribe:" in out
    code, _, err = run(capsys, "templates", "preview", "hello", "--lead", "nobody@x.test", "--db", db)
    assert code == 2 and "no such lead" in err


def test_validate_errors_are_one_line_with_file_and_line(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\nsubject: s\nhtml: |\n  <p>ok</p>\n  {{ lead.nope }}\n")
    code, _, err = run(capsys, "templates", "validate", str(f))
    assert code == 2 and err.strip() == f"error: {f}: template bad: html line 2: unknown merge field lead.nope " \
        "(available: account_id, city, company, country, custom, email, employees, first_name, full_name, grade, id, " \
        "industry, last_name, lead_source, owner_id, persona, phone, stage, state, status, timezone, title)"
    f.write_text("templates:\n  - name: x\n    subject: s\n    html: '{% if %}'\n")
    code, _, err = run(capsys, "templates", "validate", str(f))
    assert code == 2 and err.startswith(f"error: {f}: template x: html line 1:")
    f.write_text("templates: [ {name: x\n")
    code, _, err = run(capsys, "templates", "validate", str(f))
    assert code == 2 and "not valid YAML" in err


def test_mail_dispatch_once_and_suppress(db: str, capsys) -> None:
    code, out, _ = run(capsys, "mail", "dispatch", "--once", "--db", db)
    assert code == 0 and '"claimed": 0' in out
    code, out, _ = run(capsys, "mail", "suppress", "Someone@X.test", "--db", db)
    assert code == 0 and '"suppressed": "manual"' in out
    code, out, _ = run(capsys, "mail", "suppress", "someone@x.test", "--lift", "--db", db)
    assert code == 0 and '"lifted": 1' in out


def test_mail_unsubscribes_needs_a_maildir(db: str, tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "mail", "unsubscribes", str(tmp_path / "nope"), "--db", db)
    assert code == 2 and "not a Maildir" in err
    import mailbox

    mailbox.Maildir(str(tmp_path / "box"), create=True)
    code, out, _ = run(capsys, "mail", "unsubscribes", str(tmp_path / "box"), "--db", db)
    assert code == 0 and '"processed": 0' in out
