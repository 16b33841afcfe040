"""Fault injection: request-level errors, per-record errors and failed Bulk 2.0 jobs.

Kinds:
- `expired_session`: 401 INVALID_SESSION_ID and the presented session is revoked (a real re-login is needed).
  `times=1` is "expired once"; `times=-1` keeps failing ("repeatedly").
- `request_limit`: 403 REQUEST_LIMIT_EXCEEDED.  `unavailable`: 503.  `method_failure`: 420.
- `lock_row`: 400 UNABLE_TO_LOCK_ROW for the whole request.
- `drop_connection`: the connection is closed without an answer (the client sees a lost connection).
- `record_error`: a per-record failure (`code`, default FIELD_CUSTOM_VALIDATION_EXCEPTION) for records of
  `sobject`, optionally only `record_ids` and/or records whose written values include `fields` (like a
  validation rule on a value: `fields={"Subject": "…"}` also picks out a record being created); counts
  records, not requests. Shows up as `statusCode` in
  Collections, `sf__Error` in Bulk 2.0 and a 400 on single-record calls.
- `bulk_job_fail`: the next Bulk 2.0 job(s) end in state Failed with `errorMessage`.
Matching: optional `method` and `path` (a regex searched in the request path).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .store import OrgError

KINDS = ("expired_session", "request_limit", "unavailable", "method_failure", "lock_row", "drop_connection",
         "record_error", "bulk_job_fail")

#: The status of a "response" that is no response: the server closes the connection instead.
DROP = 0

_REQUEST_FAULTS: dict[str, tuple[int, str, str]] = {
    "expired_session": (401, "INVALID_SESSION_ID", "Session expired or invalid"),
    "request_limit": (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    "unavailable": (503, "SERVER_UNAVAILABLE", "Service temporarily unavailable, please retry"),
    "method_failure": (420, "METHOD_FAILURE", "Method failure, please retry"),
    "lock_row": (400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"),
    "drop_connection": (DROP, "", ""),
}


@dataclass
class Fault:
    kind: str
    times: int = 1  # -1 = forever
    method: str | None = None
    path: str | None = None
    sobject: str | None = None
    record_ids: set[str] | None = None
    fields: dict[str, Any] | None = None  # record_error: only records whose written values include these
    code: str | None = None
    message: str | None = None
    skip: int = 0  # let this many matching requests/records through first
    after: bool = False  # request faults: process the request, then answer with the error (a lost response)
    hits: int = 0
    _rx: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        self._rx = re.compile(self.path) if self.path else None

    @property
    def active(self) -> bool:
        return self.times != 0

    def consume(self) -> bool:
        """Count a match; False while still skipping."""
        if self.skip > 0:
            self.skip -= 1
            return False
        self.hits += 1
        if self.times > 0:
            self.times -= 1
        return True


@dataclass(frozen=True)
class RequestFault:
    status: int
    code: str
    message: str
    revoke_session: bool
    after: bool = False

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code}]


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Fault] = []

    def add(self, kind: str, **kw: Any) -> Fault:
        if "record_ids" in kw and kw["record_ids"] is not None:
            kw["record_ids"] = set(kw["record_ids"])
        f = Fault(kind, **kw)
        with self._lock:
            self.items.append(f)
        return f

    def clear(self) -> None:
        with self._lock:
            self.items.clear()

    def for_request(self, method: str, path: str) -> RequestFault | None:
        with self._lock:
            for f in self.items:
                if f.kind not in _REQUEST_FAULTS or not f.active:
                    continue
                if f.method and f.method.upper() != method:
                    continue
                if f._rx and not f._rx.search(path):
                    continue
                if not f.consume():
                    continue
                status, code, message = _REQUEST_FAULTS[f.kind]
                return RequestFault(status, f.code or code, f.message or message, f.kind == "expired_session",
                                    f.after)
        return None

    def check_record(self, sobject: str, record_id: str | None, data: dict[str, Any]) -> None:
        """The org's record hook: raise the injected per-record error for a matching record."""
        if not self.items:
            return
        with self._lock:
            for f in self.items:
                if f.kind != "record_error" or not f.active:
                    continue
                if f.sobject and f.sobject.lower() != sobject.lower():
                    continue
                if f.record_ids is not None and record_id not in f.record_ids:
                    continue
                if f.fields and any(data.get(k) != v for k, v in f.fields.items()):
                    continue
                if not f.consume():
                    continue
                code = f.code or "FIELD_CUSTOM_VALIDATION_EXCEPTION"
                raise OrgError(code, f.message or f"injected {code} for {record_id or 'new record'}")

    def bulk_failure(self, sobject: str) -> str | None:
        with self._lock:
            for f in self.items:
                if f.kind == "bulk_job_fail" and f.active and (not f.sobject or f.sobject.lower() == sobject.lower()):
                    if not f.consume():
                        continue
                    return f.message or "InvalidBatch : Failed to process query: injected bulk job failure"
        return None
