"""Issue 20 item 6: what reaches the relay is CRLF-only, byte for byte (the raw DATA at an aiosmtpd sink)."""

from __future__ import annotations

import re

from mail_support import add_people, save_template
from sqlalchemy import insert

from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.mail.dispatch import close_dispatcher, dispatch_due
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import outbox

# one line, far longer than 76 characters, non-ASCII, '=' and a tab: quoted-printable must fold it (soft breaks)
ONE_LINE_HTML = ('<html><body><p>Hi {{ lead.first_name }}, here is the guide — grüße, café = 100%\t'
                 + "lorem ipsum dolor sit amet " * 12
                 + '<a href="https://example.com/guide?a=1&amp;b=2">the guide</a></p></body></html>')

BARE_LF = re.compile(rb"(?<!\r)\n")
BARE_CR = re.compile(rb"\r(?!\n)")


def _send(workspace, clock, *, html: str, text: str | None) -> bytes:
    with SmtpSink() as sink:
        workspace.settings.mail.smtp_url = sink.url
        workspace.settings.mail.rate_per_second = 1000
        try:
            now = clock.now()
            ids = add_people(workspace, now)
            save_template(workspace, now, "oneline", subject="Ünïcode subject " + "long words " * 12,
                          html=html, text=text)
            with write_tx(workspace.engine) as conn:
                conn.execute(insert(outbox), compose_outbox_rows(
                    conn, [SendRequest(ids["bob"], "oneline", None, None, None, "s1", "bob:s1:0")],
                    workspace.settings, now))
            assert dispatch_due(workspace).sent == 1
            assert sink.wait_for(1)
            return sink.messages[0].data
        finally:
            close_dispatcher(workspace)


def _assert_crlf_only(raw: bytes) -> None:
    assert b"\n" in raw  # sanity: the message has lines at all
    bare_lf = [raw[max(0, m.start() - 40):m.start() + 1] for m in BARE_LF.finditer(raw)]
    assert not bare_lf, f"bare LF in DATA, e.g. {bare_lf[:3]}"
    assert not BARE_CR.search(raw), "bare CR in DATA"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "a line over the SMTP limit"


def test_one_line_html_template_is_crlf_on_the_wire(workspace, clock) -> None:
    raw = _send(workspace, clock, html=ONE_LINE_HTML, text=None)
    _assert_crlf_only(raw)
    assert b"=\r\n" in raw  # quoted-printable soft breaks were needed, and they are CRLF
    # and it still parses back to what was written
    from email import message_from_bytes
    from email.policy import default

    msg = message_from_bytes(raw, policy=default)
    html = msg.get_body(("html",)).get_content()
    assert "grüße, café = 100%" in html and "Hi Bob," in html


def test_one_line_text_part_and_mixed_line_ends_are_crlf_on_the_wire(workspace, clock) -> None:
    text = "One line of text only, long enough to need a soft break: " + "ipsum " * 30
    html = "<p>first</p>\n<p>second</p>\r<p>third</p>\r\n<p>" + "x" * 200 + "</p>"
    _assert_crlf_only(_send(workspace, clock, html=html, text=text))
