"""`web.limits.BodyLimit` at the ASGI level: what it reads, what it answers, what it passes on."""

from __future__ import annotations

import asyncio
from typing import Any

from nurture_tui.web.limits import BodyLimit, limit_for


class Inner:
    """The wrapped app: records the body it was given and answers 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        if scope["type"] == "http":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        self.calls.append((scope["type"], body))


def run(path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None,
        scope_type: str = "http") -> tuple[Inner, list[dict[str, Any]], int]:
    inner = Inner()
    sent: list[dict[str, Any]] = []
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        i = reads - 1
        if i >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": scope_type, "path": path, "headers": headers or []}
    asyncio.run(BodyLimit(inner)(scope, receive, send))
    return inner, sent, reads


def test_a_streamed_body_is_cut_off_at_the_limit_and_never_reaches_the_app() -> None:
    limit = limit_for("/u/x")
    inner, sent, reads = run("/u/x", [b"x" * 16_000] * 1000)
    assert inner.calls == [] and sent[0]["status"] == 413
    assert reads == limit // 16_000 + 1  # stopped reading at the first chunk past the limit


def test_a_declared_length_over_the_limit_is_answered_without_reading() -> None:
    inner, sent, reads = run("/api/events", [b"{}"], [(b"content-length", b"200000000")])
    assert (inner.calls, sent[0]["status"], reads) == ([], 413, 0)
    inner, sent, reads = run("/api/events", [b"{}"], [(b"content-length", b"ten")])
    assert (inner.calls, sent[0]["status"], reads) == ([], 400, 0)


def test_a_body_within_the_limit_is_replayed_whole() -> None:
    inner, sent, _ = run("/api/events", [b'{"events":', b" []}"])
    assert inner.calls == [("http", b'{"events": []}')] and sent[0]["status"] == 200
    inner, sent, _ = run("/o/tok.gif", [b""])
    assert inner.calls == [("http", b"")] and sent[0]["status"] == 200


def test_lifespan_passes_through() -> None:
    inner, sent, reads = run("", [], scope_type="lifespan")
    assert inner.calls == [("lifespan", b"")] and sent == [] and reads == 0
