"""Preview: render a template for one lead through the real compose path, without storing anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from ..errors import NotFoundError, ValidationError
from ..store.tables import lead
from ..workspace import Workspace
from .compose import SendRequest, compose_messages
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
