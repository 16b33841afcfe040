"""What the tracking endpoints do, independent of HTTP: verify a token, find its message, and record the
open / click / unsubscribe through `engine.events.record_events` (the one event pipeline: activity,
score, `wait_for` wake-ups, goals). Opens and clicks go through the group-commit writer (`ingest.py`:
one transaction for every hit that arrived meanwhile); an unsubscribe commits in its own transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import parse_qs, quote

from ..errors import ValidationError
from ..mail import subscriptions, unsubscribe
from ..mail.tokens import TokenData, TokenSigner
from ..store.engine import write_tx
from ..workspace import Workspace
from .ingest import Hit, HitWriter

__all__ = ["Hit", "HitWriter", "Recorded", "check_hit", "check_visit", "landing_url", "record_hit"]


@dataclass(frozen=True)
class Recorded:
    activity_id: int | None
    bot: str | None
    url: str = ""


def signer(ws: Workspace) -> TokenSigner:
    secret = ws.settings.mail.secret_key.get_secret_value()
    cached = _SIGNERS.get(secret)
    if cached is None:
        cached = _SIGNERS[secret] = TokenSigner(secret)
        if len(_SIGNERS) > 8:
            _SIGNERS.pop(next(iter(_SIGNERS)))
    return cached


_SIGNERS: dict[str, TokenSigner] = {}


def verify(ws: Workspace, token: str, kind: str, now: datetime) -> TokenData:
    return signer(ws).verify(token, now, kind=kind)


def check_hit(ws: Workspace, token: str, kind: str, now: datetime) -> TokenData:
    """Verify an open or click token in memory; raises ValidationError (→ 400) before anything is queued."""
    data = verify(ws, token, kind, now)
    if kind == "click" and not data.url.startswith(("http://", "https://")):
        raise ValidationError("token", "click target is not an http(s) URL")
    return data


#: Longest page URL a page-view beacon may report (the activity's url column).
MAX_PAGE_URL = 2048


def check_visit(ws: Workspace, token: str, query: bytes, now: datetime) -> TokenData:
    """A page-view beacon `GET /v/<visit token>.gif?u=<page URL>`: the token verified in memory, the
    page URL (http or https, at most MAX_PAGE_URL characters) carried in the returned data's `url`."""
    data = verify(ws, token, "visit", now)
    pages = parse_qs(query.decode("latin-1"), max_num_fields=8).get("u")
    if not pages:
        raise ValidationError("u", "the page URL is missing (?u=…)")
    page = pages[0]
    if len(page) > MAX_PAGE_URL:
        raise ValidationError("u", f"the page URL is longer than {MAX_PAGE_URL} characters")
    if not page.startswith(("http://", "https://")):
        raise ValidationError("u", "the page URL is not an http(s) URL")
    return replace(data, url=page)


def landing_url(ws: Workspace, data: TokenData, now: datetime) -> str:
    """Where a click lands: its signed URL, plus the visit token when `mail.page_tracking_param` is set (so
    the landing site can report the lead's page views)."""
    param = ws.settings.mail.page_tracking_param
    if not param:
        return data.url
    expires = now + timedelta(days=ws.settings.mail.token_ttl_days)
    visit = signer(ws).sign("visit", data.lead_id, data.message_ref, expires)
    base, hash_, fragment = data.url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{quote(param)}={visit}{hash_}{fragment}"


def record_hit(ws: Workspace, writer: HitWriter, token: str, kind: str, hit: Hit) -> Recorded:
    """Verify and record an open or click through the group-commit writer (from a thread; the app awaits
    `HitWriter.record` instead). Returns after the commit that holds the hit."""
    now = ws.clock.now()
    data = check_hit(ws, token, kind, now)
    return Recorded(writer.record_sync(data, kind, hit, now), None, data.url)


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
        msg = unsubscribe.token_message(conn, data)
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
        msg = unsubscribe.token_message(conn, data)
        if action == "unsubscribe":
            changed = unsubscribe.leave_category(conn, data.lead_id, msg["category"], now)
        else:
            opt_out = form.get("opt_out", [""])[-1] in ("1", "on", "true", "yes")
            changed = unsubscribe.choose(conn, data.lead_id, form.get("category", []), opt_out, ws.settings.mail, now)
        unsubscribe.record_unsubscribe(conn, msg, changed, now, ws.settings,
                                       {"one_click": one_click, "ua": (hit.user_agent or "")[:300]})
    return ("one-click" if one_click else action), changed
