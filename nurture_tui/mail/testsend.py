"""Test sends from the template editor: one message to an address the operator types, through the configured
SMTP relay, marked as a test and kept out of every metric.

How a test differs from a real send:
- it is rendered by the real compose path for a chosen lead (or with placeholder merge values), but it is
  never queued: no outbox row, no 'sent' activity, no enrollment counter — reports and scores never see it;
- it carries `X-Nurture-Test: yes` and a `[TEST]` subject prefix;
- its links are not tracked and the unsubscribe/preferences links are inert stand-ins (clicking them in a
  test must not unsubscribe or score the lead it was rendered for);
- the send itself is audited (`test_send` on the template), after the relay accepted it.

The SMTP conversation runs outside any database transaction, so a slow relay never holds a write lock.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from typing import Any

from sqlalchemy import Connection

from ..config import MailSettings, Settings
from ..errors import NurtureError, ValidationError
from ..store import audit
from .compose import Composer
from .dkimsign import signer_for
from .layout import FOOTER_MARK
from .message import build_message
from .preview import render_compiled
from .smtp import SmtpPool, parse_smtp_url
from .suppression import TRANSACTIONAL
from .templates import CompiledTemplate, one_line

TEST_HEADER = "X-Nurture-Test"
SUBJECT_PREFIX = "[TEST] "
INERT_LINK = "#test-message"
_ADDRESS = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"'.][^@\s<>,;\"']*$")


def address_problem(address: str) -> str | None:
    """Why `address` cannot receive a test (one line), or None."""
    if not address.strip():
        return "type an email address"
    if len(address) > 254:
        return f"too long ({len(address):,} characters; an address has at most 254)"
    if not _ADDRESS.match(address.strip()):
        return f"not an email address: {one_line(address)[:60]!r}"
    return None


def split_addresses(text: str) -> list[str]:
    """A seed list typed or configured as `a@x.com, b@y.com` (commas, semicolons or spaces)."""
    return [a for a in re.split(r"[\s,;]+", text.strip()) if a]


def addresses_problem(text: str) -> str | None:
    """Why a typed seed list cannot receive tests (one line, naming the bad address), or None."""
    addresses = split_addresses(text)
    if not addresses:
        return "type an email address (several: separate them with commas)"
    if len(addresses) > 50:
        return f"{len(addresses)} addresses; a seed list has at most 50"
    for a in addresses:
        problem = address_problem(a)
        if problem:
            return f"{a[:60]}: {problem}" if len(addresses) > 1 else problem
    return None


@dataclass(frozen=True)
class TestMessage:
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    message_id: str


def build_test_message(conn: Connection, settings: Settings, compiled: CompiledTemplate, *, to: str,
                       lead_id: int | None, now: datetime) -> TestMessage:
    """Render `compiled` for the lead (None: placeholders) as a marked, untracked test message."""
    problem = address_problem(to)
    if problem:
        raise ValidationError("test address", problem)
    to = to.strip()
    out = render_compiled(conn, settings, compiled, lead_id, now, unsubscribe=INERT_LINK, preferences=INERT_LINK)
    if out.error:
        raise NurtureError(f"template {compiled.name}: cannot render the test: {out.error}")
    comp = Composer(settings.mail, now)
    body, text = comp.layout(out.html, out.subject), out.text
    if compiled.category != TRANSACTIONAL:  # the footer a real marketing send gets, with inert links
        body = comp.compliance_html(body, INERT_LINK, INERT_LINK, None) if body else body
        text = comp.compliance_text(text, INERT_LINK, INERT_LINK)
    body = body.replace(FOOTER_MARK, "", 1)
    message_id = f"<test.{secrets.token_hex(8)}@{comp.domain}>"
    headers = {"From": comp.from_header, "To": to, "Message-ID": message_id, TEST_HEADER: "yes"}
    if comp.reply_to:
        headers["Reply-To"] = comp.reply_to
    if compiled.category != TRANSACTIONAL:  # List-Id as sent; no Feedback-ID (a test is no campaign)
        headers["List-Id"] = comp.list_id(compiled.category)
    return TestMessage(to, SUBJECT_PREFIX + out.subject, body, text, headers, message_id)


def deliver(mail: MailSettings, message: TestMessage, now: datetime) -> None:
    """Send through the configured relay now; a refusal or an unreachable relay is a one-line error."""
    row: dict[str, Any] = {"to_email": message.to, "subject": message.subject, "html": message.html,
                           "text": message.text, "headers": message.headers, "message_id": message.message_id}
    data = build_message(row, now, default_from=formataddr((one_line(mail.from_name), one_line(mail.from_email))))
    signer = signer_for(mail)
    if signer is not None:  # signed like real mail, so a seed-list inbox shows the real authentication results
        data = signer.sign(data)
    pool = SmtpPool(parse_smtp_url(mail.smtp_url), 1)
    try:
        outcome = pool.send(one_line(mail.from_email), message.to, data)
    finally:
        pool.close()
    if outcome.status != "sent":
        code = f"{outcome.code} " if outcome.code else ""
        raise NurtureError(f"test send to {message.to} failed: {one_line(code + outcome.detail)[:300]}")


def record_test_send(conn: Connection, *, template: str, version: int | None, message: TestMessage,
                     lead_id: int | None, user: str, now: datetime) -> None:
    """The audit row of a test send (the only trace it leaves in the store)."""
    audit.record(conn, at=now, user=user, action="test_send", entity="template", entity_id=template,
                 after={"to": message.to, "version": version, "lead_id": lead_id, "message_id": message.message_id})
