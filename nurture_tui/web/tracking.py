"""What the tracking endpoints do, independent of HTTP: verify a token, find its message, and record the
open / click / unsubscribe through `engine.events.record_events` (the one event pipeline: activity,
score, `wait_for` wake-ups, goals). Everything a request writes commits in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..engine.events import record_events
from ..errors import ValidationError
from ..mail import subscriptions
from ..mail.suppression import TRANSACTIONAL
from ..mail.tokens import TokenData, TokenSigner
from ..store.engine import write_tx
from ..store.tables import enrollment, lead, outbox
from ..workspace import Workspace
from .bots import bot_reason


@dataclass(frozen=True)
class Hit:
    """One request's facts that matter for bot detection and the activity's meta."""

    user_agent: str | None
    ip: str | None
    method: str = "GET"


@dataclass(frozen=True)
class Recorded:
    activity_id: int | None
    bot: str | None
    url: str = ""


def signer(ws: Workspace) -> TokenSigner:
    return TokenSigner(ws.settings.mail.secret_key.get_secret_value())


def verify(ws: Workspace, token: str, kind: str, now: datetime) -> TokenData:
    return signer(ws).verify(token, now, kind=kind)


def _message(conn: Connection, data: TokenData) -> dict[str, Any]:
    """The outbox row a token points at (plus the enrollment's version); the lead must still exist."""
    row = conn.execute(
        select(outbox.c.id, outbox.c.lead_id, outbox.c.sequence_id, outbox.c.node_id, outbox.c.template_id,
               outbox.c.category, outbox.c.status, outbox.c.sent_at, enrollment.c.version_id)
        .select_from(outbox.outerjoin(enrollment, enrollment.c.id == outbox.c.enrollment_id))
        .where(outbox.c.message_ref == data.message_ref)
    ).mappings().first()
    if row is not None:
        if row["lead_id"] != data.lead_id:
            raise ValidationError("token", "does not match its message")
        return dict(row)
    if conn.execute(select(lead.c.id).where(lead.c.id == data.lead_id)).first() is None:
        raise ValidationError("token", "unknown recipient")
    # the message was pruned by retention: still attribute the event to the lead
    return {"id": None, "lead_id": data.lead_id, "sequence_id": None, "node_id": None, "template_id": None,
            "category": "marketing", "status": None, "sent_at": None, "version_id": None}


def record_hit(ws: Workspace, token: str, kind: str, hit: Hit) -> Recorded:
    """Verify and record an open or click; raises ValidationError (→ 400) before writing anything."""
    now = ws.clock.now()
    data = verify(ws, token, kind, now)
    if kind == "click" and not data.url.startswith(("http://", "https://")):
        raise ValidationError("token", "click target is not an http(s) URL")
    with write_tx(ws.engine) as conn:
        msg = _message(conn, data)
        reason = bot_reason(hit.user_agent, msg["sent_at"], now, window_seconds=ws.settings.mail.bot_open_seconds,
                            method=hit.method, in_flight=msg["status"] in ("queued", "sending"))
        meta: dict[str, Any] = {"ua": (hit.user_agent or "")[:300], "ip": hit.ip}
        if reason:
            meta["bot_reason"] = reason
        event = {
            "lead_id": data.lead_id, "kind": kind, "at": now, "sequence_id": msg["sequence_id"],
            "version_id": msg["version_id"], "node_id": msg["node_id"], "template_id": msg["template_id"],
            "outbox_id": msg["id"], "url": data.url[:2048] or None, "bot": reason is not None, "meta": meta,
        }
        ids = record_events(conn, [event], now, ws.settings)
    return Recorded(ids[0] if ids else None, reason, data.url)


@dataclass(frozen=True)
class UnsubscribeView:
    token: str
    email: str
    category: str
    opted_out: bool
    categories: dict[str, bool]


def unsubscribe_view(ws: Workspace, token: str) -> UnsubscribeView:
    now = ws.clock.now()
    data = verify(ws, token, "unsubscribe", now)
    with ws.engine.connect() as conn:
        msg = _message(conn, data)
        prefs = subscriptions.get_preferences(conn, data.lead_id, ws.settings.mail)
    return UnsubscribeView(token, prefs.email, msg["category"], prefs.opted_out, prefs.categories)


def apply_unsubscribe(ws: Workspace, token: str, form: Mapping[str, list[str]], hit: Hit) -> tuple[str, list[str]]:
    """Handle a POST to the unsubscribe URL. Three forms:
    - RFC 8058 one-click (`List-Unsubscribe=One-Click`) and the page's button (`action=unsubscribe`):
      leave the message's category;
    - the preference form (`action=preferences`, `category=<name>` per kept category, `opt_out=1`).
    Returns (what happened, changed categories). Unsubscribes are recorded as `unsubscribe` activities."""
    now = ws.clock.now()
    data = verify(ws, token, "unsubscribe", now)
    one_click = form.get("List-Unsubscribe", [""])[-1] == "One-Click"
    action = "unsubscribe" if one_click else form.get("action", [""])[-1]
    if action not in ("unsubscribe", "preferences"):
        raise ValidationError("form", "action must be unsubscribe or preferences")
    with write_tx(ws.engine) as conn:
        msg = _message(conn, data)
        category = msg["category"]
        if action == "unsubscribe":
            if category == TRANSACTIONAL:
                changed = ["*"] if subscriptions.set_global_opt_out(conn, data.lead_id, True, now) else []
            else:
                changed = [category] if subscriptions.set_category(conn, data.lead_id, category, False, now) else []
        else:
            known = subscriptions.known_categories(conn, ws.settings.mail)
            keep = set(form.get("category", []))
            unknown = keep - set(known)
            if unknown:
                raise ValidationError("form.category", f"unknown category {sorted(unknown)[0]!r}")
            opt_out = form.get("opt_out", [""])[-1] in ("1", "on", "true", "yes")
            changed = subscriptions.apply_preferences(conn, data.lead_id, {c: c in keep for c in known}, opt_out, now)
        now_prefs = subscriptions.get_preferences(conn, data.lead_id, ws.settings.mail)
        left = [c for c in changed if c == "*" or not now_prefs.categories.get(c, True)]
        if left:
            record_events(conn, [{
                "lead_id": data.lead_id, "kind": "unsubscribe", "at": now, "sequence_id": msg["sequence_id"],
                "version_id": msg["version_id"], "node_id": msg["node_id"], "template_id": msg["template_id"],
                "outbox_id": msg["id"],
                "meta": {"categories": left, "one_click": one_click, "ua": (hit.user_agent or "")[:300]},
            }], now, ws.settings)
    return ("one-click" if one_click else action), changed
