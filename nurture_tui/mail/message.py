"""Outbox row → MIME message (multipart/alternative: text/plain + text/html).

Header values come from the composed row; `EmailMessage` (policy `SMTP`) refuses CR/LF inside a header
value, which is the second line of defence after `templates.one_line` at compose time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

#: Header names compose may set; anything else in a row's `headers` is ignored.
ALLOWED_HEADERS = ("From", "To", "Reply-To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def build_message(row: Mapping[str, Any], now: datetime, *, default_from: str | None = None) -> EmailMessage:
    """Rows without an HTML part (e.g. the engine's rep notifications) become plain text messages."""
    msg = EmailMessage(policy=SMTP)
    headers = row.get("headers") or {}
    for name in ALLOWED_HEADERS:
        if headers.get(name):
            msg[name] = headers[name]
    if "From" not in msg and default_from:
        msg["From"] = default_from
    if "To" not in msg:
        msg["To"] = row["to_email"]
    if "Message-ID" not in msg and row.get("message_id"):
        msg["Message-ID"] = row["message_id"]
    msg["Subject"] = row["subject"]
    msg["Date"] = format_datetime(now)
    msg.set_content(row["text"] or "", subtype="plain", charset="utf-8")
    if row.get("html"):
        msg.add_alternative(row["html"], subtype="html", charset="utf-8")
    return msg
