"""Bounces and complaints that come back after sending: real messages go out through the dispatcher to an
aiosmtpd sink; DSN and ARF reports shaped like Postfix's, Exim's, Gmail's, Outlook's and Yahoo's (fixtures/
reports, filled with the Message-ID the sink received) are read from a Maildir and applied to the right lead.
"""

from __future__ import annotations

import mailbox
from datetime import timedelta
from pathlib import Path

import pytest
from mail_support import add_lead, save_template
from sqlalchemy import func, insert, select

from nurture_tui.mail import suppression
from nurture_tui.mail.bouncebox import process_maildir
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.mail.dispatch import dispatch_due
from nurture_tui.mail.inbound import process_maildir as process_unsubscribes
from nurture_tui.reports.common import Period, Scope
from nurture_tui.reports.emails import cohort_cells
from nurture_tui.reports.emails import load as emails_report
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead, mail_feedback, outbox

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
PEOPLE = {"ann": "ann@acme.test", "bob": "bob@globex.test", "cy": "cy@gmail.test", "dave": "dave@hotmail.test",
          "erin": "erin@yahoo.test", "fay": "fay@acme.test"}


def _send(ws, sink, now, names, attempt=0) -> dict[str, str]:
    """Queue and really send one message per lead; returns lead name → the Message-ID the sink received."""
    with write_tx(ws.engine) as conn:
        ids = {n: conn.execute(select(lead.c.id).where(lead.c.email == PEOPLE[n])).scalar_one() for n in names}
        conn.execute(insert(outbox), compose_outbox_rows(
            conn, [SendRequest(ids[n], "welcome", None, None, None, "s1", f"{ids[n]}:s1:{attempt}") for n in names],
            ws.settings, now))
    before = len(sink.messages)
    assert dispatch_due(ws).sent == len(names) and sink.wait_for(before + len(names))
    by_to = {m.rcpt_tos[0]: m.message()["Message-ID"] for m in sink.messages[before:]}
    return {n: by_to[PEOPLE[n]] for n in names}


def _setup(ws, sink, clock) -> tuple[dict[str, int], dict[str, str]]:
    now = clock.now()
    ids = {n: add_lead(ws, e, now, first_name=n.title()) for n, e in PEOPLE.items()}
    save_template(ws, now)
    return ids, _send(ws, sink, now, list(PEOPLE))


def _report(name: str, recipient: str, message_id: str) -> bytes:
    text = (FIXTURES / name).read_text().replace("@@RECIPIENT@@", recipient).replace("@@MESSAGE_ID@@", message_id)
    return text.replace("\n", "\r\n").encode()


def _drop(box: Path, *reports: bytes) -> None:
    md = mailbox.Maildir(str(box), create=True)
    for raw in reports:
        md.add(mailbox.MaildirMessage(raw))


def _lead(ws, lead_id):
    with ws.engine.connect() as conn:
        return conn.execute(select(lead).where(lead.c.id == lead_id)).one()


