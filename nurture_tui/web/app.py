"""The tracking web app (Starlette): served by `nurture daemon --http HOST:PORT` or `web.server.WebServer`.

    GET  /o/{token}.gif     open pixel (always a 1×1 GIF for a valid token; 400 for a bad one)
    GET  /c/{token}         click: records it, then 302 to the URL inside the signed token (never elsewhere;
                            with `mail.page_tracking_param` plus the lead's visit token)
    GET  /v/{token}.gif?u=URL  a website page view of the lead the visit token names (a 1×1 GIF)

Opens, clicks and page views: the token is verified in memory on the event loop, the hit is appended to
the process's tracking journal and answered once that is on disk (`journal.py`); the database writer
(`ingest.HitWriter`) commits it just after (no thread-pool hop, no transaction of its own).
    GET  /u/{token}         unsubscribe page: leave this category, or choose categories / opt out of all
    POST /u/{token}         the page's forms, and RFC 8058 one-click (`List-Unsubscribe=One-Click`)
    POST /api/events        page views and form submissions; `Authorization: Bearer <events_api_token>`
    POST /api/consent       consent from a signup form or another system (docs/compliance.md)
    GET|POST /confirm/{token}  the double opt-in confirmation page and its button
    POST /api/bounces       ESP bounce/complaint webhooks (web/bounce_hook.py; same token)
    GET  /healthz

Request bodies are limited per route while they stream in, before routing, parsing or token checks
(`limits.BodyLimit`: 413). A tampered, expired or wrong-kind token gets 400 and nothing is recorded.
Other database work runs in the thread pool (the store is synchronous), one transaction per request.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import require_real_secrets
from ..errors import NotFoundError, ValidationError
from ..workspace import Workspace
from . import events_api, pages, tracking
from .bounce_hook import bounce_endpoint
from .consent_api import confirm_endpoint, consent_endpoint
from .forms import parse_form
from .ingest import HitWriter
from .limits import BodyLimit, limit_for

PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
         b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
log = logging.getLogger("nurture.web")
_NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Referrer-Policy": "no-referrer"}


def _hit(request: Request) -> tracking.Hit:
    return tracking.Hit(request.headers.get("user-agent"), request.client.host if request.client else None,
                        request.method)


def _bad(exc: Exception, *, html: bool = False) -> Response:
    if html:
        return HTMLResponse(pages.error_page(str(exc)), status_code=400, headers=_NO_STORE)
    return PlainTextResponse(f"invalid link: {exc}", status_code=400, headers=_NO_STORE)


async def _body(request: Request) -> bytes:
    """The body (already bounded by `BodyLimit`; checked again for an app mounted without it)."""
    body = await request.body()
    if len(body) > limit_for(request.url.path):
        raise ValidationError("body", "request body too large")
    return body


def create_app(ws: Workspace, *, deployed: bool = False) -> BodyLimit:
    """The tracking app wrapped in the per-route body limits. Refuses (NurtureError) to build with an empty,
    short or built-in `mail.secret_key` / `mail.events_api_token`: anyone could forge tokens or events.
    `deployed`: served by `nurture daemon --http` (see `mail.tracking_writer`)."""
    require_real_secrets(ws.settings, "web app")
    writer = HitWriter(ws, deployed=deployed)
    app = BodyLimit(FastHits(_routes(ws, writer), ws, writer))
    app.hit_writer = writer  # type: ignore[attr-defined]
    return app


_PIXEL_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(PIXEL)).encode()),
                  *((k.lower().encode(), v.encode()) for k, v in _NO_STORE.items())]
_REDIRECT_HEADERS = [(b"content-length", b"0"), *((k.lower().encode(), v.encode()) for k, v in _NO_STORE.items())]


_HIT_KINDS = {"o": "open", "c": "click", "v": "page_view"}


class FastHits:
    """`GET /o/{token}`, `GET /c/{token}` and `GET /v/{token}.gif?u=…` answered straight from ASGI — the hot
    path under a mail burst: no routing, Request or Response objects. The same answers as the Starlette routes
    (which still serve HEAD and everything else): the pixel or the 302 once the hit is durable; errors through the
    same responses."""

    def __init__(self, app: ASGIApp, ws: Workspace, writer: HitWriter) -> None:
        self.app, self.ws, self.writer = app, ws, writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "GET" or path[:3] not in ("/o/", "/c/", "/v/") \
                or len(path) == 3 or "/" in path[3:]:
            await self.app(scope, receive, send)
            return
        kind = _HIT_KINDS[path[1]]
        token = path[3:] if kind == "click" else path[3:].removesuffix(".gif")
        ua = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                ua = value.decode("latin-1")
                break
        client = scope.get("client")
        now = self.ws.clock.now()
        error: Response | None = None
        try:
            if kind == "page_view":
                data = tracking.check_visit(self.ws, token, scope.get("query_string", b""), now)
            else:
                data = tracking.check_hit(self.ws, token, kind, now)
            await self.writer.record(data, kind, tracking.Hit(ua, client[0] if client else None, "GET"), now)
        except (ValidationError, NotFoundError) as exc:
            error = _bad(exc, html=kind == "click")
        except Exception:  # the writer logged it; a plain 500
            log.exception("tracking hit failed")
            error = PlainTextResponse("temporarily unavailable", status_code=500, headers=_NO_STORE)
        if error is not None:
            await error(scope, receive, send)
        elif kind != "click":
            await send({"type": "http.response.start", "status": 200, "headers": _PIXEL_HEADERS})
            await send({"type": "http.response.body", "body": PIXEL})
        else:
            target = tracking.landing_url(self.ws, data, now)
            location = quote(target, safe=":/%#?=@[]!$&'()*+,;").encode("latin-1")
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", location), *_REDIRECT_HEADERS]})
            await send({"type": "http.response.body", "body": b""})


def hit_writer(app: Any) -> HitWriter | None:
    """The group-commit writer of an app built by `create_app` (to close it when the server stops)."""
    return getattr(app, "hit_writer", None)


def _routes(ws: Workspace, writer: HitWriter) -> Starlette:
    api_token = ws.settings.mail.events_api_token.get_secret_value().encode()

    async def record(request: Request, token: str, kind: str) -> tuple[str, Response | None]:
        """(click target, None) once the hit is durable, or ("", the error response)."""
        now = ws.clock.now()
        try:
            if kind == "page_view":
                data = tracking.check_visit(ws, token, request.url.query.encode("latin-1"), now)
            else:
                data = tracking.check_hit(ws, token, kind, now)
            await writer.record(data, kind, _hit(request), now)
        except (ValidationError, NotFoundError) as exc:
            return "", _bad(exc, html=kind == "click")
        except Exception:  # the writer logged it; a plain 500
            log.exception("tracking hit failed")
            return "", PlainTextResponse("temporarily unavailable", status_code=500, headers=_NO_STORE)
        return tracking.landing_url(ws, data, now) if kind == "click" else data.url, None

    async def open_pixel(request: Request) -> Response:
        _, error = await record(request, request.path_params["token"].removesuffix(".gif"), "open")
        return error or Response(PIXEL, media_type="image/gif", headers=_NO_STORE)

    async def page_view(request: Request) -> Response:
        _, error = await record(request, request.path_params["token"].removesuffix(".gif"), "page_view")
        return error or Response(PIXEL, media_type="image/gif", headers=_NO_STORE)

    async def click(request: Request) -> Response:
        url, error = await record(request, request.path_params["token"], "click")
        return error or RedirectResponse(url, status_code=302, headers=_NO_STORE)

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "GET":
                view = await run_in_threadpool(tracking.unsubscribe_view, ws, token)
                return HTMLResponse(pages.unsubscribe_page(view, request.url.path), headers=_NO_STORE)
            form = parse_form(request.headers.get("content-type", ""), await _body(request))
            _, changed = await run_in_threadpool(tracking.apply_unsubscribe, ws, token, form, _hit(request))
        except (ValidationError, NotFoundError) as exc:
            return _bad(exc, html=True)
        return HTMLResponse(pages.done_page(changed), headers=_NO_STORE)

    async def events(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_token):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="nurture-events"'})
        try:
            payload: Any = events_api.parse_body(await _body(request))
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            now = ws.clock.now()
            events = events_api.parse_events(payload, now)
            ids = await writer.record_api(events, now)
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except Exception:  # the writer logged it; a plain 500
            log.exception("events request failed")
            return JSONResponse({"error": "temporarily unavailable"}, status_code=500)
        return JSONResponse({"recorded": len(ids), "activity_ids": ids}, status_code=202)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(writer.close)  # commit what is queued before the process goes

    return Starlette(lifespan=lifespan, routes=[
        Route("/o/{token}", open_pixel, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
        Route("/v/{token}", page_view, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/api/events", events, methods=["POST"]),
        Route("/api/bounces", bounce_endpoint(ws), methods=["POST"]),
        Route("/api/consent", consent_endpoint(ws), methods=["POST"]),
        Route("/confirm/{token}", confirm_endpoint(ws), methods=["GET", "POST"]),
        Route("/healthz", health, methods=["GET"]),
    ])
