"""Deliverability lint (`nurture templates lint [NAME…]`): render each template for a sample lead exactly as
it would be sent — both compose stages, tracked links, open pixel, footer, headers, DKIM when configured —
and report what mailbox providers and spam filters hold against it:

- no text part, or a text part that differs in substance from the HTML (under 60 % of the HTML's words);
- an image-only or link-only body (almost no words outside images and link labels);
- images without `alt` text (the open pixel is ours and carries `alt=""`);
- HTML over 102 KB, where Gmail clips the message (and hides the footer with the unsubscribe link);
- links through URL shorteners (bit.ly and friends), which spam filters score as hiding the target;
- when SpamAssassin is installed: its score with local rules only (`spamassassin -L -t`, Bayes off so the
  result is the same on every machine) and the rules hit, for all templates in one `--mbox` run.

The sample lead is inserted in a transaction that is rolled back, so nothing is written; `--lead` renders
for a real lead instead.
"""

from __future__ import annotations

import html as _html
import mailbox
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select

from ..config import Settings
from ..store.tables import lead, template
from .compose import Composer, SendRequest, compose_outbox_rows, finalize
from .dkimsign import signer_for
from .message import build_message
from .templates import one_line

GMAIL_CLIP_BYTES = 102 * 1024
SHORTENERS = frozenset({
    "bit.ly", "bitly.com", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "rebrand.ly", "cutt.ly",
    "shorturl.at", "tiny.cc", "bl.ink", "lnkd.in", "rb.gy", "t.ly", "s.id", "v.gd", "shorte.st", "adf.ly",
})
SAMPLE_LEAD = {"first_name": "Alex", "last_name": "Morgan", "title": "Marketing Operations Manager",
               "company": "Contoso Manufacturing", "industry": "Manufacturing", "employees": 850,
               "country": "United States", "state": "TX", "city": "Austin", "lead_source": "Web"}
_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*", re.I)
_URL = re.compile(r"https?://\S+")
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_ALT = re.compile(r"\balt\s*=", re.I)
_SRC = re.compile(r"\bsrc\s*=\s*([\"'])(.*?)\1", re.I)
_HREF = re.compile(r"\bhref\s*=\s*([\"'])(https?://.*?)\1", re.I)
_LINK_TEXT = re.compile(r"<a\b[^>]*>(.*?)</a\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")
_STYLE = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.I | re.S)


@dataclass
class LintResult:
    name: str
    problems: list[str] = field(default_factory=list)
    spam_score: float | None = None  # None: SpamAssassin not run
    spam_rules: list[tuple[str, float]] = field(default_factory=list)
    html_bytes: int = 0
    message: bytes = b""

    def as_dict(self) -> dict[str, Any]:
        return {"template": self.name, "problems": self.problems, "spam_score": self.spam_score,
                "spam_rules": [f"{r} {p:g}" for r, p in self.spam_rules], "html_bytes": self.html_bytes}


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(_URL.sub(" ", text))]


def _visible_text(body: str) -> str:
    return _html.unescape(_TAG.sub(" ", _STYLE.sub(" ", body)))


def check_parts(subject: str, body: str, text: str, source_html: str) -> list[str]:
    """Content problems of a message: `body` and `text` as sent (finalised), `source_html` the template's
    rendered HTML before layout, tracking and footer (what the words, images and link targets are about)."""
    problems: list[str] = []
    if not subject.strip():
        problems.append("empty subject")
    if not text.strip():
        problems.append("no text part")
    html_words = _words(_visible_text(body)) if body else []
    if body and text.strip():
        html_set, text_set = set(html_words), set(_words(text))
        shared = len(html_set & text_set) / max(1, len(html_set))
        if shared < 0.6:
            problems.append(f"text part differs from the HTML: only {shared:.0%} of the HTML's words are in it")
    if body:
        images = [m.group(0) for m in _IMG.finditer(source_html)]
        real_images = [i for i in images if 'width="1" height="1"' not in i]
        link_words = len(_words(_visible_text(" ".join(_LINK_TEXT.findall(source_html)))))
        plain_words = len(_words(_visible_text(source_html))) - link_words
        if real_images and plain_words < 50:
            problems.append(f"image-only body: {len(real_images)} image(s) and {plain_words} words of text")
        elif plain_words < 25 and link_words:
            problems.append(f"link-only body: {plain_words} words outside link labels")
        for img in real_images:
            if not _ALT.search(img):
                src = _SRC.search(img)
                problems.append(f"image without alt text: {src.group(2)[:80] if src else img[:80]}")
        size = len(body.encode())
        if size > GMAIL_CLIP_BYTES:
            problems.append(f"HTML is {size / 1024:.0f} KB: Gmail clips messages over 102 KB "
                            "(and the clipped part holds the unsubscribe footer)")
    for _, url in _HREF.findall(source_html):
        host = (urlsplit(_html.unescape(url)).hostname or "").lower().removeprefix("www.")
        if host in SHORTENERS:
            problems.append(f"shortened URL {url[:80]}: link to the real address")
    return problems


