"""Request-body limits per route, enforced while the body streams in — before routing, parsing or any
token check (issue 20 item 4; docs/security.md).

`BodyLimit` is a plain ASGI middleware around the tracking app. A `Content-Length` above the route's
limit is answered 413 at once without reading a byte of the body; a body without one (chunked) is counted
as it arrives and answered 413 as soon as it passes the limit, leaving the rest unread (the server then
closes the connection). A body within the limit is buffered (at most the limit) and replayed to the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: (path prefix, largest body in bytes); the first match wins, the last entry is the default.
ROUTE_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/events", 1_000_000),  # up to 1,000 events
    ("/api/bounces", 5_000_000),  # an ESP webhook batch (SendGrid posts up to a few MB)
    ("/u/", 64_000),  # the unsubscribe forms and RFC 8058 one-click
    ("/api/consent", 16_000),  # one person's consent (docs/compliance.md)
    ("/confirm/", 4_000),  # the double opt-in button (an empty form)
    ("/o/", 0),  # GET only: no body
    ("/c/", 0),
    ("/healthz", 0),
    ("", 0),
)


def limit_for(path: str) -> int:
    return next(limit for prefix, limit in ROUTE_LIMITS if path.startswith(prefix))


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: Callable[[str], int] = limit_for) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits(scope.get("path", ""))
        length = _content_length(scope)
        if length == -1:
            await _reply(send, 400, b"bad Content-Length\n")
            return
        if length is not None and length > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length, None when not given, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                n = int(value)
            except ValueError:
                return -1
            return n if n >= 0 else -1
    return None


async def _too_large(send: Send, limit: int) -> None:
    await _reply(send, 413, f"request body too large (the limit here is {limit} bytes)\n".encode())


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
