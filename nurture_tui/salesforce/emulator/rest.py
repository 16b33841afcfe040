"""REST API routes under `/services/data/vXX.X/`: query/queryAll with paging, sObject CRUD and upsert,
describe, updated/deleted, limits, SOSL `search`, sObject Collections, `/composite`, `/composite/batch` and
`/composite/tree`."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from . import composite, sosl
from .query import QueryResult, child_rows, name_value, name_view, target_of, typeof_fields
from .schema import ObjectDef, describe_global_entry, describe_object
from .soql import Query, SoqlError, SubQuery, TypeOf, format_datetime, parse_datetime
from .store import Org, OrgError


@dataclass
class Request:
    method: str
    path: str  # below /services/data/vXX.X/, no leading slash
    version: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    user_id: str

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise OrgError("JSON_PARSER_ERROR", f"Unexpected character in JSON body: {exc}") from exc


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes/str with content_type
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Cursor:
    result: QueryResult
    version: str
    projector: Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Plan:
    """How to shape one object's part of a row: plain fields, then nested ones (parent objects, subqueries, TYPEOF)."""

    fields: list[str] = field(default_factory=list)
    nested: list[tuple[str, Any]] = field(default_factory=list)


class Projector:
    """Builds the JSON shape of a query row: `attributes`, plain fields, nested parent objects (a polymorphic one as
    the `Name` object: `{"attributes": {"type": "Name", "url": …/User/005…}}`), TYPEOF objects with their real
    type, and parent-to-child subqueries as `{totalSize, done, records}` or null."""

    def __init__(self, org: Org, result: QueryResult, version: str) -> None:
        self.org = org
        self.prefix = f"/services/data/v{version}/sobjects/"
        self.sobject = result.sobject
        o = org.schema[result.sobject]
        self.plan = self._plan(o, [c.split(".") for c in result.columns])
        if result.query is not None:
            self._add_items(o, self.plan, result.query, result)

    def _add_items(self, o: ObjectDef, plan: Plan, q: Query, result: QueryResult) -> None:
        """Subqueries (nested up to 5 levels) and TYPEOF items of `q` on object `o`."""
        for item in q.items:
            if isinstance(item, SubQuery):
                rows = child_rows(self.org, o, item.query, result.include_deleted, result.now)
                child = self.org.schema[rows.sobject]
                sub_plan = self._plan(child, [c.split(".") for c in rows.columns])
                self._add_items(child, sub_plan, item.query, result)
                plan.nested.append((rows.relationship, ("sub", rows, sub_plan)))
            elif isinstance(item, TypeOf):
                fk, per_type, default = typeof_fields(self.org, o, item)
                rel = o.fields[fk].relationship or item.relationship
                plan.nested.append((rel, ("typeof", fk, {t: Plan(n) for t, n in per_type.items()}, Plan(default))))

    def _plan(self, o: ObjectDef, paths: list[list[str]]) -> Plan:
        plan = Plan()
        groups: OrderedDict[str, list[list[str]]] = OrderedDict()
        for p in paths:
            if len(p) == 1:
                plan.fields.append(p[0])
            else:
                groups.setdefault(p[0], []).append(p[1:])
        for rel, subpaths in groups.items():
            f = o.relationships[rel.lower()]
            target = target_of(self.org, o, f)
            plan.nested.append((rel, ("parent", f.name, target.name, self._plan(target, subpaths))))
        return plan

    def _build(self, rec: dict[str, Any], sobject: str, plan: Plan) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject, "url": f"{self.prefix}{sobject}/{rec['Id']}"}}
        get = rec.get
        for key in plan.fields:
            out[key] = get(key)
        for key, sub in plan.nested:
            kind = sub[0]
            if kind == "parent":
                _kind, fk, target, subplan = sub
                parent_id = get(fk)
                parent = self.org.find(parent_id) if parent_id else None
                if parent is None:
                    out[key] = None
                elif target == "Name":  # polymorphic: the Name object's fields (it has no relationships)
                    real = self.org.type_of(parent["Id"]) or ""
                    view = {"attributes": {"type": "Name", "url": f"{self.prefix}{real}/{parent['Id']}"}}
                    for n in subplan.fields:
                        view[n] = name_value(parent, real, n)
                    out[key] = view
                else:
                    out[key] = self._build(parent, target, subplan)
            elif kind == "sub":
                _kind, rows, subplan = sub
                children = rows.by_parent.get(rec["Id"])
                out[key] = {"totalSize": len(children), "done": True, "records": [
                    self._build(c, rows.sobject, subplan) for c in children]} if children else None
            else:
                _kind, fk, per_type, default = sub
                target_id = get(fk)
                ttype = self.org.type_of(target_id) if target_id else None
                if not target_id or not ttype:
                    out[key] = None
                elif ttype in per_type:
                    out[key] = self._build(self.org.find(target_id) or {"Id": target_id}, ttype, per_type[ttype])
                else:
                    out[key] = self._build(name_view(self.org, target_id) or {"Id": target_id}, ttype, default)
        return out

    def __call__(self, rec: dict[str, Any]) -> dict[str, Any]:
        return self._build(rec, self.sobject, self.plan)


