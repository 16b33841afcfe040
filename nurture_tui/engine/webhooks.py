"""Delivery of `action: webhook` rows: HMAC-SHA256-signed JSON POSTs with exponential-backoff retries.

Headers: `X-Nurture-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>`,
`X-Nurture-Timestamp`, `Idempotency-Key` (the row's key, stable across retries, so receivers can dedupe).
2xx = sent; 4xx other than 408/429 = failed at once; anything else is retried up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from ..store.engine import write_tx
from ..store.tables import webhook_outbox
from ..workspace import Workspace

MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 6 * 3600))


@dataclass
class WebhookResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def deliver_due(ws: Workspace, limit: int = 100, client: Any = None) -> WebhookResult:
    """POST due webhook rows (run by the leader only, so a row is never posted by two processes at once)."""
    import httpx

    now = ws.clock.now()
    w = webhook_outbox.c
    with ws.engine.connect() as conn:
        rows = conn.execute(
            select(w.id, w.url, w.body, w.attempts, w.idempotency_key)
            .where(w.status == "pending", w.next_try_at <= now).order_by(w.next_try_at, w.id).limit(limit)
        ).all()
    result = WebhookResult()
    if not rows:
        return result
    secret = ws.settings.mail.secret_key.get_secret_value()
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS)
    try:
        for row in rows:
            body = json.dumps(row.body, separators=(",", ":"), sort_keys=True).encode()
            stamp = str(int(now.timestamp()))
            headers = {"Content-Type": "application/json", "X-Nurture-Timestamp": stamp,
                       "X-Nurture-Signature": sign(secret, stamp, body), "Idempotency-Key": row.idempotency_key}
            error: str | None = None
            permanent = False
            try:
                resp = http.post(row.url, content=body, headers=headers)
                if resp.status_code >= 300:
                    error = f"HTTP {resp.status_code}"
                    permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            _record(ws, row, now, error, permanent, result)
    finally:
        if own:
            http.close()
    return result


def _record(ws: Workspace, row: Any, now: datetime, error: str | None, permanent: bool, result: WebhookResult) -> None:
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if error is None:
        values.update(status="sent", sent_at=now)
        result.sent += 1
    elif permanent or attempts >= MAX_ATTEMPTS:
        values.update(status="failed")
        result.failed += 1
    else:
        values.update(next_try_at=now + backoff(attempts))
        result.retried += 1
    with write_tx(ws.engine) as conn:
        conn.execute(update(webhook_outbox).where(webhook_outbox.c.id == row.id).values(**values))
