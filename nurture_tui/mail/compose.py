"""SendRequest → outbox rows, in two stages:

1. **Personalise** (`compose_outbox_rows`, in the engine's step transaction): the template's subject,
   HTML and text parts rendered with the lead's merge fields. That is what the outbox stores, with the
   message's `message_ref` (its stable, unguessable id). `{{ unsubscribe_url }}` / `{{ preferences_url }}`
   in a template render as placeholders, the way Pardot's `%%unsubscribe%%` tags do.
2. **Finalise for transport** (`finalize`, by the dispatcher at send time): signed click/open/unsubscribe
   tokens, tracked links, the open pixel, the compliance footer (unsubscribe + preferences links, postal
   address) and the headers (From, Reply-To, Message-ID, List-Unsubscribe + One-Click).

Why split: tokens then expire `token_ttl_days` after the message was *sent* (not queued), a change to
the tracking or sender settings applies to mail still in the queue, and the outbox doesn't store ~1.5 KB
of tokens and footer per message — which was also most of the engine's per-step cost. The stored row plus
the settings determine the sent message; `compose_messages` gives both stages at once (preview, tests).

Per batch: one query each for leads (only the fields the templates read), accounts, owners, sequences
and template heads (plus recent activity when a template uses `recent.*`); each template is compiled once
per version (TemplateCache). A send whose template is missing or fails to render becomes a `failed` row
with the reason in `last_error`, so one bad template never blocks the rest of the batch; a lead that no
longer exists gets no row.
"""

from __future__ import annotations

import hashlib
import html as _html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

from sqlalchemy import Connection

from ..config import MailSettings, Settings
from . import context as ctxmod
from .layout import FOOTER_MARK, Layout
from .suppression import TRANSACTIONAL
from .templates import TemplateCache, base_context, default_cache, one_line, render
from .tokens import TokenSigner


@dataclass(frozen=True, slots=True)
class SendRequest:
    lead_id: int
    template_name: str
    category: str | None = None  # None = the template's category
    enrollment_id: int | None = None
    sequence_id: int | None = None
    node_id: str | None = None
    idempotency_key: str = ""  # unique per message: "enrollment:node:attempt"


#: What `{{ unsubscribe_url }}` / `{{ preferences_url }}` render as until `finalize` puts in the signed URLs
#: (only URL-safe characters, so neither autoescaping nor `urlencode` changes them).
UNSUBSCRIBE_MARK = "__nurture_unsubscribe_url__"
PREFERENCES_MARK = "__nurture_preferences_url__"
_MARK_PREFIX = "__nurture_"

_HREF = re.compile(r"(<a\b[^>]*?\bhref\s*=\s*)([\"'])(https?://[^\"']+)\2", re.I)
_TEXT_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_BODY_END = re.compile(r"</body\s*>", re.I)


def message_ref(idempotency_key: str, secret: str) -> str:
    """A stable, unguessable id for a message: the Message-ID local part and the tracking-token ref."""
    return hashlib.blake2b(idempotency_key.encode(), key=secret.encode()[:64], digest_size=10).hexdigest()


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip() or "localhost"


def _valid_recipient(email: str | None) -> bool:
    return bool(email) and "@" in str(email) and one_line(str(email)) == email and " " not in str(email)