def _sample_lead(conn: Connection, now: datetime) -> int:
    n = 0
    while True:  # an address no lead has (the insert is rolled back anyway)
        email = f"alex.morgan{n or ''}@contoso.example"
        if conn.execute(select(lead.c.id).where(lead.c.email == email)).first() is None:
            break
        n += 1
    key = conn.execute(insert(lead).values(email=email, created_at=now, updated_at=now, **SAMPLE_LEAD)
                       ).inserted_primary_key
    assert key is not None
    return int(key[0])


def render_for_lint(conn: Connection, settings: Settings, names: list[str], lead_id: int | None,
                    now: datetime) -> list[LintResult]:
    """Each template as sent to the lead (None: a sample lead, inserted here — the caller rolls back)."""
    lead_id = lead_id if lead_id is not None else _sample_lead(conn, now)
    comp = Composer(settings.mail, now)
    signer = signer_for(settings.mail)
    default_from = formataddr((one_line(settings.mail.from_name), one_line(settings.mail.from_email)))
    out: list[LintResult] = []
    for name in names:
        (row,) = compose_outbox_rows(conn, [SendRequest(lead_id, name, idempotency_key=f"lint:{name}")],
                                     settings, now)
        res = LintResult(name)
        out.append(res)
        if row["status"] == "failed":
            res.problems.append(f"cannot render: {row['last_error']}")
            continue
        sent = {**row, **finalize(row, comp)}
        res.html_bytes = len(sent["html"].encode())
        res.problems = check_parts(sent["subject"], sent["html"], sent["text"], row["html"])
        data = build_message(sent, now, default_from=default_from)
        res.message = signer.sign(data) if signer is not None else data
    return out


def template_names(conn: Connection, names: list[str] | None) -> list[str]:
    from ..errors import NotFoundError

    known = list(conn.execute(select(template.c.name).order_by(template.c.name)).scalars())
    if not names:
        return known
    missing = [n for n in names if n not in known]
    if missing:
        raise NotFoundError(f"no template named {missing[0]!r}")
    return names


def spamassassin_available() -> bool:
    return shutil.which("spamassassin") is not None


_STATUS_SCORE = re.compile(r"score=(-?\d+(?:\.\d+)?)")
_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\s", re.M)
_RULE_TABLE = re.compile(r"Content analysis details:.*?\n-{4} -+ -+\n(.*?)(?:\n[ \t]*\n|\Z)", re.S)


def spam_scores(results: list[LintResult], timeout: float = 120.0) -> None:
    """Score every rendered message with SpamAssassin's local rules in one run (fills spam_score/rules)."""
    todo = [r for r in results if r.message]
    if not todo:
        return
    with tempfile.TemporaryDirectory() as tmp:
        box_path = Path(tmp) / "lint.mbox"
        box = mailbox.mbox(str(box_path))
        for r in todo:
            box.add(mailbox.mboxMessage(r.message.replace(b"\r\n", b"\n")))
        box.flush()
        box.close()
        proc = subprocess.run(
            ["spamassassin", "-L", "-t", "--mbox", "--cf", "use_bayes 0", "--cf", "bayes_auto_learn 0"],
            stdin=box_path.open("rb"), capture_output=True, timeout=timeout, check=False)
    reports = re.split(rb"(?m)^From [^\n]*\n", proc.stdout)[1:]
    if len(reports) != len(todo):
        raise RuntimeError(f"spamassassin returned {len(reports)} messages for {len(todo)}: "
                           f"{one_line(proc.stderr.decode(errors='replace'))[:300]}")
    for r, out in zip(todo, reports, strict=True):
        text = out.decode("utf-8", "replace")
        head = text.split("\n\n", 1)[0].replace("\n\t", " ").replace("\n ", " ")
        score = _STATUS_SCORE.search(head.split("X-Spam-Status:", 1)[-1])
        r.spam_score = float(score.group(1)) if score else None
        table = _RULE_TABLE.search(text)  # the "pts rule name description" table -t appends
        r.spam_rules = [(rule, float(pts)) for pts, rule in _RULE_LINE.findall(table.group(1) if table else "")]