class RestApi:
    def __init__(self, org: Org, *, batch_size: int = 2000, daily_limit: Callable[[], tuple[int, int]]) -> None:
        self.org = org
        self.batch_size = batch_size
        self.daily_limit = daily_limit
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._cursor_seq = itertools.count(1)
        self._lock = threading.Lock()

    # --------------------------------------------------------------------------------------- dispatcher
    def handle(self, req: Request) -> Response:
        parts = [unquote(p) for p in req.path.strip("/").split("/")] if req.path.strip("/") else []
        try:
            return self._route(req, parts)
        except OrgError as err:
            return Response(err.status, err.rest_body())
        except SoqlError as err:
            return Response(400, [{"message": err.wire_message(req.params.get("q") or ""), "errorCode": err.code}])

    def _route(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        head = parts[0] if parts else ""
        if head in ("query", "queryAll") and m == "GET":
            if len(parts) == 1:
                return self._query(req, include_deleted=head == "queryAll")
            return self._query_more(req, parts[1])
        if head == "sobjects":
            return self._sobjects(req, parts[1:])
        if head in ("search", "parameterizedSearch") and m == "GET" and len(parts) == 1:
            return self._search(req)
        if head == "limits" and m == "GET":
            used, limit = self.daily_limit()
            return Response(200, {"DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)},
                                  "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                                  "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                                  "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
                                  "DataStorageMB": {"Max": 1024, "Remaining": 1000}})
        if head == "composite":
            if len(parts) >= 2 and parts[1] == "sobjects":
                return self._collections(req, parts[2:])
            if len(parts) == 1 and m == "POST":
                return self._composite(req)
            if parts[1:] == ["batch"] and m == "POST":
                return Response(200, composite.batch(req.json(), req.version, self._dispatch(req)))
            if len(parts) == 3 and parts[1] == "tree" and m == "POST":
                with self.org.lock:
                    snapshot = self._snapshot()
                    status, out = composite.tree(self.org, parts[2], req.json(), req.user_id)
                    if status >= 400:  # a tree is all or nothing
                        self._restore(snapshot)
                return Response(status, out)
        if not parts and m == "GET":
            base = f"/services/data/v{req.version}"
            return Response(200, {"sobjects": f"{base}/sobjects", "query": f"{base}/query",
                                  "queryAll": f"{base}/queryAll", "limits": f"{base}/limits",
                                  "composite": f"{base}/composite", "jobs": f"{base}/jobs"})
        raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)

    # ------------------------------------------------------------------------------------------- query
    def _batch(self, req: Request) -> int:
        opts = req.headers.get("sforce-query-options", "")
        for part in opts.split(","):
            k, _, v = part.strip().partition("=")
            if k.strip().lower() == "batchsize" and v.strip().isdigit():
                return max(200, min(2000, int(v)))
        return self.batch_size

    def _query(self, req: Request, include_deleted: bool) -> Response:
        soql = req.params.get("q")
        if not soql:
            raise OrgError("MALFORMED_QUERY", "A query string must be provided (q=)")
        result = self.org.query(soql, include_deleted, req.user_id)
        if result.count_only:
            return Response(200, {"totalSize": result.total, "done": True, "records": []})
        if result.aggregate:
            return Response(200, {"totalSize": result.total, "done": True, "records": result.records})
        with self.org.lock:
            projector = Projector(self.org, result, req.version)
        cursor = Cursor(result, req.version, projector)
        with self._lock:
            cid = f"01g{next(self._cursor_seq):015d}"
            self._cursors[cid] = cursor
            while len(self._cursors) > 200:
                self._cursors.popitem(last=False)
        return self._page(cid, cursor, 0, self._batch(req))

    def _search(self, req: Request) -> Response:
        try:
            found = sosl.search(self.org, req.params.get("q") or "", req.user_id)
        except sosl.SoslError as err:
            return Response(400, [{"message": str(err), "errorCode": "MALFORMED_SEARCH"}])
        records: list[dict[str, Any]] = []
        with self.org.lock:
            for result, rows in found:
                projector = Projector(self.org, result, req.version)
                records += [projector(r) for r in rows]
        return Response(200, {"searchRecords": records})

    def _query_more(self, req: Request, locator: str) -> Response:
        cid, _, pos = locator.rpartition("-")
        with self._lock:
            cursor = self._cursors.get(cid)
        if cursor is None or not pos.isdigit():
            raise OrgError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cid, cursor, int(pos), self._batch(req))

    def _page(self, cid: str, cursor: Cursor, pos: int, batch: int) -> Response:
        rows = cursor.result.records
        with self.org.lock:
            page = [cursor.projector(r) for r in rows[pos:pos + batch]]
        end = pos + len(page)
        body: dict[str, Any] = {"totalSize": cursor.result.total, "done": end >= len(rows), "records": page}
        if end < len(rows):
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{cid}-{end}"
        else:
            with self._lock:
                self._cursors.pop(cid, None)
        return Response(200, body)

    # ----------------------------------------------------------------------------------------- sobjects
    def _sobjects(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        if not parts:
            if m != "GET":
                raise OrgError("METHOD_NOT_ALLOWED", f"HTTP Method '{m}' not allowed. Allowed are GET", status=405)
            return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                describe_global_entry(o, req.version) for o in self.org.schema.values()]})
        o = self.org.obj(parts[0])
        if len(parts) == 1:
            if m == "POST":
                rid = self.org.create(o.name, self._record_body(req), req.user_id)
                return Response(201, {"id": rid, "success": True, "errors": []})
            if m == "GET":
                return Response(200, {"objectDescribe": describe_global_entry(o, req.version), "recentItems": []})
            raise OrgError("METHOD_NOT_ALLOWED", f"HTTP Method '{m}' not allowed. Allowed are GET,POST", status=405)
        sub = parts[1]
        if len(parts) == 2 and sub == "describe" and m == "GET":
            with self.org.lock:
                return Response(200, describe_object(o, req.version, self.org.schema, self.org.picklists(o)))
        if len(parts) == 2 and sub in ("updated", "deleted") and m == "GET":
            return self._changes(req, o.name, sub)
        if len(parts) == 2:
            if m == "GET":
                fields = [f for f in req.params.get("fields", "").split(",") if f] or None
                return Response(200, self.org.get(o.name, sub, req.version, fields))
            if m == "PATCH":
                self.org.update(o.name, sub, self._record_body(req), req.user_id)
                return Response(204)
            if m == "DELETE":
                self.org.delete(o.name, sub, req.user_id)
                return Response(204)
        if len(parts) == 3:
            ext_field, value = sub, parts[2]
            if m == "GET":
                ids = self.org.get_by_external(o.name, ext_field, value)
                if not ids:
                    raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
                if len(ids) > 1:
                    return Response(300, [f"/services/data/v{req.version}/sobjects/{o.name}/{i}" for i in ids])
                return Response(200, self.org.get(o.name, ids[0], req.version))
            if m in ("PATCH", "POST"):
                rid, created = self.org.upsert(o.name, ext_field, value, self._record_body(req), req.user_id)
                return Response(201 if created else 200, {"id": rid, "success": True, "errors": [],
                                                          "created": created})
            if m == "DELETE":
                ids = self.org.get_by_external(o.name, ext_field, value)
                if not ids:
                    raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
                self.org.delete(o.name, ids[0], req.user_id)
                return Response(204)
        raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)

    def _record_body(self, req: Request) -> dict[str, Any]:
        data = req.json()
        if not isinstance(data, dict):
            raise OrgError("JSON_PARSER_ERROR", "Expected a JSON object for the sObject body")
        return data

    def _changes(self, req: Request, sobject: str, which: str) -> Response:
        try:
            start = parse_datetime(req.params["start"]).replace(second=0, microsecond=0)
            end = parse_datetime(req.params["end"]).replace(second=0, microsecond=0)
        except (KeyError, ValueError) as exc:
            raise OrgError("MALFORMED_QUERY", "start and end must be ISO 8601 datetimes") from exc
        now = self.org.clock()
        days = 15 if which == "deleted" else 30
        if (now - start).days > days or end < start:
            raise OrgError("INVALID_REPLICATION_DATE", f"start date must be within the last {days} days "
                           "and before end")
        s, e = format_datetime(start), format_datetime(end)
        if which == "updated":
            return Response(200, {"ids": self.org.updated_ids(sobject, s, e), "latestDateCovered": e})
        return Response(200, {"deletedRecords": self.org.deleted_records(sobject, s, e),
                              "earliestDateAvailable": format_datetime(now.replace(microsecond=0) -
                                                                       timedelta(days=days)),
                              "latestDateCovered": e})

    # --------------------------------------------------------------------------------------- composite
    def _collections(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        if m == "DELETE":
            ids = [i for i in req.params.get("ids", "").split(",") if i]
            all_or_none = req.params.get("allOrNone", "false").lower() == "true"
            self._limit(ids)
            return Response(200, self._each(ids, lambda rid: self._delete_one(rid, req.user_id), all_or_none))
        if m == "GET" and len(parts) == 1:
            o = self.org.obj(parts[0])
            ids = [i for i in req.params.get("ids", "").split(",") if i]
            fields = [f for f in req.params.get("fields", "").split(",") if f] or None
            out: list[Any] = []
            for rid in ids:
                try:
                    out.append(self.org.get(o.name, rid, req.version, fields))
                except OrgError:
                    out.append(None)
            return Response(200, out)
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise OrgError("JSON_PARSER_ERROR", "Expected {\"allOrNone\": bool, \"records\": [...]}")
        records: list[dict[str, Any]] = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        self._limit(records)
        if m == "PATCH" and len(parts) == 2:
            o = self.org.obj(parts[0])
            ext = parts[1]

            def upsert_one(r: dict[str, Any]) -> dict[str, Any]:
                value = next((v for k, v in r.items() if k.lower() == ext.lower()), None)
                if value in (None, ""):
                    raise OrgError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
                rid, created = self.org.upsert(o.name, ext, str(value), r, req.user_id)
                return {"id": rid, "success": True, "errors": [], "created": created}

            return Response(200, self._each(records, upsert_one, all_or_none))
        if m == "POST" and not parts:
            def create_one(r: dict[str, Any]) -> dict[str, Any]:
                return {"id": self.org.create(self._type_of(r), r, req.user_id), "success": True, "errors": []}

            return Response(200, self._each(records, create_one, all_or_none))
        if m == "PATCH" and not parts:
            def update_one(r: dict[str, Any]) -> dict[str, Any]:
                rid = r.get("id") or r.get("Id")
                if not rid:
                    raise OrgError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                data = {k: v for k, v in r.items() if k not in ("id", "Id")}
                self.org.update(self._type_of(r), str(rid), data, req.user_id)
                return {"id": rid, "success": True, "errors": []}

            return Response(200, self._each(records, update_one, all_or_none))
        raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)

    @staticmethod
    def _limit(items: list[Any]) -> None:
        if len(items) > 200:
            raise OrgError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into "
                           "this call")

    @staticmethod
    def _type_of(r: dict[str, Any]) -> str:
        t = (r.get("attributes") or {}).get("type")
        if not t:
            raise OrgError("INVALID_TYPE", "No SObject Type defined in attributes")
        return str(t)

    def _delete_one(self, rid: str, user: str) -> dict[str, Any]:
        t = self.org.type_of(rid)
        if t is None:
            raise OrgError("MALFORMED_ID", f"malformed id {rid}", ["Id"])
        self.org.delete(t, rid, user)
        return {"id": rid, "success": True, "errors": []}

    def _each(self, items: list[Any], fn: Callable[[Any], dict[str, Any]], all_or_none: bool) -> list[Any]:
        """One result per record, in order; with allOrNone, one failure rolls back all of them."""
        with self.org.lock:
            snapshot = self._snapshot() if all_or_none else None
            results: list[dict[str, Any]] = []
            failed = False
            for item in items:
                try:
                    results.append(fn(item))
                except OrgError as err:
                    failed = True
                    out: dict[str, Any] = {"success": False, "errors": [err.record_error()]}
                    rid = item.get("id") or item.get("Id") if isinstance(item, dict) else item
                    if rid:
                        out["id"] = rid
                    results.append(out)
            if all_or_none and failed and snapshot is not None:
                self._restore(snapshot)
                rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back "
                          "because not all records were valid and the request was using AllOrNone header",
                          "fields": []}
                results = [r if not r["success"] else {"id": r["id"], "success": False, "errors": [rolled]}
                           for r in results]
            return results

    def _snapshot(self) -> Any:
        org = self.org
        return ({k: {i: dict(r) for i, r in v.items()} for k, v in org.records.items()},
                {k: dict(v) for k, v in org._ext.items()}, dict(org._members))

    def _restore(self, snap: Any) -> None:
        org = self.org
        records, ext, members = snap
        for k, v in records.items():
            org.records[k] = v
        for k, v in ext.items():
            org._ext[k] = v
        org._members = members

    def _dispatch(self, req: Request) -> composite.Dispatch:
        def run(method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
            resp = self.handle(Request(method, path, req.version, params, req.headers,
                                       dumps(body) if body is not None else b"", req.user_id))
            return resp.status, resp.body

        return run

    def _composite(self, req: Request) -> Response:
        body = req.json()
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or len(subs) > 25:
            raise OrgError("JSON_PARSER_ERROR", "compositeRequest must be a list of at most 25 subrequests")
        refs: dict[str, Any] = {}
        out: list[dict[str, Any]] = []
        prefix = f"/services/data/v{req.version}/"
        failed = False
        for sub in subs:
            url = _substitute(str(sub.get("url", "")), refs)
            path, _, qs = url.partition("?")
            if not path.startswith(prefix):
                raise OrgError("INVALID_URL", f"subrequest URL must start with {prefix}")
            params = dict(p.partition("=")[::2] for p in qs.split("&") if p)
            sub_body = _substitute_obj(sub.get("body"), refs)
            if failed and body.get("allOrNone"):
                out.append({"body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled "
                            "back since another operation in the same transaction failed."}],
                            "httpHeaders": {}, "httpStatusCode": 400, "referenceId": sub.get("referenceId")})
                continue
            sreq = Request(str(sub.get("method", "GET")).upper(), path[len(prefix):], req.version,
                           {k: unquote(v.replace("+", " ")) for k, v in params.items()}, req.headers,
                           dumps(sub_body) if sub_body is not None else b"", req.user_id)
            resp = self.handle(sreq)
            failed = failed or resp.status >= 400
            refs[str(sub.get("referenceId"))] = resp.body
            out.append({"body": resp.body, "httpHeaders": {}, "httpStatusCode": resp.status,
                        "referenceId": sub.get("referenceId")})
        return Response(200, {"compositeResponse": out})


def _substitute(text: str, refs: dict[str, Any]) -> str:
    """Resolve `@{referenceId.field}` in a composite subrequest from earlier responses."""

    def repl(m: Any) -> str:
        ref, _, key = m.group(1).partition(".")
        val = refs.get(ref)
        return str(val.get(key)) if isinstance(val, dict) else m.group(0)

    return re.sub(r"@\{([^}]+)\}", repl, text)


def _substitute_obj(obj: Any, refs: dict[str, Any]) -> Any:
    if isinstance(obj, str):
        return _substitute(obj, refs)
    if isinstance(obj, dict):
        return {k: _substitute_obj(v, refs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute_obj(v, refs) for v in obj]
    return obj