class Composer:
    """Everything about finalising a message that depends only on the settings and the send time (token
    expiry counts from `now`), computed once per dispatch pass."""

    def __init__(self, mail: MailSettings, now: datetime) -> None:
        self.mail = mail
        self.secret = mail.secret_key.get_secret_value()
        self.signer = TokenSigner(self.secret)
        self.base = mail.base_url.rstrip("/")
        self.expires = now + timedelta(days=mail.token_ttl_days)
        self.now = now
        self.domain = _domain(mail.from_email)
        self.from_header = formataddr((one_line(mail.from_name), one_line(mail.from_email)))
        self.reply_to = one_line(mail.reply_to) if mail.reply_to else None
        self.mailto = one_line(mail.unsubscribe_mailto or f"unsubscribe@{self.domain}")
        self.sender = {"name": mail.from_name, "email": mail.from_email, "postal_address": mail.postal_address}
        self.postal_html = _html.escape(mail.postal_address)
        self.list_domain = one_line(mail.list_id_domain or self.domain).strip(". ").lower()
        self.list_name = one_line(mail.from_name).replace('"', "'")
        self.feedback_sender = _feedback_field(mail.feedback_id_sender) or "nurture"
        self._layout = Layout(mail.from_name) if mail.layout == "default" else None

    def list_id(self, category: str) -> str:
        """RFC 2919 List-Id for a subscription category: `"Name category" <category.domain>`."""
        label = _feedback_field(category).replace(":", "-").replace("_", "-") or "marketing"
        return f'"{self.list_name} {label}" <{label}.{self.list_domain}>'

    def feedback_id(self, row: Mapping[str, Any]) -> str:
        """Gmail's Feedback-ID `campaign:customer:mail type:sender`: program, template, category, sender
        (ids only, nothing personal; complaint rates are reported per field in Postmaster Tools)."""
        return (f"seq{row.get('sequence_id') or 0}:tpl{row.get('template_id') or 0}:"
                f"{_feedback_field(row['category'])}:{self.feedback_sender}")

    def click_url(self, lead_id: int, ref: str, url: str) -> str:
        return f"{self.base}/c/{self.signer.sign('click', lead_id, ref, self.expires, url)}"

    def track_html(self, body: str, lead_id: int, ref: str, seen: dict[str, str]) -> str:
        """Replace http(s) hrefs by signed click URLs (`seen` caches one token per target per message)."""

        def repl(m: re.Match[str]) -> str:
            url = _html.unescape(m.group(3))
            if url.startswith(self.base):
                return m.group(0)
            tracked = seen.get(url)
            if tracked is None:
                tracked = seen[url] = self.click_url(lead_id, ref, url)
            return f"{m.group(1)}{m.group(2)}{tracked}{m.group(2)}"

        return _HREF.sub(repl, body)

    def track_text(self, body: str, lead_id: int, ref: str, seen: dict[str, str]) -> str:
        def repl(m: re.Match[str]) -> str:
            url = m.group(0)
            if url.startswith(self.base):
                return url
            tracked = seen.get(url)
            if tracked is None:
                tracked = seen[url] = self.click_url(lead_id, ref, url)
            return tracked

        return _TEXT_URL.sub(repl, body)

    def layout(self, body: str, subject: str) -> str:
        """The HTML body inside the configured layout (mail/layout.py)."""
        return self._layout.wrap(body, subject) if self._layout is not None else body

    def compliance_html(self, body: str, unsub: str, prefs: str, pixel: str | None) -> str:
        if FOOTER_MARK in body:  # the layout's footer cell
            footer = (f'<a href="{unsub}">Unsubscribe</a> · <a href="{prefs}">Manage email preferences</a><br>'
                      f"{self.postal_html}")
            if pixel:
                footer += f'<img src="{pixel}" width="1" height="1" alt="" style="display:none">'
            return body.replace(FOOTER_MARK, footer, 1)
        footer = (
            '<hr><p style="font-size:12px;color:#666666">'
            f'<a href="{unsub}">Unsubscribe</a> · <a href="{prefs}">Manage email preferences</a><br>'
            f"{self.postal_html}</p>"
        )
        if pixel:
            footer += f'<img src="{pixel}" width="1" height="1" alt="" style="display:none">'
        return _insert_before_body_end(body, footer)

    def compliance_text(self, body: str, unsub: str, prefs: str) -> str:
        return (f"{body.rstrip()}\n\n--\nUnsubscribe: {unsub}\nManage email preferences: {prefs}\n"
                f"{self.mail.postal_address}\n")


def _to_header(ld: Mapping[str, Any]) -> dict[str, str]:
    """`{"To": "First Last <address>"}` when the lead has a name (stored with the row), else nothing."""
    name = one_line(" ".join(str(n) for n in (ld.get("first_name"), ld.get("last_name")) if n)).strip()
    return {"To": formataddr((name, str(ld["email"])))} if name and _valid_recipient(ld["email"]) else {}


