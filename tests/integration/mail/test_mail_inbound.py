"""The mailto: form of List-Unsubscribe: requests arrive by SMTP into a Maildir and are applied once."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path
from urllib.parse import unquote

from mail_support import add_people, save_template
from sqlalchemy import insert, select

from nurture_tui.mail import suppression
from nurture_tui.mail.compose import Composer, SendRequest, compose_outbox_rows, finalize
from nurture_tui.mail.inbound import process_maildir
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, outbox


def test_mailto_unsubscribes_are_applied_once(workspace, clock, tmp_path: Path) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    save_template(workspace, now)
    with write_tx(workspace.engine) as conn:
        rows = compose_outbox_rows(conn, [SendRequest(ids["bob"], "welcome", idempotency_key="b1")],
                                   workspace.settings, now)
        conn.execute(insert(outbox), rows)
    sent = finalize(rows[0], Composer(workspace.settings.mail, now))
    mailto = re.search(r"<mailto:([^?]+)\?subject=([^>]+)>", sent["headers"]["List-Unsubscribe"])
    to, subject = mailto.group(1), unquote(mailto.group(2))
    tampered = subject[:-3] + ("AAA" if not subject.endswith("AAA") else "BBB")
    box = tmp_path / "unsub"
    with SmtpSink(maildir=box) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for subj in (subject, tampered, "please remove me"):
                smtp.sendmail("bob@acme.test", [to], f"From: bob@acme.test\r\nTo: {to}\r\nSubject: {subj}\r\n\r\n"
                              .encode())
        assert sink.wait_for(3)
    res = process_maildir(workspace, box)
    assert (res.processed, res.unsubscribed, res.invalid) == (3, 1, 2)
    with workspace.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [ids["bob"]], "marketing") == {ids["bob"]}
        assert suppression.suppressed_ids(conn, [ids["bob"]], "newsletter") == set()
        (act,) = conn.execute(select(activity)).all()
    assert act.kind == "unsubscribe" and act.meta["via"] == "mailto" and act.outbox_id is not None
    again = process_maildir(workspace, box)
    assert again.processed == 0