def test_reports_from_five_mtas_suppress_the_right_leads(ws, sink, clock, tmp_path) -> None:
    ids, mids = _setup(ws, sink, clock)
    box = tmp_path / "bounces"
    clock.advance(timedelta(hours=1))
    _drop(box,
          _report("postfix_user_unknown.eml", PEOPLE["ann"], mids["ann"]),
          _report("exim_no_such_user.eml", PEOPLE["bob"], mids["bob"]),
          _report("gmail_mailbox_full.eml", PEOPLE["cy"], mids["cy"]),
          _report("outlook_mailbox_unavailable.eml", PEOPLE["dave"], mids["dave"]),
          _report("yahoo_arf_complaint.eml", PEOPLE["erin"], mids["erin"]),
          _report("auto_reply.eml", PEOPLE["fay"], mids["fay"]))
    res = process_maildir(ws, box)
    fb = res.feedback
    assert (res.messages, res.reports, res.not_reports) == (6, 5, 1)
    assert (fb.hard, fb.soft, fb.complaints, fb.unmatched, fb.malformed, fb.duplicates) == (3, 1, 1, 0, 0, 0)
    with ws.engine.connect() as conn:
        hard = suppression.suppressed_ids(conn, ids.values(), "transactional")
        marketing = suppression.suppressed_ids(conn, ids.values(), "marketing")
        status = dict(conn.execute(select(outbox.c.to_email, outbox.c.status)).all())
        kinds = conn.execute(select(activity.c.lead_id, activity.c.kind, activity.c.outbox_id, activity.c.meta)
                             .where(activity.c.kind.in_(("bounce", "unsubscribe")))).all()
    # hard bounces and the complaint stop all mail; the soft bounce (mailbox full) and the auto-reply nothing
    assert hard == {ids["ann"], ids["bob"], ids["dave"], ids["erin"]}
    assert marketing == hard
    assert status == {PEOPLE["ann"]: "bounced", PEOPLE["bob"]: "bounced", PEOPLE["cy"]: "failed",
                      PEOPLE["dave"]: "bounced", PEOPLE["erin"]: "sent", PEOPLE["fay"]: "sent"}
    assert sorted((r.lead_id, r.kind) for r in kinds) == sorted(
        [(ids["ann"], "bounce"), (ids["bob"], "bounce"), (ids["dave"], "bounce"), (ids["erin"], "unsubscribe")])
    assert all(r.outbox_id is not None for r in kinds)
    ann = _lead(ws, ids["ann"])
    assert ann.bounced and ann.bounced_at is not None and ann.bounce_reason.startswith("5.1.1 550 5.1.1")
    assert _lead(ws, ids["bob"]).bounce_reason.startswith("5.1.1")  # Exim's 5.0.0 refined from the diagnostic
    erin = _lead(ws, ids["erin"])
    assert erin.opted_out and not erin.bounced
    with ws.engine.connect() as conn:  # nothing personal kept in mail_feedback
        reasons = conn.execute(select(mail_feedback.c.reason)).scalars().all()
    assert reasons and not any("@acme.test" in r or "@globex.test" in r for r in reasons)
    # the email report sees them: 3 hard, 1 soft, 1 complaint (and the complaint's opt-out)
    with ws.engine.connect() as conn:
        scope = Scope(Period(clock.now() - timedelta(days=1), clock.now() + timedelta(days=1)), clock.now())
        cells = cohort_cells(conn, scope)
        total = next(r for r in emails_report(conn, scope).rows if r["level"] == "total")
    assert sum(c["bounced_hard"] for c in cells) == 3 and sum(c["bounced_soft"] for c in cells) == 1
    assert (total["sent"], total["delivered"], total["bounced_hard"], total["bounced_soft"]) == (6, 2, 3, 1)
    assert (total["complaints"], total["unsubscribes"]) == (1, 1)
    # re-reading the same reports (moved back to new/) counts nothing twice
    md = mailbox.Maildir(str(box), create=False)
    for key in list(md.iterkeys()):
        msg = md.get_message(key)
        msg.set_subdir("new")
        md[key] = msg
    again = process_maildir(ws, box)
    assert again.feedback.duplicates == 5 and again.feedback.processed == 0
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(activity).where(
            activity.c.kind.in_(("bounce", "unsubscribe")))).scalar() == 4


def test_malformed_and_unknown_reports_are_logged_and_the_rest_processed(ws, sink, clock, tmp_path, caplog) -> None:
    ids, mids = _setup(ws, sink, clock)
    box = tmp_path / "bounces"
    _drop(box,
          _report("malformed_no_status.eml", PEOPLE["ann"], mids["ann"]),
          _report("postfix_user_unknown.eml", "nobody@unknown.test", "<not-ours@elsewhere.test>"),
          _report("outlook_mailbox_unavailable.eml", PEOPLE["dave"], mids["dave"]))
    res = process_maildir(ws, box)
    assert (res.feedback.malformed, res.feedback.unmatched, res.feedback.hard) == (1, 1, 1)
    assert any("Status 'mailbox on fire'" in e for e in res.feedback.errors)
    assert any("nobody@unknown.test" in e for e in res.feedback.errors)
    assert "unreadable report" in caplog.text and "not applied (unmatched)" in caplog.text
    with ws.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, ids.values(), "transactional") == {ids["dave"]}
        outcomes = sorted(conn.execute(select(mail_feedback.c.outcome)).scalars())
    assert outcomes == ["applied", "malformed", "unmatched"]
    with pytest.raises(Exception, match="not a Maildir"):
        process_maildir(ws, tmp_path / "missing")


