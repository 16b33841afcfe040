"""Seed-list test sends from the CLI (`nurture templates test-send`) through a real aiosmtpd relay: marked as
tests (header, subject prefix, DKIM like real mail), never queued, never an activity, never in the email
report's figures; each audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli
from sqlalchemy import func, select

from nurture_tui.mail.sink import SmtpSink
from nurture_tui.mail.testsend import addresses_problem, split_addresses
from nurture_tui.store.engine import make_engine
from nurture_tui.store.tables import activity, audit, email_stat, outbox

TEMPLATE = """templates:
  - name: hello
    subject: 'Hello {{ lead.first_name | default("there") }}'
    html: |
      <p>Hi {{ lead.first_name | default("there") }}, the guide is ready.</p>
      <p><a href="https://example.com/guide">Read the guide</a></p>
"""


def test_seed_list_test_send_is_marked_and_never_counted(tmp_path: Path, capsys, monkeypatch) -> None:
    db = f"sqlite:///{tmp_path / 'ws.db'}"
    assert run_cli(capsys, "init", "--db", db)[0] == 0
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    assert run_cli(capsys, "templates", "apply", str(tmp_path / "t.yaml"), "--db", db)[0] == 0
    with SmtpSink() as sink:
        monkeypatch.setenv("NURTURE_MAIL__SMTP_URL", sink.url)
        monkeypatch.setenv("NURTURE_MAIL__SEED_LIST", json.dumps(["seed1@inbox.example", "seed2@inbox.example"]))
        code, out, err = run_cli(capsys, "templates", "test-send", "hello", "--db", db)
        assert code == 0, err
        assert sink.wait_for(2)
        code, out2, err = run_cli(capsys, "templates", "test-send", "hello", "--to", "me@team.example", "--db", db)
        assert code == 0, err
        assert sink.wait_for(3)
        msgs = [m.message() for m in sink.messages]
    assert [json.loads(line)["to"] for line in (out + out2).splitlines()] == [
        "seed1@inbox.example", "seed2@inbox.example", "me@team.example"]
    assert sorted(m["To"] for m in msgs) == ["me@team.example", "seed1@inbox.example", "seed2@inbox.example"]
    for m in msgs:
        assert m["X-Nurture-Test"] == "yes" and m["Subject"] == "[TEST] Hello lead.first_name"  # placeholder values
        assert m["List-Id"] and not m["Feedback-ID"] and not m["List-Unsubscribe"]
        html = m.get_body(("html",)).get_content()
        assert "/c/" not in html and "/o/" not in html  # no tracking: a test is never an open or click
    engine = make_engine(db)
    with engine.connect() as conn:
        for table in (outbox, activity, email_stat):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0, table.name
        assert conn.execute(select(func.count()).select_from(audit).where(audit.c.action == "test_send")).scalar() == 3
    engine.dispose()


@pytest.mark.parametrize(("text", "problem"), [
    ("", "type an email address"),
    ("a@x.example, not-an-address", "not-an-address: not an email address"),
    ("a@x.example; b@y.example", None),
])
def test_seed_list_parsing(text: str, problem: str | None) -> None:
    got = addresses_problem(text)
    assert (got is None) if problem is None else (got is not None and got.startswith(problem)), got
    if problem is None:
        assert split_addresses(text) == ["a@x.example", "b@y.example"]


def test_no_addresses_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'ws.db'}"
    assert run_cli(capsys, "init", "--db", db)[0] == 0
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    run_cli(capsys, "templates", "apply", str(tmp_path / "t.yaml"), "--db", db)
    code, _, err = run_cli(capsys, "templates", "test-send", "hello", "--db", db)
    assert code != 0 and "give --to ADDRESS or set mail.seed_list" in err
