"""Composite resources beyond `/composite`: `/composite/batch` (independent subrequests) and
`/composite/tree/{SObject}` (a tree of new records with their children, all or nothing).

Shapes as in Salesforce's REST guide: a batch answers `{"hasErrors", "results": [{"statusCode", "result"}]}`
(≤ 25 subrequests, URLs relative to `/services/data/`, `haltOnError` skips the rest after a failure); a tree
answers 201 `{"hasErrors": false, "results": [{"referenceId", "id"}]}` or 400 with the failing records'
`errors` and nothing created (≤ 200 records in all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .query import child_relationship
from .soql import SoqlError
from .store import Org, OrgError

#: Runs one REST subrequest: (method, path below /services/data/vXX.X/, query params, JSON body) → (status, body).
Dispatch = Callable[[str, str, dict[str, str], Any], tuple[int, Any]]


def batch(body: Any, version: str, dispatch: Dispatch) -> dict[str, Any]:
    subs = body.get("batchRequests") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs or len(subs) > 25:
        raise OrgError("INVALID_BATCH_REQUEST", "batchRequests must be a list of 1 to 25 subrequests")
    halt = bool(body.get("haltOnError", False))
    results: list[dict[str, Any]] = []
    has_errors = False
    for sub in subs:
        if halt and has_errors:
            results.append({"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED",
                                                            "message": "Batch processing halted per request"}]})
            continue
        url = str(sub.get("url", "")).lstrip("/").removeprefix("services/data/")
        path, _, qs = url.partition("?")
        ver, _, rest = path.partition("/")
        if ver != f"v{version}":
            raise OrgError("INVALID_BATCH_REQUEST", f"subrequest URL must start with v{version}/: {url}")
        status, result = dispatch(str(sub.get("method", "GET")).upper(), rest, dict(parse_qsl(qs)),
                                  sub.get("richInput"))
        has_errors = has_errors or status >= 400
        results.append({"statusCode": status, "result": result})
    return {"hasErrors": has_errors, "results": results}


def tree(org: Org, sobject: str, body: Any, user: str) -> tuple[int, dict[str, Any]]:
    """Create the records and their nested children; the caller rolls back when the answer is 400."""
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise OrgError("INVALID_INPUT", "Expected {\"records\": [...]}")
    if _count(records) > 200:
        raise OrgError("LIMIT_EXCEEDED", "Request exceeds the limit of 200 records")
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with org.lock:
        root = org.obj(sobject)
        for rec in records:
            _create(org, root.name, rec, None, user, results, errors)
    if errors:
        return 400, {"hasErrors": True, "results": errors}
    return 201, {"hasErrors": False, "results": results}


def _count(records: list[Any]) -> int:
    n = 0
    for r in records:
        n += 1
        for v in r.values() if isinstance(r, dict) else ():
            if isinstance(v, dict) and isinstance(v.get("records"), list):
                n += _count(v["records"])
    return n


def _create(org: Org, sobject: str, rec: dict[str, Any], parent: tuple[str, str] | None, user: str,
            results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
    attrs = rec.get("attributes") or {}
    ref = attrs.get("referenceId")
    if attrs.get("type") and str(attrs["type"]).lower() != sobject.lower():
        errors.append({"referenceId": ref, "errors": [{"statusCode": "INVALID_TYPE", "message": f"expected type "
                                                       f"{sobject}, got {attrs['type']}", "fields": []}]})
        return
    fields = {k: v for k, v in rec.items() if k != "attributes" and not _is_children(v)}
    if parent is not None:
        fields[parent[0]] = parent[1]
    try:
        rid = org.create(sobject, fields, user)
    except OrgError as err:
        errors.append({"referenceId": ref, "errors": [err.record_error()]})
        return
    results.append({"referenceId": ref, "id": rid})
    parent_obj = org.schema[sobject]
    for key, value in rec.items():
        if not _is_children(value):
            continue
        try:
            child, fk = child_relationship(org, parent_obj, key)
        except SoqlError as exc:
            raise OrgError("INVALID_FIELD", f"No such child relationship '{key}' on {sobject}", [key]) from exc
        for child_rec in value["records"]:
            _create(org, child.name, child_rec, (fk.name, rid), user, results, errors)


def _is_children(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("records"), list)
