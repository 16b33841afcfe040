"""Preview: render a template for one lead through the real compose path, without storing anything; or
with placeholder merge fields when no lead is chosen.

`draft_preview` does the same for an unsaved draft (the template editor): the draft is compiled once and
handed to `compose_outbox_rows` through a one-template cache (`DraftCache`), so the lead's merge values
come from the same loading and rendering code a real send uses. The HTML is shown as readable text with
its links listed, plus the text part (or the text derived from the HTML when there is none)."""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from ..config import Settings
from ..errors import NotFoundError, ValidationError
from ..store.tables import lead
from ..workspace import Workspace
from .compose import PREFERENCES_MARK, UNSUBSCRIBE_MARK, SendRequest, compose_messages, compose_outbox_rows
from .context import sample_context
from .htmltext import html_to_text
from .templates import (
    PARTS,
    CompiledTemplate,
    TemplateCache,
    TemplateDraft,
    TemplateProblem,
    base_context,
    check_and_compile,
    default_cache,
    one_line,
    render,
)


def find_lead(conn: Any, ref: str) -> int:
    ref = ref.strip()
    cond = lead.c.email == ref.lower()
    if ref.isdigit():
        cond = or_(cond, lead.c.id == int(ref))
    lead_id = conn.execute(select(lead.c.id).where(cond)).scalar()
    if lead_id is None:
        raise NotFoundError(f"--lead {ref!r}: no such lead")
    return int(lead_id)


def preview(ws: Workspace, template_name: str, lead_ref: str) -> dict[str, Any]:
    """The message the template would send this lead now (status, subject, html, text, headers), finalised."""
    now = ws.clock.now()
    with ws.engine.connect() as conn:
        default_cache().get(conn, template_name)  # NotFoundError for a missing template
        lead_id = find_lead(conn, lead_ref)
        rows = compose_messages(conn, [SendRequest(lead_id, template_name, idempotency_key=f"preview:{lead_id}")],
                                ws.settings, now)
    row = rows[0]
    if row["status"] == "failed":
        raise ValidationError(f"template {template_name}", row["last_error"] or "cannot render")
    return row


@dataclass(frozen=True)
class TemplatePreview:
    """A template rendered with placeholder merge fields (`lead.first_name` shows as `lead.first_name`),
    so an operator sees the copy and every field it uses, with no lead chosen."""

    name: str
    version: int
    subject: str
    body: str  # the text part, or the HTML part as readable text


def placeholder_preview(conn: Connection, template_name: str) -> TemplatePreview:
    compiled = default_cache().get(conn, template_name)
    ctx = sample_context()
    subject = compiled.subject.render(ctx)
    body = compiled.text.render(ctx) if compiled.text is not None else html_to_text(compiled.html.render(ctx))
    return TemplatePreview(template_name, compiled.version, subject, body)


# ---------------------------------------------------------------------------------------------------
# Drafts (the template editor)


class DraftCache(TemplateCache):
    """A cache that holds one compiled draft and answers every template name with it, so the real compose
    path renders a template that is not stored."""

    def __init__(self, compiled: CompiledTemplate) -> None:
        super().__init__(maxsize=1)
        self.compiled = compiled

    def __len__(self) -> int:  # truthy: compose falls back to the default cache for an empty one
        return 1

    def get_many(self, conn: Connection, names: Iterable[str]) -> dict[str, CompiledTemplate]:
        return dict.fromkeys(names, self.compiled)


@dataclass(frozen=True)
class LeadChoice:
    id: int
    email: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


def lead_choice(conn: Connection, ref: str) -> LeadChoice:
    """The lead an operator typed (an email or an id)."""
    ref = ref.strip()
    if not ref:
        raise ValidationError("lead", "type an email or a lead id")
    cond = lead.c.email == ref.lower()
    if ref.isdigit():
        cond = or_(cond, lead.c.id == int(ref))
    row = conn.execute(select(lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name).where(cond)).first()
    if row is None:
        raise NotFoundError(f"no lead with email or id {one_line(ref)[:60]!r}")
    return LeadChoice(int(row.id), row.email, " ".join(n for n in (row.first_name, row.last_name) if n))


