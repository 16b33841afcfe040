"""Outbox row → RFC 5322 message bytes: multipart/alternative (text/plain + text/html), quoted-printable.

Built directly rather than through `email.message.EmailMessage`, which costs ~2 ms of CPU per message
(it would cap a dispatcher at a few hundred messages per second); the output parses back with the
`email` package (tests do exactly that). A header value containing CR or LF is refused with ValueError:
the second line of defence after `templates.one_line` at compose time.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import datetime
from email.header import Header
from email.utils import format_datetime
from typing import Any

#: Header names compose may set; anything else in a row's `headers` is ignored.
ALLOWED_HEADERS = ("From", "To", "Reply-To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post",
                   "List-Id", "Feedback-ID",
                   "X-Nurture-Test")  # the last: template editor test sends (mail/testsend.py)
_CRLF = "\r\n"


def _header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} contains a line break")
    if value.isascii() and len(name) + len(value) < 996:
        return f"{name}: {value}"
    # non-ASCII (or very long) values: RFC 2047 encoded words, folded under the line-length limit
    return f"{name}: " + Header(value, "utf-8" if not value.isascii() else "us-ascii",
                                header_name=name).encode(linesep=_CRLF)


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends only.

    `binascii.b2a_qp` picks its line end from the first line break in the input: text without one (a
    one-line HTML template) gets bare-LF soft breaks (`=\\n`), which relays refuse with a 5xx. So the
    output is normalised: every line break in it (hard ones from the text, soft ones from the encoder) is
    CRLF. (Every CR and LF of the input is a line break, normalised first, so none is data.)"""
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", _CRLF).encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _part(subtype: str, text: str) -> bytes:
    head = (f"Content-Type: text/{subtype}; charset=utf-8{_CRLF}"
            f"Content-Transfer-Encoding: quoted-printable{_CRLF}{_CRLF}")
    return head.encode("ascii") + _qp(text)


def build_message(row: Mapping[str, Any], now: datetime, *, default_from: str | None = None) -> bytes:
    """The message as sent. Rows without HTML (e.g. the engine's rep notifications) are text/plain only."""
    headers = row.get("headers") or {}
    lines = [_header(name, str(headers[name])) for name in ALLOWED_HEADERS if headers.get(name)]
    if not headers.get("From") and default_from:
        lines.append(_header("From", default_from))
    if not headers.get("To"):
        lines.append(_header("To", str(row["to_email"])))
    if not headers.get("Message-ID") and row.get("message_id"):
        lines.append(_header("Message-ID", str(row["message_id"])))
    lines.append(_header("Subject", str(row["subject"] or "")))
    lines.append(_header("Date", format_datetime(now)))
    lines.append("MIME-Version: 1.0")
    if not row.get("html"):
        return (_CRLF.join(lines) + _CRLF).encode("ascii") + _part("plain", row["text"] or "")
    boundary = f"=_nurture_{row.get('message_ref') or row.get('id') or 'part'}"
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    sep = f"{_CRLF}--{boundary}{_CRLF}".encode("ascii")
    return b"".join((
        (_CRLF.join(lines) + _CRLF + _CRLF + "This is a multi-part message in MIME format.").encode("ascii"),
        sep, _part("plain", row["text"] or ""),
        sep, _part("html", row["html"]),
        f"{_CRLF}--{boundary}--{_CRLF}".encode("ascii"),
    ))
