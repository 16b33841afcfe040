"""`nurture templates lint`: every demo template (sequences/*.yaml and sequences/templates/) scores at most 1.0
with SpamAssassin's local rules, rendered exactly as sent; the content checks catch what they name; the CLI
writes nothing and exits 1 on a problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli
from sqlalchemy import func, select

from nurture_tui.mail import lint
from nurture_tui.mail.files import load_template_file
from nurture_tui.mail.templates import upsert_template
from nurture_tui.sequences.library import sequences_dir
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead

DEMO_FILES = [p for p in sorted(sequences_dir().glob("*.yaml")) + sorted((sequences_dir() / "templates").glob("*.yaml"))
              if "\ntemplates:" in "\n" + p.read_text()]
needs_spamassassin = pytest.mark.skipif(
    not lint.spamassassin_available(),
    reason="spamassassin is not installed (Debian: apt-get install spamassassin; .ci/run installs it)")


def _demo_templates(ws, now) -> list[str]:
    names = []
    with write_tx(ws.engine) as conn:
        for path in DEMO_FILES:
            for item in load_template_file(path):
                upsert_template(conn, **item, user="test", now=now)
                names.append(item["name"])
    return names


def _lint(ws, now, names):
    with ws.engine.connect() as conn, conn.begin() as tx:
        results = lint.render_for_lint(conn, ws.settings, names, None, now)
        tx.rollback()
    return results


@needs_spamassassin
def test_every_demo_template_scores_at_most_one_with_local_rules(sqlite_workspace, clock) -> None:
    ws = sqlite_workspace
    ws.settings.mail.from_name, ws.settings.mail.from_email = "Northwind", "marketing@northwind.example"
    names = _demo_templates(ws, clock.now())
    assert len(names) >= 25
    results = _lint(ws, clock.now(), names)
    lint.spam_scores(results)
    report = {r.name: (r.spam_score, r.spam_rules, r.problems) for r in results}
    assert all(r.spam_score is not None for r in results), report
    over = {n: v for n, v in report.items() if v[0] > 1.0}
    assert not over, over
    assert not any(r.problems for r in results), report
    with ws.engine.connect() as conn:  # the sample lead was rolled back
        assert conn.execute(select(func.count()).select_from(lead)).scalar() == 0


@needs_spamassassin
def test_spamassassin_sees_what_it_should(sqlite_workspace, clock) -> None:
    """The score is real: a short body with the open pixel is an image-only message to SpamAssassin."""
    ws = sqlite_workspace
    ws.settings.mail.layout = "none"
    with write_tx(ws.engine) as conn:
        upsert_template(conn, name="short", subject="Hi", html="<p>Hello {{ lead.first_name }}.</p>",
                        user="t", now=clock.now())
    (res,) = _lint(ws, clock.now(), ["short"])
    lint.spam_scores([res])
    assert res.spam_score is not None and res.spam_score > 0.5
    assert any(rule.startswith("HTML_IMAGE_ONLY") and pts > 0.5 for rule, pts in res.spam_rules), res.spam_rules


def test_content_problems_are_named(sqlite_workspace, clock) -> None:
    ws = sqlite_workspace
    big = "<p>" + "Plenty of words in a very long newsletter. " * 2600 + "</p>"
    cases = {
        "banner": ('<p><img src="https://cdn.example.com/banner.png"></p>', None,
                   ["image-only body", "image without alt text: https://cdn.example.com/banner.png"]),
        "links": ('<p><a href="https://example.com/a">Read the full story on our website today</a></p>', None,
                  ["link-only body"]),
        "short-url": ("<p>" + "Real words about the product and what it does for you. " * 6
                      + '<a href="https://bit.ly/3xYz">more</a></p>', None, ["shortened URL https://bit.ly/3xYz"]),
        "mismatch": ("<p>" + "The quarterly product update covers reporting and scoring changes. " * 5 + "</p>",
                     "Buy now. Limited offer. Click here.", ["text part differs from the HTML"]),
        "huge": (big, None, ["Gmail clips messages over 102 KB"]),
    }
    with write_tx(ws.engine) as conn:
        for name, (html, text, _) in cases.items():
            upsert_template(conn, name=name, subject="Update", html=html, text=text, user="t", now=clock.now())
    results = {r.name: r for r in _lint(ws, clock.now(), list(cases))}
    for name, (_, _, expected) in cases.items():
        got = results[name].problems
        for want in expected:
            assert any(want in p for p in got), (name, got)
    assert lint.check_parts("Subject", "<p>x</p>", "", "<p>x</p>")[0] == "no text part"


def test_cli_lint_json_and_exit_code(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'ws.db'}"
    assert run_cli(capsys, "init", "--db", db)[0] == 0
    assert run_cli(capsys, "templates", "apply", str(sequences_dir() / "templates" / "consideration.yaml"),
                   "--db", db)[0] == 0
    code, out, _ = run_cli(capsys, "templates", "lint", "cn-2-guide", "--json", "--no-spamassassin", "--db", db)
    assert code == 0
    row = json.loads(out)
    assert row["template"] == "cn-2-guide" and row["problems"] == [] and row["html_bytes"] > 3000
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsubject: Hi\nhtml: '<p><img src=\"https://x.example/a.png\"></p>'\n")
    assert run_cli(capsys, "templates", "apply", str(bad), "--db", db)[0] == 0
    code, out, _ = run_cli(capsys, "templates", "lint", "bad", "--no-spamassassin", "--db", db)
    assert code == 1 and "image-only body" in out and "image without alt text" in out
    code, _, err = run_cli(capsys, "templates", "lint", "nope", "--db", db)
    assert code != 0 and "no template named 'nope'" in err
