"""Backoff and retry around Salesforce calls (simple-salesforce retries nothing but REST re-login).

Retried with exponential backoff: 503/502/500/420, 403 REQUEST_LIMIT_EXCEEDED (concurrency or a momentary
burst; a spent daily allocation keeps failing and surfaces after `max_tries`), 400 UNABLE_TO_LOCK_ROW and
connection errors. An expired session (401) calls `relogin()` first — Bulk 2.0 never re-logs in by itself
(simple-salesforce issue #619), and a session that keeps expiring gives up after `max_relogins`.
Only idempotent work is wrapped: queries, updates by Id, upserts on an external id, bulk jobs thereof.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

T = TypeVar("T")
_RETRY_STATUS = {420, 500, 502, 503, 504}


@dataclass
class RetryPolicy:
    max_tries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_relogins: int = 2
    sleep: Callable[[float], None] = field(default=time.sleep)  # clock-ok: real backoff waits

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** attempt))


@dataclass
class RetryStats:
    retries: int = 0
    relogins: int = 0
    last_error: str | None = None


def error_code(exc: BaseException) -> str | None:
    """The Salesforce errorCode of a simple-salesforce exception (first error of the body)."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        code = content[0].get("errorCode")
        return str(code) if code else None
    return None


def classify(exc: BaseException) -> str:
    """'expired', 'transient' or 'fatal'."""
    from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

    if isinstance(exc, SalesforceExpiredSession):
        return "expired"
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return "transient"
    if isinstance(exc, SalesforceError):
        status = getattr(exc, "status", None)
        code = error_code(exc)
        if status in _RETRY_STATUS or code in ("REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"):
            return "transient"
    text = str(exc)
    if "UNABLE_TO_LOCK_ROW" in text or "Error Code 503" in text:
        return "transient"
    return "fatal"


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, stats: RetryStats,
                    relogin: Callable[[], Any] | None = None) -> T:
    attempt = 0
    relogins = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            kind = classify(exc)
            stats.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if kind == "expired" and relogin is not None and relogins < policy.max_relogins:
                relogins += 1
                stats.relogins += 1
                relogin()
                continue
            if kind != "transient" or attempt + 1 >= policy.max_tries:
                raise
            policy.sleep(policy.delay(attempt))
            attempt += 1
            stats.retries += 1
