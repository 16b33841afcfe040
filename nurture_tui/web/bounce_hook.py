"""`POST /api/bounces`: bounce and complaint events from an ESP webhook (`mail.esp_events` shapes: generic
or SendGrid), applied by `mail.bounces` in one transaction per request.

Authentication: the events API token (`mail.events_api_token`), as `Authorization: Bearer TOKEN`, or as
the password of HTTP Basic auth (SendGrid and others put credentials in the webhook URL:
`https://nurture:TOKEN@track.example.com/api/bounces`).

Answers: `200 {"processed": …, "hard_bounces": …, …, "errors": [...]}` — also when some events were
skipped (listed in `errors`), so the ESP does not retry a batch whose good events are stored; a retry would
be harmless anyway (dedupe keys). `400` a body that is not JSON (or nested too deep: the events API's
parser) or not one of the shapes; `401` a missing
or wrong token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import ValidationError
from ..mail.bounces import apply_items
from ..mail.esp_events import BadEvent, parse_events
from ..workspace import Workspace
from .events_api import parse_body

log = logging.getLogger("nurture.web")


def authorized(header: str, token: bytes) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(given.strip().encode(), token)
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(given.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(password, token)
    return False


def bounce_endpoint(ws: Workspace) -> Callable[[Request], Awaitable[Response]]:
    token = ws.settings.mail.events_api_token.get_secret_value().encode()

    async def bounces(request: Request) -> Response:
        if not authorized(request.headers.get("authorization", ""), token):
            return JSONResponse({"error": "missing or wrong token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="nurture-bounces"'})
        try:
            shape, items, errors = parse_events(parse_body(await request.body()))
        except (ValidationError, BadEvent) as exc:
            return JSONResponse({"error": str(exc) if isinstance(exc, ValidationError) else f"body: {exc}"},
                                status_code=400)
        try:
            result = await run_in_threadpool(apply_items, ws, items, f"webhook:{shape}")
        except Exception:
            log.exception("bounce webhook failed")
            return JSONResponse({"error": "temporarily unavailable"}, status_code=500)
        for line in errors:
            log.warning("bounce webhook (%s): skipped %s", shape, line)
        return JSONResponse({**result.as_dict(), "errors": errors + result.errors})

    return bounces
