"""The bounce-mailbox reader against a real IMAP server (pymap, in-memory backend, in a child process): the
UNSEEN reports are applied and flagged \\Seen, a second read finds nothing new, a message marked unseen again
counts nothing twice, and a wrong password is one line with nothing marked."""

from __future__ import annotations

import imaplib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mail_support import add_lead, save_template
from sqlalchemy import insert, update

from nurture_tui.mail import suppression
from nurture_tui.mail.bouncebox import process_imap
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import outbox

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
pymap = pytest.importorskip("pymap", reason="pymap (a dev dependency) provides the test IMAP server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def imap_server() -> Iterator[int]:
    port = _free_port()
    run = "import sys; from pymap.main import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", run, "--host", "127.0.0.1", "--port", str(port), "--no-tls",
                             "dict", "--demo-data", "--demo-user", "bounces", "--demo-password", "s3cret"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the pymap IMAP server did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _imap(port: int) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("bounces", "s3cret")
    return c


def test_imap_folder_is_read_once(workspace, clock, imap_server) -> None:
    now = clock.now()
    ann = add_lead(workspace, "ann@acme.test", now, first_name="Ann")
    erin = add_lead(workspace, "erin@yahoo.test", now, first_name="Erin")
    save_template(workspace, now)
    with write_tx(workspace.engine) as conn:
        rows = compose_outbox_rows(conn, [SendRequest(ann, "welcome", idempotency_key="a:1"),
                                          SendRequest(erin, "welcome", idempotency_key="e:1")], workspace.settings, now)
        conn.execute(insert(outbox), rows)
        conn.execute(update(outbox).values(status="sent", sent_at=now))
    mids = {r["to_email"]: r["message_id"] for r in rows}
    c = _imap(imap_server)
    c.create("Bounces")
    for name, to in (("postfix_user_unknown.eml", "ann@acme.test"), ("yahoo_arf_complaint.eml", "erin@yahoo.test"),
                     ("auto_reply.eml", "x@y.test")):
        raw = (FIXTURES / name).read_text().replace("@@RECIPIENT@@", to).replace("@@MESSAGE_ID@@", mids.get(to, ""))
        assert c.append("Bounces", None, None, raw.replace("\n", "\r\n").encode())[0] == "OK"
    c.logout()

    url = f"imap://bounces:s3cret@127.0.0.1:{imap_server}/Bounces"
    res = process_imap(workspace, url, timeout=10)
    assert res.error is None
    assert (res.messages, res.reports, res.not_reports) == (3, 2, 1)
    assert (res.feedback.hard, res.feedback.complaints) == (1, 1)
    with workspace.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [ann, erin], "transactional") == {ann, erin}
    assert process_imap(workspace, url, timeout=10).messages == 0  # all \\Seen now

    c = _imap(imap_server)  # someone marks them unread again: read again, nothing counted twice
    c.select('"Bounces"')
    _, data = c.uid("SEARCH", "ALL")
    for uid in data[0].split():
        c.uid("STORE", uid, "-FLAGS", "(\\Seen)")
    c.logout()
    again = process_imap(workspace, url, timeout=10)
    assert again.messages == 3 and again.feedback.duplicates == 2 and again.feedback.processed == 0

    wrong = process_imap(workspace, f"imap://bounces:nope@127.0.0.1:{imap_server}/Bounces", timeout=10)
    assert wrong.error is not None and wrong.messages == 0 and "\n" not in wrong.error
