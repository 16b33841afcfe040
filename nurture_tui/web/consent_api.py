"""Consent over HTTP (issue 22 item 1; docs/compliance.md):

    POST /api/consent          a signup form or another system records consent; bearer `mail.events_api_token`
    GET  /confirm/{token}      the double opt-in link: a page with a button (a link scanner confirms nothing)
    POST /confirm/{token}      the button: grants the consent

`/api/consent` body: `{"email": "ann@x.com", "category": "newsletter", "source": "form", "form": "signup",
"ip": "203.0.113.7", "legal_basis": "consent"}` (`source` defaults to `api`; `categories` may list several).
An unknown address becomes a new lead (lead source = the consent's source); an erased address is refused
(409). Answers `200 {"lead_id": …, "categories": {"newsletter": "granted" | "pending" | "unchanged"}}`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from sqlalchemy import Connection, insert, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..compliance.consent import record_consent
from ..compliance.double_opt_in import check_link, confirm
from ..compliance.erased import erased_emails
from ..errors import NurtureError, ValidationError
from ..store.engine import write_tx
from ..store.tables import lead
from ..workspace import Workspace
from .bounce_hook import authorized
from .events_api import parse_body
from .pages import error_page, page

log = logging.getLogger("nurture.web")
Handler = Callable[[Request], Awaitable[Response]]
_NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Referrer-Policy": "no-referrer"}


class ErasedAddress(NurtureError):
    pass


def _text(payload: dict[str, Any], key: str, limit: int) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(key, f"must be a string of at most {limit} characters")
    return value.strip() or None


def _lead_id(conn: Connection, email: str, source: str, ws: Workspace) -> int:
    found = conn.execute(select(lead.c.id).where(lead.c.email == email)).scalar()
    if found is not None:
        return int(found)
    if erased_emails(conn, [email]):
        raise ErasedAddress(f"{email} was erased at the person's request; `nurture leads unblock` it first")
    now = ws.clock.now()
    new = conn.execute(insert(lead).values(email=email, lead_source=source, created_at=now, updated_at=now))
    return int(new.inserted_primary_key[0])  # type: ignore[index]


def record(ws: Workspace, payload: Any, ip: str | None) -> dict[str, Any]:
    """Validate one request and record it in one transaction."""
    if not isinstance(payload, dict):
        raise ValidationError("body", "expected a JSON object")
    email = _text(payload, "email", 254)
    if not email or "@" not in email or any(c.isspace() for c in email):
        raise ValidationError("email", "not an email address")
    email = email.lower()
    cats = payload.get("categories", [payload.get("category")] if "category" in payload else None)
    if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and c for c in cats):
        raise ValidationError("category", "give a category (or a list of categories)")
    source = _text(payload, "source", 20) or "api"
    if source not in ("form", "api"):
        raise ValidationError("source", "expected form or api")
    basis = _text(payload, "legal_basis", 24) or "consent"
    form_id = _text(payload, "form", 200)
    ip = _text(payload, "ip", 64) or ip
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lid = _lead_id(conn, email, source, ws)
        out: dict[str, str] = {}
        for category in cats:
            res = record_consent(conn, [lid], category, source=source, now=now, settings=ws.settings,
                                 legal_basis=basis, form_id=form_id, ip=ip)
            out[category] = "granted" if res.granted else "pending" if res.pending else \
                "refused" if res.refused else "unchanged"
    return {"lead_id": lid, "categories": out}


def consent_endpoint(ws: Workspace) -> Handler:
    token = ws.settings.mail.events_api_token.get_secret_value().encode()

    async def consent(request: Request) -> Response:
        if not authorized(request.headers.get("authorization", ""), token):
            return JSONResponse({"error": "missing or wrong token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="nurture-consent"'})
        try:
            payload = parse_body(await request.body())
            result = await run_in_threadpool(record, ws, payload, request.client.host if request.client else None)
        except ErasedAddress as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except Exception:
            log.exception("consent request failed")
            return JSONResponse({"error": "temporarily unavailable"}, status_code=500)
        return JSONResponse(result)

    return consent


def confirm_endpoint(ws: Workspace) -> Handler:
    async def confirm_page(request: Request) -> Response:
        token = request.path_params["token"]
        now = ws.clock.now()
        try:
            if request.method == "GET":
                data = check_link(token, now, ws.settings)
                what = escape(data.message_ref.replace("_", " "))
                return HTMLResponse(page("Confirm your subscription", (
                    f"<p>Press the button to confirm that you want to receive {what} emails.</p>"
                    f'<form method="post" action="{escape(request.url.path, quote=True)}">'
                    '<button type="submit">Confirm my subscription</button></form>')), headers=_NO_STORE)
            ip = request.client.host if request.client else None

            def run() -> bool:
                with write_tx(ws.engine) as conn:
                    return confirm(conn, token, now, ws.settings, ip).already

            already = await run_in_threadpool(run)
        except ValidationError as exc:
            return HTMLResponse(error_page(str(exc)), status_code=400, headers=_NO_STORE)
        text = "You had already confirmed this subscription." if already else \
            "Thank you: your subscription is confirmed."
        return HTMLResponse(page("Subscription confirmed", f"<p>{text}</p>"), headers=_NO_STORE)

    return confirm_page