def _feedback_field(value: str) -> str:
    """A Feedback-ID / List-Id label: lower-case letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^a-z0-9._-]+", "-", one_line(value).lower()).strip("-.")


def _insert_before_body_end(body: str, extra: str) -> str:
    ends = [m.start() for m in _BODY_END.finditer(body)]
    if not ends:
        return body + extra
    return body[: ends[-1]] + extra + body[ends[-1]:]


def compose_outbox_rows(
    conn: Connection, sends: Sequence[SendRequest], settings: Settings | MailSettings, now: datetime,
    cache: TemplateCache | None = None,
) -> list[dict[str, Any]]:
    """Render `sends` into outbox row dicts (in order; sends for vanished leads are left out)."""
    if not sends:
        return []
    mail = settings.mail if isinstance(settings, Settings) else settings
    cache = cache or default_cache()
    secret = mail.secret_key.get_secret_value()
    domain = _domain(mail.from_email)
    templates = cache.get_many(conn, {s.template_name for s in sends})
    roots: set[str] = set()
    fields: set[str] | None = set()
    for t in templates.values():
        roots |= t.roots
        fields = None if fields is None or t.lead_fields is None else fields | t.lead_fields
    # the name always: the To header carries it (a bare address beside a subject naming the recipient's
    # company is a spam signal, SpamAssassin's PDS_BRAND_SUBJ_NAKED_TO)
    leads = ctxmod.load_leads(conn, [s.lead_id for s in sends],
                              None if fields is None else fields | {"first_name", "last_name"})
    accounts = ctxmod.load_accounts(conn, [ld["account_id"] for ld in leads.values()]) if "account" in roots else {}
    owners = ctxmod.load_owners(conn, [ld["owner_id"] for ld in leads.values()]) if "owner" in roots else {}
    seqs = ctxmod.load_sequences(conn, [s.sequence_id for s in sends]) if "sequence" in roots else {}
    recent = ctxmod.load_recent(conn, list(leads)) if "recent" in roots else {}
    empty_account, empty_owner = ctxmod.empty_account(), ctxmod.empty_owner()
    no_seq: dict[str, Any] = {"id": None, "name": None}
    sender = {"name": mail.from_name, "email": mail.from_email, "postal_address": mail.postal_address}
    base = base_context()

    rows: list[dict[str, Any]] = []
    for send in sends:
        ld = leads.get(send.lead_id)
        if ld is None:
            continue
        tpl = templates.get(send.template_name)
        ref = message_ref(send.idempotency_key or f"lead:{send.lead_id}:{send.template_name}:{now.isoformat()}",
                          secret)
        row: dict[str, Any] = {
            "idempotency_key": send.idempotency_key or ref, "lead_id": send.lead_id,
            "enrollment_id": send.enrollment_id, "sequence_id": send.sequence_id, "node_id": send.node_id,
            "template_id": tpl.id if tpl else None, "template_version": tpl.version if tpl else None,
            "category": send.category or (tpl.category if tpl else "marketing"),
            "to_email": ld["email"], "subject": "", "html": "", "text": "", "headers": _to_header(ld),
            "status": "queued", "attempts": 0, "next_try_at": now, "last_error": None,
            "message_id": f"<{ref}@{domain}>", "message_ref": ref, "created_at": now, "sent_at": None,
        }
        rows.append(row)
        if tpl is None:
            row.update(status="failed", last_error=f"template {send.template_name!r} not found")
            continue
        if not _valid_recipient(ld["email"]):
            row.update(status="failed", to_email=one_line(str(ld["email"]))[:254],
                       last_error=f"invalid recipient address {ld['email']!r}")
            continue
        ctx = base.copy()
        ctx.update({
            "lead": ld,
            "account": accounts.get(ld["account_id"], empty_account) if ld["account_id"] else empty_account,
            "owner": owners.get(ld["owner_id"], empty_owner) if ld["owner_id"] else empty_owner,
            "sequence": seqs.get(send.sequence_id, no_seq) if send.sequence_id else no_seq,
            "step": {"id": send.node_id},
            "recent": recent.get(send.lead_id) or {},
            "sender": sender,
            "unsubscribe_url": UNSUBSCRIBE_MARK,
            "preferences_url": PREFERENCES_MARK,
        })
        try:
            row["subject"] = one_line(render(tpl.subject, ctx))
            row["html"] = render(tpl.html, ctx)
            row["text"] = render(tpl.text, ctx)
        except Exception as exc:  # a template that fails for this lead's data: record it, keep going
            row.update(status="failed", subject="", html="", text="",
                       last_error=f"template {tpl.name}: render error: {one_line(str(exc))[:500]}")
    return rows


def compose_messages(
    conn: Connection, sends: Sequence[SendRequest], settings: Settings | MailSettings, now: datetime,
) -> list[dict[str, Any]]:
    """Both stages at once: outbox rows with subject/html/text/headers as they would be sent at `now`
    (previews, tests). Failed rows are returned as composed."""
    mail = settings.mail if isinstance(settings, Settings) else settings
    comp = Composer(mail, now)
    rows = compose_outbox_rows(conn, sends, mail, now)
    return [{**r, **finalize(r, comp)} if r["status"] == "queued" else r for r in rows]


def finalize(row: Mapping[str, Any], comp: Composer) -> dict[str, Any]:
    """The transport form of a stored outbox row: `{subject, html, text, headers}` as they go on the wire.

    Rows queued outside compose (no `message_ref`, e.g. the engine's rep notifications) go as stored."""
    ref = row.get("message_ref")
    subject, body, text = row["subject"] or "", row["html"] or "", row["text"] or ""
    if not ref:
        return {"subject": subject, "html": body, "text": text, "headers": dict(row.get("headers") or {})}
    lead_id = int(row["lead_id"])
    marketing = row["category"] != TRANSACTIONAL
    unsub_token = comp.signer.sign("unsubscribe", lead_id, ref, comp.expires)
    unsub = f"{comp.base}/u/{unsub_token}"
    prefs = f"{unsub}#preferences"
    if _MARK_PREFIX in subject or _MARK_PREFIX in body or _MARK_PREFIX in text:
        subject, body, text = (_fill_marks(part, unsub, prefs) for part in (subject, body, text))
    if comp.mail.track_clicks:
        seen: dict[str, str] = {}
        body = comp.track_html(body, lead_id, ref, seen)
        text = comp.track_text(text, lead_id, ref, seen)
    pixel = None
    if comp.mail.track_opens and body:
        pixel = f"{comp.base}/o/{comp.signer.sign('open', lead_id, ref, comp.expires)}.gif"
    body = comp.layout(body, subject)
    stored = row.get("headers") or {}
    headers: dict[str, str] = {"From": comp.from_header, "To": stored.get("To") or row["to_email"],
                               "Message-ID": row.get("message_id") or f"<{ref}@{comp.domain}>"}
    if comp.reply_to:
        headers["Reply-To"] = comp.reply_to
    if marketing:
        if body:
            body = comp.compliance_html(body, unsub, prefs, pixel)
        text = comp.compliance_text(text, unsub, prefs)
        # tokens are base64url + ".", so only the space needs encoding in the mailto subject
        headers["List-Unsubscribe"] = f"<mailto:{comp.mailto}?subject=unsubscribe%20{unsub_token}>, <{unsub}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        headers["List-Id"] = comp.list_id(row["category"])
    elif pixel:
        body = _insert_before_body_end(body, f'<img src="{pixel}" width="1" height="1" alt="" style="display:none">')
    body = body.replace(FOOTER_MARK, "", 1)
    headers["Feedback-ID"] = comp.feedback_id(row)
    return {"subject": subject, "html": body, "text": text, "headers": headers}


def _fill_marks(part: str, unsub: str, prefs: str) -> str:
    return part.replace(PREFERENCES_MARK, prefs).replace(UNSUBSCRIBE_MARK, unsub)
