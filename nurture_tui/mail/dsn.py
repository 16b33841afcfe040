"""Parse delivery reports that come back by mail, with the standard library `email` package:

- DSNs (RFC 3464: `multipart/report; report-type=delivery-status`), one `FeedbackItem` per recipient
  whose `Action` is `failed` (a bounce) or `delayed` (a warning, recorded and otherwise ignored);
- ARF complaints (RFC 5965: `multipart/report; report-type=feedback-report`, `Feedback-Type: abuse`), as
  sent by Yahoo's, Microsoft's and other feedback loops.

The original message is found through its Message-ID in the report's third part (`message/rfc822` or
`text/rfc822-headers`), else the report's own `In-Reply-To`/`References`; the recipient through
`Final-Recipient`/`Original-Recipient` (DSN) or `Original-Rcpt-To`/the original `To` (ARF).

Hard or soft: `5.1.x` (bad address), `5.2.1` (mailbox disabled) and other 5.x.x codes are hard. Soft:
every 4.x.x, `5.2.2` (mailbox full), `5.3.x`/`5.4.x` (system and routing trouble on their side) and
`5.7.x` (policy: spam blocks, and 5.7.26 "unauthenticated", which is a problem with *our* SPF/DKIM/DMARC,
not with the address). Soft bounces count towards `mail.soft_bounce_limit`.

A plain-text bounce with an `X-Failed-Recipients` header (older Exim, some appliances) is read too: the
addresses from the header, the status from the first SMTP answer in the text.

Anything that is not a report gives `NotAReport`; a report without usable recipient fields gives
`MalformedReport` — both carry a one-line reason for the log.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from ..config import MailSettings

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MSGID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
KINDS = ("hard_bounce", "soft_bounce", "delayed", "complaint")


class NotAReport(ValueError):
    """The message is no delivery or feedback report (an auto-reply, a person writing back …)."""


class MalformedReport(ValueError):
    """A report whose machine-readable part is missing or unusable."""


@dataclass(frozen=True)
class FeedbackItem:
    kind: str  # one of KINDS
    recipient: str | None  # the address the report is about (lower-case), when it says
    status: str | None  # enhanced status code, e.g. "5.1.1"
    reason: str  # diagnostic text (one line)
    message_ids: tuple[str, ...]  # Message-IDs of the original message, most specific first
    at: datetime | None  # when it happened, per the report
    key: str  # identity of this report item (the basis of its dedupe key)


def classify(status: str | None, action: str = "failed") -> str:
    """hard_bounce / soft_bounce / delayed for a DSN action and enhanced status code."""
    if action == "delayed":
        return "delayed"
    if not status or status.startswith("4"):
        return "soft_bounce" if status else "hard_bounce"
    cls, subject, detail = status.split(".")
    if cls == "5" and (subject in ("3", "4", "7") or (subject == "2" and detail == "2")):
        return "soft_bounce"
    return "hard_bounce"


def verp(mail: MailSettings, ref: str | None) -> str | None:
    """The VERP envelope sender for a message (`mail.bounce_address` LOCAL@DOMAIN → LOCAL+REF@DOMAIN)."""
    if not mail.bounce_address or not ref:
        return None
    local, _, domain = mail.bounce_address.strip().partition("@")
    return f"{local}+{ref}@{domain}"


def _verp_ids(msg: Message) -> list[str]:
    """Message refs carried by VERP addresses the report was delivered to (as `<ref@verp>` ids)."""
    values = [str(msg.get(h, "")) for h in ("Delivered-To", "X-Original-To", "Envelope-To", "To")]
    out = []
    for _, address in getaddresses(values):
        local = address.split("@", 1)[0]
        if "+" in local:
            ref = local.split("+", 1)[1]
            if re.fullmatch(r"[0-9a-f]{20}", ref):
                out.append(f"<{ref}@verp>")
    return out


def one_line(text: str, limit: int = 500) -> str:
    return " ".join(str(text).split())[:limit]


def _addr(value: str | None) -> str | None:
    """`rfc822; Ann@Example.com` (or a plain address) → `ann@example.com`."""
    if not value:
        return None
    value = str(value).split(";", 1)[-1] if ";" in str(value) else str(value)
    found = [a for _, a in getaddresses([value]) if "@" in a]
    return found[0].strip().lower() if found else None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None


def _original_headers(report: Message) -> Message | None:
    """The headers of the message the report is about (third part), when included."""
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
            return HeaderParser().parsestr(text)
    return None


def _message_ids(report: Message, original: Message | None) -> tuple[str, ...]:
    ids: list[str] = []
    if original is not None:
        ids += _MSGID.findall(str(original.get("Message-ID", "")))
    for name in ("In-Reply-To", "References", "X-Original-Message-ID"):
        ids += _MSGID.findall(str(report.get(name, "")))
    return tuple(dict.fromkeys(ids + _verp_ids(report)))


def _identity(report: Message, raw: bytes) -> str:
    own = str(report.get("Message-ID", "")).strip()
    return own or "sha256:" + hashlib.sha256(raw).hexdigest()


def parse_report(raw: bytes) -> list[FeedbackItem]:
    """The feedback items in one message (raises NotAReport / MalformedReport)."""
    msg = message_from_bytes(raw)
    if msg.get_content_type() != "multipart/report":
        if msg.get("X-Failed-Recipients"):
            return _parse_plain_bounce(msg, raw)
        raise NotAReport(f"content type {msg.get_content_type()}, not multipart/report")
    report_type = str(msg.get_param("report-type", "") or "").lower()
    parts = {p.get_content_type(): p for p in msg.walk()}
    if report_type == "feedback-report" or "message/feedback-report" in parts:
        return _parse_arf(msg, parts.get("message/feedback-report"), raw)
    if report_type == "delivery-status" or "message/delivery-status" in parts:
        return _parse_dsn(msg, parts.get("message/delivery-status"), raw)
    raise NotAReport(f"multipart/report of type {report_type or '?'}, neither delivery-status nor feedback-report")


def _parse_dsn(msg: Message, status_part: Message | None, raw: bytes) -> list[FeedbackItem]:
    if status_part is None:
        raise MalformedReport("delivery-status report without a message/delivery-status part")
    payload = status_part.get_payload()
    blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
    if len(blocks) < 2:
        raise MalformedReport("message/delivery-status without per-recipient fields")
    per_message, recipients = blocks[0], blocks[1:]
    original = _original_headers(msg)
    ids = _message_ids(msg, original)
    identity = _identity(msg, raw)
    arrival = _when(per_message.get("Arrival-Date"))
    items: list[FeedbackItem] = []
    for block in recipients:
        action = str(block.get("Action", "")).strip().lower()
        if action not in ("failed", "delayed"):
            continue  # delivered / relayed / expanded: nothing went wrong
        recipient = _addr(block.get("Final-Recipient")) or _addr(block.get("Original-Recipient"))
        status_match = _STATUS.search(str(block.get("Status", "")))
        if recipient is None and not ids:
            raise MalformedReport("a failed recipient without Final-Recipient, and no original Message-ID")
        if status_match is None:
            raise MalformedReport(f"recipient {recipient or '?'}: Status {block.get('Status')!r} is no status code")
        status = status_match.group(0)
        diagnostic = block.get("Diagnostic-Code") or block.get("X-Exim-Diagnostic") or ""
        finer = _STATUS.search(str(diagnostic))
        if status.endswith(".0.0") and finer and finer.group(1) == status[0]:
            status = finer.group(0)  # Exim reports 5.0.0 with the remote server's 5.1.1 in the diagnostic
        reason = one_line(str(diagnostic).split(";", 1)[-1] if diagnostic else f"status {status}")
        items.append(FeedbackItem(classify(status, action), recipient, status, reason, ids,
                                  _when(block.get("Last-Attempt-Date")) or arrival,
                                  f"dsn|{identity}|{recipient}|{action}"))
    if not items and not any(str(b.get("Action", "")).strip() for b in recipients):
        raise MalformedReport("no recipient block has an Action field")
    return items


def is_report(msg: Message) -> bool:
    """A delivery or feedback report (what `parse_report` reads), by its headers alone."""
    return msg.get_content_type() == "multipart/report" or bool(msg.get("X-Failed-Recipients"))


def _parse_plain_bounce(msg: Message, raw: bytes) -> list[FeedbackItem]:
    """A bounce without RFC 3464 parts (older Exim, some appliances): the failed addresses are in the
    `X-Failed-Recipients` header, the server's answer and the original headers in the text."""
    recipients = [a.strip().lower() for _, a in getaddresses([str(msg.get("X-Failed-Recipients", ""))]) if "@" in a]
    if not recipients:
        raise MalformedReport("X-Failed-Recipients names no address")
    body = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            body += payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
    found = _STATUS.search(body)
    smtp = re.search(r"\b([45])\d\d[ -]", body)
    status = found.group(0) if found else (f"{smtp.group(1)}.0.0" if smtp else "5.0.0")
    line = next((ln for ln in body.splitlines() if _STATUS.search(ln) or re.search(r"\b[45]\d\d[ -]", ln)), "")
    ids = tuple(dict.fromkeys(_MSGID.findall(str(msg.get("References", "")) + str(msg.get("In-Reply-To", "")))
                              + re.findall(r"(?im)^message-id:\s*(<[^<>\s]+@[^<>\s]+>)", body)))
    identity = _identity(msg, raw)
    return [FeedbackItem(classify(status), r, status, one_line(line or f"status {status}"), ids,
                         _when(msg.get("Date")), f"plain|{identity}|{r}") for r in recipients]


