"""Preview: render a template for one lead through the real compose path, without storing anything; or
with placeholder merge fields when no lead is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from ..errors import NotFoundError, ValidationError
from ..store.tables import lead
from ..workspace import Workspace
from .compose import SendRequest, compose_messages
from .context import sample_context
from .htmltext import html_to_text
from .templates import default_cache


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