def test_soft_bounces_suppress_at_the_threshold(ws, sink, clock, tmp_path) -> None:
    ws.settings.mail.soft_bounce_limit = 3
    ids, mids = _setup(ws, sink, clock)
    box = tmp_path / "bounces"
    for attempt in range(1, 4):
        if attempt > 1:
            mids = _send(ws, sink, clock.now(), ["cy"], attempt)
        report = _report("gmail_mailbox_full.eml", PEOPLE["cy"], mids["cy"]).replace(
            b"6b1c0f9e.050a0220", f"6b1c0f9e.{attempt}".encode())  # each DSN has its own Message-ID
        _drop(box, report)
        res = process_maildir(ws, box)
        assert res.feedback.soft == 1
        with ws.engine.connect() as conn:
            blocked = suppression.suppressed_ids(conn, [ids["cy"]], "marketing")
        assert blocked == ({ids["cy"]} if attempt == 3 else set()), attempt
        assert res.feedback.suppressed_soft == (1 if attempt == 3 else 0)
        clock.advance(timedelta(days=1))
    cy = _lead(ws, ids["cy"])
    assert cy.bounced and cy.bounce_reason.startswith("3 soft bounces in 30 days")


def test_a_dsn_in_the_unsubscribe_mailbox_is_a_report_not_an_invalid_unsubscribe(ws, sink, clock, tmp_path) -> None:
    ids, mids = _setup(ws, sink, clock)
    box = tmp_path / "unsub"
    _drop(box, _report("postfix_user_unknown.eml", PEOPLE["ann"], mids["ann"]))
    res = process_unsubscribes(ws, box)
    assert (res.processed, res.invalid, res.unsubscribed, res.reports) == (1, 0, 0, 1)
    assert res.feedback.feedback.hard == 1
    with ws.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [ids["ann"]], "transactional") == {ids["ann"]}


def test_cli_reads_a_maildir_and_refuses_what_is_not_one(tmp_path, capsys) -> None:
    import json

    from cli_support import run_cli

    db = f"sqlite:///{tmp_path / 'ws.db'}"
    assert run_cli(capsys, "init", "--db", db)[0] == 0
    box = tmp_path / "bounces"
    _drop(box, _report("postfix_user_unknown.eml", "nobody@unknown.test", "<x@elsewhere.test>"),
          _report("auto_reply.eml", "", ""))
    code, out, err = run_cli(capsys, "mail", "bounces", str(box), "--db", db)
    assert code == 0, err
    got = json.loads(out)
    assert (got["messages"], got["reports"], got["not_reports"], got["unmatched"]) == (2, 1, 1, 1)
    assert "warning: hard_bounce for nobody@unknown.test" in err
    code, _, err = run_cli(capsys, "mail", "bounces", str(tmp_path / "nope"), "--db", db)
    assert code != 0 and "not a Maildir (no new/ directory)" in err
    code, _, err = run_cli(capsys, "mail", "bounces", "--db", db)
    assert code != 0 and "give a MAILDIR, --imap URL, or set mail.bounce_imap_url" in err
    # an IMAP server that is not there: one line, exit non-zero
    code, out, err = run_cli(capsys, "mail", "bounces", "--imap", "imap://u:p@127.0.0.1:1/INBOX", "--db", db)
    assert code != 0 and "imap://127.0.0.1:1/INBOX: cannot connect" in err