def _parse_arf(msg: Message, feedback: Message | None, raw: bytes) -> list[FeedbackItem]:
    if feedback is None:
        raise MalformedReport("feedback report without a message/feedback-report part")
    fields = feedback.get_payload()
    if isinstance(fields, list):  # parsed as an embedded message: its headers are the fields
        fields = fields[0] if fields and isinstance(fields[0], Message) else None
    if not isinstance(fields, Message):
        raise MalformedReport("message/feedback-report part has no fields")
    ftype = str(fields.get("Feedback-Type", "")).strip().lower()
    if not ftype:
        raise MalformedReport("message/feedback-report without Feedback-Type")
    if ftype not in ("abuse", "fraud", "virus", "other"):
        raise NotAReport(f"feedback report of type {ftype} (not a complaint)")
    original = _original_headers(msg)
    ids = _message_ids(msg, original)
    recipient = _addr(fields.get("Original-Rcpt-To")) or (_addr(original.get("To")) if original is not None else None)
    if recipient is None and not ids:
        raise MalformedReport("complaint names neither the recipient nor the original Message-ID")
    reporter = fields.get("User-Agent") or fields.get("Reporting-MTA") or "a mailbox provider"
    reason = one_line(f"{ftype} report from {reporter}")
    at = _when(fields.get("Arrival-Date") or fields.get("Received-Date"))
    return [FeedbackItem("complaint", recipient, None, reason, ids, at, f"arf|{_identity(msg, raw)}|{recipient}")]
