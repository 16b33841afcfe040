"""Read a bounce mailbox — a Maildir (stdlib `mailbox`) or an IMAP folder (stdlib `imaplib`) — and apply
every DSN and ARF report in it (`mail.dsn` parses, `mail.bounces` applies).

Where reports arrive: the envelope sender of our mail is `mail.from_email`, so DSNs go to that address;
complaint feedback loops (Yahoo, Microsoft SNDS/JMRP, …) to the address registered with them. Deliver
either to a Maildir, or leave it in an IMAP folder, and run `nurture mail bounces` from cron (or the
daemon's job list).

Per message: a report is applied (one transaction); anything else — an auto-reply, a person writing back,
a report nobody can read — is logged with its reason and remembered, never retried in a loop. A Maildir
message is then moved to `cur/` and flagged seen; an IMAP message is flagged `\\Seen`. Reading a message
twice (moved back, flag cleared, a second reader) changes nothing: every item has a dedupe key.

IMAP is deliberately small: `imap[s]://user:password@host[:port]/FOLDER` (password URL-encoded), LOGIN, the
`UNSEEN` messages fetched with `BODY.PEEK[]`, `\\Seen` set after each is processed. An unreachable server or
a refused login is one line in the result, and nothing is marked seen.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import mailbox
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import ValidationError
from ..workspace import Workspace
from .bounces import FeedbackResult, apply_items, dedupe_key, record_malformed
from .dsn import MalformedReport, NotAReport, parse_report

log = logging.getLogger("nurture.mail.bounces")


@dataclass
class MailboxResult:
    messages: int = 0
    reports: int = 0
    not_reports: int = 0
    feedback: FeedbackResult = field(default_factory=FeedbackResult)
    error: str | None = None  # the mailbox could not be read at all

    def as_dict(self) -> dict[str, object]:
        return {"messages": self.messages, "reports": self.reports, "not_reports": self.not_reports,
                **self.feedback.as_dict(), **({"error": self.error} if self.error else {})}


def process_message(ws: Workspace, raw: bytes, source: str, result: MailboxResult) -> None:
    """Parse and apply one message; never raises for bad input (logs it, counts it)."""
    result.messages += 1
    try:
        items = parse_report(raw)
    except NotAReport as exc:
        result.not_reports += 1
        log.info("%s: not a delivery or complaint report (%s); left alone", source, exc)
        return
    except MalformedReport as exc:
        result.feedback.malformed += 1
        identity = str(message_from_bytes(raw).get("Message-ID") or dedupe_key(raw.decode("latin-1")))
        if record_malformed(ws, identity, source, str(exc)):
            log.warning("%s: unreadable report %s: %s", source, identity, exc)
        result.feedback.errors.append(f"malformed report {identity}: {exc}")
        return
    result.reports += 1
    result.feedback.add(apply_items(ws, items, source))


def process_maildir(ws: Workspace, path: Path | str, source: str = "maildir") -> MailboxResult:
    """Every message in the Maildir's new/ (see the module doc)."""
    result = MailboxResult()
    if not (Path(path) / "new").is_dir():
        raise ValidationError(str(path), "not a Maildir (no new/ directory)")
    box = mailbox.Maildir(str(path), create=False)
    for key in list(box.iterkeys()):
        try:
            msg = box.get_message(key)
        except (OSError, KeyError) as exc:  # removed or unreadable since listing
            log.warning("%s: message %s cannot be read: %s", path, key, exc)
            continue
        if msg.get_subdir() != "new":
            continue
        process_message(ws, msg.as_bytes(), source, result)
        msg.set_subdir("cur")
        msg.add_flag("S")
        box[key] = msg
    return result


def process_imap(ws: Workspace, url: str, *, timeout: float = 30.0) -> MailboxResult:
    """Every UNSEEN message of the IMAP folder in `url` (see the module doc)."""
    result = MailboxResult()
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ValidationError("mail.bounce_imap_url", "expected imap[s]://user:password@host[:port]/FOLDER")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}/{folder}"
    try:
        if parts.scheme == "imaps":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(parts.hostname, parts.port or 993,
                                                   ssl_context=ssl.create_default_context(), timeout=timeout)
        else:
            conn = imaplib.IMAP4(parts.hostname, parts.port or 143, timeout=timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        result.error = f"{where}: cannot connect: {exc}"
        log.warning("bounce mailbox %s", result.error)
        return result
    try:
        conn.login(unquote(parts.username or ""), unquote(parts.password or ""))
        status, _ = conn.select(_quote(folder))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select folder {folder!r}")
        _, data = conn.uid("SEARCH", "UNSEEN")
        for uid in (data[0] or b"").split():
            _, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")  # type: ignore[arg-type]
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if raw is None:
                continue
            process_message(ws, raw, "imap", result)
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")  # type: ignore[arg-type]
    except (OSError, imaplib.IMAP4.error) as exc:
        result.error = f"{where}: {exc}"
        log.warning("bounce mailbox %s", result.error)
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    return result


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
