"""Parsing delivery and feedback reports (mail/dsn.py) and ESP events (mail/esp_events.py): classification,
and bad input named in one line. No database."""

from __future__ import annotations

import pytest

from nurture_tui.mail.dsn import MalformedReport, NotAReport, classify, parse_report
from nurture_tui.mail.esp_events import BadEvent, parse_events


def _report(report_type: str, second: str, third: str = "") -> bytes:
    parts = ["--b\r\nContent-Type: text/plain\r\n\r\nA report.\r\n", f"--b\r\n{second}\r\n"]
    if third:
        parts.append(f"--b\r\n{third}\r\n")
    return (f"From: mailer-daemon@mx.test\r\nMessage-ID: <r1@mx.test>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n'
            + "".join(parts) + "--b--\r\n").encode()


ORIGINAL = "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <abc@example.com>\r\nTo: ann@acme.test\r\n"


@pytest.mark.parametrize(("status", "action", "kind"), [
    ("5.1.1", "failed", "hard_bounce"), ("5.0.0", "failed", "hard_bounce"), ("5.2.1", "failed", "hard_bounce"),
    ("5.2.2", "failed", "soft_bounce"), ("5.7.26", "failed", "soft_bounce"), ("5.4.4", "failed", "soft_bounce"),
    ("4.2.2", "failed", "soft_bounce"), ("4.4.1", "delayed", "delayed"),
])
def test_classification(status: str, action: str, kind: str) -> None:
    assert classify(status, action) == kind


def test_delivered_recipients_give_nothing_and_several_recipients_each_an_item() -> None:
    blocks = ("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
              "Final-Recipient: rfc822; a@x.test\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n"
              "Final-Recipient: rfc822; B@X.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
              "Final-Recipient: rfc822; c@x.test\r\nAction: delayed\r\nStatus: 4.4.7\r\n")
    items = parse_report(_report("delivery-status", blocks, ORIGINAL))
    assert [(i.recipient, i.kind, i.message_ids) for i in items] == [
        ("b@x.test", "hard_bounce", ("<abc@example.com>",)), ("c@x.test", "delayed", ("<abc@example.com>",))]
    assert len({i.key for i in items}) == 2


@pytest.mark.parametrize(("raw", "error", "text"), [
    (b"From: a@b.test\r\nSubject: hello\r\n\r\nhi\r\n", NotAReport, "content type text/plain"),
    (_report("disposition-notification", "Content-Type: message/disposition-notification\r\n\r\nX: y\r\n"),
     NotAReport, "neither delivery-status nor feedback-report"),
    (_report("delivery-status", "Content-Type: text/plain\r\n\r\nno status part\r\n"), MalformedReport,
     "without a message/delivery-status part"),
    (_report("delivery-status", "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n"),
     MalformedReport, "without per-recipient fields"),
    (_report("delivery-status", "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
             "Action: failed\r\nStatus: 5.1.1\r\n"), MalformedReport, "without Final-Recipient"),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nUser-Agent: x\r\n"),
     MalformedReport, "without Feedback-Type"),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: not-spam\r\n"),
     NotAReport, "feedback report of type not-spam"),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"),
     MalformedReport, "neither the recipient nor the original Message-ID"),
])
def test_bad_reports_are_named(raw: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        parse_report(raw)


def test_arf_without_recipient_uses_the_original_to() -> None:
    (item,) = parse_report(_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\n"
                                   "Feedback-Type: abuse\r\nUser-Agent: SomeFBL/1.0\r\nVersion: 1\r\n", ORIGINAL))
    assert (item.kind, item.recipient, item.message_ids) == ("complaint", "ann@acme.test", ("<abc@example.com>",))
    assert item.reason == "abuse report from SomeFBL/1.0"


def test_esp_event_shapes() -> None:
    shape, items, errors = parse_events({"events": [{"type": "complaint", "email": " Ann@Acme.test "},
                                                    {"type": "hard_bounce", "email": "not an address"},
                                                    {"type": "soft_bounce", "message_id": "abc@x.test",
                                                     "at": "2026-03-02T09:15:00"}]})
    assert shape == "generic" and [i.recipient for i in items] == ["ann@acme.test"]
    assert errors == ["events[1]: email 'not an address' is not an address", "events[2]: at needs a UTC offset"]
    shape, items, errors = parse_events([{"event": "open", "email": "a@x.test"},
                                         {"event": "bounce", "email": "b@x.test", "status": "4.2.2",
                                          "sg_event_id": "e1"}, "junk"])
    assert shape == "sendgrid" and [(i.recipient, i.kind) for i in items] == [("b@x.test", "soft_bounce")]
    assert errors == ["events[2]: not an object"]
    with pytest.raises(BadEvent, match="expected"):
        parse_events({"hello": []})