def test_a_plain_text_bounce_with_x_failed_recipients(ws, sink, clock, tmp_path) -> None:
    """Older Exim (and some appliances) bounce without RFC 3464 parts: X-Failed-Recipients names the address."""
    ids, mids = _setup(ws, sink, clock)
    box = tmp_path / "bounces"
    _drop(box, _report("exim_plain_text_legacy.eml", PEOPLE["fay"], mids["fay"]))
    res = process_maildir(ws, box)
    assert (res.reports, res.feedback.hard) == (1, 1)
    fay = _lead(ws, ids["fay"])
    assert fay.bounced and fay.bounce_reason == "5.0.0 host mail.oldco.test [203.0.113.44]: 550 No such user here"
    with ws.engine.connect() as conn:
        assert conn.execute(select(outbox.c.status).where(outbox.c.lead_id == ids["fay"])).scalar() == "bounced"


def test_verp_envelope_matches_a_bounce_that_quotes_nothing(ws, sink, clock, tmp_path) -> None:
    """With mail.bounce_address the envelope sender carries the message ref (VERP): a bounce from a forwarder
    that names another address and attaches nothing still finds its message."""
    ws.settings.mail.bounce_address = "bounces@example.com"
    ids, _ = _setup(ws, sink, clock)
    envelope = {m.rcpt_tos[0]: m.mail_from for m in sink.messages}
    verp_address = envelope[PEOPLE["cy"]]
    with ws.engine.connect() as conn:
        ref = conn.execute(select(outbox.c.message_ref).where(outbox.c.lead_id == ids["cy"])).scalar_one()
    assert verp_address == f"bounces+{ref}@example.com"
    box = tmp_path / "bounces"
    raw = (FIXTURES / "verp_no_original.eml").read_text().replace("@@VERP@@", verp_address)
    _drop(box, raw.replace("\n", "\r\n").encode())
    res = process_maildir(ws, box)
    assert (res.feedback.hard, res.feedback.unmatched) == (1, 0)
    with ws.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, ids.values(), "transactional") == {ids["cy"]}


def test_a_bounce_of_a_test_send_suppresses_nobody(ws, sink, clock, tmp_path) -> None:
    """A seed-list test to a lead's own address bounced: it is about the test (<test.…>), not the lead's mail."""
    ids, _ = _setup(ws, sink, clock)
    box = tmp_path / "bounces"
    _drop(box, _report("postfix_user_unknown.eml", PEOPLE["ann"], "<test.0123456789abcdef@example.com>"))
    res = process_maildir(ws, box)
    assert (res.feedback.ignored, res.feedback.hard) == (1, 0)
    with ws.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, ids.values(), "transactional") == set()


def test_erasure_after_bounces_and_complaints_leaves_no_address(ws, sink, clock, tmp_path) -> None:
    """What bounce processing stores (mail_feedback, lead.bounce_reason, activity meta, suppression detail)
    holds nothing `nurture leads erase` cannot remove: a scan of every text column finds no address after."""
    from sqlalchemy import JSON, String, Text, cast

    from nurture_tui.compliance.erasure import erase
    from nurture_tui.store.models import metadata

    _, mids = _setup(ws, sink, clock)
    box = tmp_path / "bounces"
    _drop(box, _report("postfix_user_unknown.eml", PEOPLE["ann"], mids["ann"]),
          _report("yahoo_arf_complaint.eml", PEOPLE["erin"], mids["erin"]))
    assert process_maildir(ws, box).feedback.processed == 2
    with write_tx(ws.engine) as conn:
        for who in ("ann", "erin"):
            erase(conn, PEOPLE[who], now=clock.now(), settings=ws.settings, user="dpo")
    hits = []
    with ws.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for col in table.columns:
                if isinstance(col.type, (String, Text, JSON)) or "JSON" in type(col.type).__name__:
                    for who in ("ann", "erin"):
                        text = func.lower(cast(col, Text))
                        if conn.execute(select(func.count()).select_from(table)
                                        .where(text.contains(PEOPLE[who], autoescape=True))).scalar():
                            hits.append(f"{table.name}.{col.name} ({who})")
    assert hits == []