@dataclass(frozen=True)
class Rendered:
    """A template's three parts rendered for a lead (or with placeholders), before transport."""

    subject: str
    html: str
    text: str
    error: str | None = None  # why it could not be rendered for this lead (then the parts are empty)


def _fill_marks(part: str, unsubscribe: str, preferences: str) -> str:
    return part.replace(PREFERENCES_MARK, preferences).replace(UNSUBSCRIBE_MARK, unsubscribe)


def render_compiled(conn: Connection, settings: Settings, compiled: CompiledTemplate, lead_id: int | None,
                    now: datetime, *, unsubscribe: str = "[unsubscribe link]",
                    preferences: str = "[preferences link]") -> Rendered:
    """Render for `lead_id` through `compose_outbox_rows` (None: placeholder merge values, as the list's
    preview does). The unsubscribe/preferences links are filled with the given stand-ins, never a token."""
    if lead_id is None:
        ctx = base_context() | sample_context()
        try:
            subject, body, text = (render(t, ctx) for t in (compiled.subject, compiled.html, compiled.text))
        except Exception as exc:  # placeholder values can trip a template doing arithmetic on a field
            return Rendered("", "", "", f"render error: {one_line(str(exc))[:300]}")
        return Rendered(one_line(subject), body, text)
    rows = compose_outbox_rows(conn, [SendRequest(lead_id, compiled.name, idempotency_key=f"preview:{lead_id}")],
                               settings, now, cache=DraftCache(compiled))
    if not rows:
        return Rendered("", "", "", f"lead {lead_id} no longer exists")
    row = rows[0]
    if row["status"] == "failed":
        return Rendered("", "", "", str(row["last_error"] or "cannot render"))
    subject, body, text = (_fill_marks(row[p], unsubscribe, preferences) for p in PARTS)
    return Rendered(subject, body, text)


_LINK = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])(.*?)\1[^>]*>(.*?)</a\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def links_of(body: str) -> tuple[tuple[str, str], ...]:
    """(label, url) of every link in rendered HTML, in order."""
    return tuple((one_line(_html.unescape(_TAG.sub("", m.group(3)))) or "(no text)", _html.unescape(m.group(2)).strip())
                 for m in _LINK.finditer(body))


@dataclass(frozen=True)
class DraftPreview:
    """What the editor shows for a draft: its problems, and — when its parts compile — the message for
    the chosen lead (or with placeholders): subject, the HTML as readable text, its links, the text part."""

    problems: tuple[TemplateProblem, ...]
    lead: LeadChoice | None = None
    subject: str = ""
    html_text: str = ""
    links: tuple[tuple[str, str], ...] = ()
    text: str = ""
    text_derived: bool = False
    error: str | None = None  # the parts do not compile, or the render failed for this lead

    @property
    def rendered(self) -> bool:
        return self.error is None


def draft_preview(conn: Connection, settings: Settings, draft: TemplateDraft, lead_choice: LeadChoice | None,
                  now: datetime) -> DraftPreview:
    """Check a draft (every problem) and, when its parts are sound, render it for the lead: one parse and
    one compile per part, one compose for one lead."""
    problems, compiled = check_and_compile(draft)
    if compiled is None:
        return DraftPreview(tuple(problems), lead_choice, error="fix the problems to see the preview")
    out = render_compiled(conn, settings, compiled, lead_choice.id if lead_choice else None, now)
    if out.error:
        return DraftPreview(tuple(problems), lead_choice, error=out.error)
    return DraftPreview(tuple(problems), lead_choice, out.subject, html_to_text(out.html), links_of(out.html),
                        out.text, text_derived=not draft.text)
