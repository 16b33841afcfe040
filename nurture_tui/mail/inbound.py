"""The mailto half of `List-Unsubscribe`: process unsubscribe requests that arrived by email.

Mailbox providers that use the `mailto:` form send a message to `mail.unsubscribe_mailto` (default
`unsubscribe@<from domain>`) with the subject we put in the header: `unsubscribe <token>`. Deliver that
address to a Maildir (or point `nurture mail sink --maildir` at it in the demo) and run
`nurture mail unsubscribes MAILDIR`: each new message's token is verified exactly like the web
one-click (tampered or expired tokens are skipped and counted), the lead leaves the message's category,
and the message is moved to `cur/` so it is processed once.

Delivery reports that land in the same mailbox (a DSN for a message we sent, an ARF complaint) are no
unsubscribe requests with a bad token: they go to the bounce processor (`mail.bouncebox`) and are counted
as `reports`, not `invalid`.
"""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from ..errors import ValidationError
from ..store.engine import write_tx
from ..workspace import Workspace
from .bouncebox import MailboxResult, process_message
from .dsn import is_report
from .tokens import TokenSigner
from .unsubscribe import leave_category, record_unsubscribe, token_message

_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", re.I)


@dataclass
class InboundResult:
    processed: int = 0
    unsubscribed: int = 0  # requests that changed something
    invalid: int = 0  # no token, tampered, expired or unknown
    reports: int = 0  # DSNs and complaints, handed to the bounce processor
    feedback: MailboxResult = field(default_factory=MailboxResult)


def process_maildir(ws: Workspace, path: Path | str) -> InboundResult:
    box = mailbox.Maildir(str(path), create=False)
    signer = TokenSigner(ws.settings.mail.secret_key.get_secret_value())
    result = InboundResult()
    for key in list(box.iterkeys()):
        msg = box.get_message(key)
        if msg.get_subdir() != "new":
            continue
        result.processed += 1
        raw = msg.as_bytes()
        parsed = message_from_bytes(raw, policy=default_policy)
        if is_report(parsed):
            result.reports += 1
            process_message(ws, raw, "unsubscribe-mailbox", result.feedback)
            msg.set_subdir("cur")
            msg.add_flag("S")
            box[key] = msg
            continue
        match = _TOKEN.search(str(parsed.get("Subject", "")))
        now = ws.clock.now()
        try:
            if match is None:
                raise ValidationError("subject", "no unsubscribe token")
            data = signer.verify(match.group(1), now, kind="unsubscribe")
            with write_tx(ws.engine) as conn:
                row = token_message(conn, data)
                changed = leave_category(conn, data.lead_id, row["category"], now)
                record_unsubscribe(conn, row, changed, now, ws.settings,
                                   {"via": "mailto", "from": str(parsed.get("From", ""))[:200]})
            result.unsubscribed += bool(changed)
        except ValidationError:
            result.invalid += 1
        msg.set_subdir("cur")
        msg.add_flag("S")
        box[key] = msg
    return result
