"""The older Bulk API (1.0) under `/services/async/{ver}/`, JSON content type — what simple-salesforce's `sf.bulk`
sends: `job` (create), `job/{id}` (info; POST `{"state": "Closed"}`), `job/{id}/batch` (add: a JSON list of
records, or the SOQL text for query jobs), `job/{id}/batch/{bid}` (info), `…/result` (per-record results, or
the list of query result ids) and `…/result/{rid}` (query records), `…/request` (the uploaded records).

The session travels in `X-SFDC-Session`; errors are `{"exceptionCode", "exceptionMessage"}` (HTTP 400, or 401
for InvalidSessionId). Batches are processed when added, so their state is `Completed` at the first poll.
Query records carry `attributes`; datetime fields come back as epoch milliseconds, as on a real org (the REST API
gives ISO strings) — simple-salesforce issue #290.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from .rest import Projector, Request, Response
from .soql import SoqlError, parse_datetime
from .store import Org, OrgError

_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")


class Bulk1Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Batch:
    info: dict[str, Any]
    request: list[Any] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)  # DML: per-record results; query: the records


@dataclass
class Job1:
    info: dict[str, Any]
    batches: dict[str, Batch] = field(default_factory=dict)


class Bulk1Api:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.jobs: dict[str, Job1] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, req: Request, parts: list[str]) -> Response:
        try:
            return self._route(req, parts)
        except Bulk1Error as err:
            return Response(err.status, {"exceptionCode": err.code, "exceptionMessage": err.message})
        except OrgError as err:
            return Response(400, {"exceptionCode": "InvalidJob", "exceptionMessage": err.message})
        except SoqlError as err:
            return Response(400, {"exceptionCode": "InvalidBatch", "exceptionMessage": f"{err.code}: {err.message}"})

    def _route(self, req: Request, parts: list[str]) -> Response:
        if not parts or parts[0] != "job":
            raise Bulk1Error("InvalidUrl", "unknown Bulk API resource", 404)
        if len(parts) == 1 and req.method == "POST":
            return Response(201, self._create(req))
        job = self.jobs.get(parts[1]) if len(parts) > 1 else None
        if job is None:
            raise Bulk1Error("InvalidJob", f"Invalid job id: {parts[1] if len(parts) > 1 else ''}")
        if len(parts) == 2:
            if req.method == "POST":
                return Response(200, self._set_state(req, job))
            return Response(200, job.info)
        if parts[2] != "batch":
            raise Bulk1Error("InvalidUrl", "unknown Bulk API resource", 404)
        if len(parts) == 3:
            if req.method == "POST":
                return Response(201, self._add_batch(req, job))
            return Response(200, {"batchInfo": [b.info for b in job.batches.values()]})
        batch = job.batches.get(parts[3])
        if batch is None:
            raise Bulk1Error("InvalidBatch", f"Invalid batch id: {parts[3]}")
        if len(parts) == 4:
            return Response(200, batch.info)
        if parts[4] == "request":
            return Response(200, batch.request)
        if parts[4] == "result":
            if job.info["operation"] not in ("query", "queryAll"):
                return Response(200, batch.results)
            result_id = f"752{batch.info['id'][3:]}"
            if len(parts) == 5:
                return Response(200, [result_id])
            if parts[5] != result_id:
                raise Bulk1Error("InvalidBatch", f"Invalid result id: {parts[5]}")
            return Response(200, batch.results)
        raise Bulk1Error("InvalidUrl", "unknown Bulk API resource", 404)

    def _create(self, req: Request) -> dict[str, Any]:
        body = _json(req)
        op = body.get("operation")
        if op not in _OPERATIONS:
            raise Bulk1Error("InvalidJob", f"Invalid operation: {op}")
        if str(body.get("contentType", "JSON")).upper() != "JSON":
            raise Bulk1Error("InvalidJob", "only contentType JSON is emulated (XML and CSV are not)")
        sobject = self.org.obj(str(body.get("object") or "")).name
        if op == "upsert" and not body.get("externalIdFieldName"):
            raise Bulk1Error("InvalidJob", "External ID was blank for upsert")
        now = self.org.now_str()
        info = {"apexProcessingTime": 0, "apiActiveProcessingTime": 0, "apiVersion": float(req.version),
                "assignmentRuleId": None, "concurrencyMode": "Serial" if body.get("concurrencyMode") == 1 else
                "Parallel", "contentType": "JSON", "createdById": req.user_id, "createdDate": now,
                "externalIdFieldName": body.get("externalIdFieldName"), "id": f"750{next(self._seq):012d}AAA",
                "numberBatchesCompleted": 0, "numberBatchesFailed": 0, "numberBatchesInProgress": 0,
                "numberBatchesQueued": 0, "numberBatchesTotal": 0, "numberRecordsFailed": 0,
                "numberRecordsProcessed": 0, "numberRetries": 0, "object": sobject, "operation": op, "state": "Open",
                "systemModstamp": now, "totalProcessingTime": 0}
        with self._lock:
            self.jobs[info["id"]] = Job1(info)
        return info

    def _set_state(self, req: Request, job: Job1) -> dict[str, Any]:
        state = _json(req).get("state")
        if state not in ("Closed", "Aborted"):
            raise Bulk1Error("InvalidJobState", f"Invalid state: {state}")
        job.info["state"] = state
        job.info["systemModstamp"] = self.org.now_str()
        return job.info

    def _add_batch(self, req: Request, job: Job1) -> dict[str, Any]:
        info = job.info
        if info["state"] != "Open":
            raise Bulk1Error("InvalidJobState", f"Job {info['id']} is not open")
        now = self.org.now_str()
        bid = f"751{next(self._seq):012d}AAA"
        batch = Batch({"apexProcessingTime": 0, "apiActiveProcessingTime": 0, "createdDate": now, "id": bid,
                       "jobId": info["id"], "numberRecordsFailed": 0, "numberRecordsProcessed": 0,
                       "state": "Completed", "stateMessage": None, "systemModstamp": now, "totalProcessingTime": 0})
        if info["operation"] in ("query", "queryAll"):
            soql = req.body.decode("utf-8", "replace")
            batch.request = [soql]
            try:
                batch.results = self._query(req, soql, info["operation"] == "queryAll")
            except SoqlError as err:
                batch.info.update(state="Failed", stateMessage=f"InvalidBatch : {err.code}: {err.message}")
        else:
            records = json.loads(req.body or b"[]")
            if not isinstance(records, list):
                raise Bulk1Error("InvalidBatch", "a batch is a JSON list of records")
            batch.request = records
            batch.results = [self._dml(req, info, r) for r in records]
            batch.info["numberRecordsFailed"] = sum(1 for r in batch.results if not r["success"])
        batch.info["numberRecordsProcessed"] = len(batch.results)
        with self._lock:
            job.batches[bid] = batch
            failed = batch.info["state"] == "Failed"
            info["numberBatchesTotal"] += 1
            info["numberBatchesFailed" if failed else "numberBatchesCompleted"] += 1
            info["numberRecordsProcessed"] += batch.info["numberRecordsProcessed"]
            info["numberRecordsFailed"] += batch.info["numberRecordsFailed"]
        return batch.info

    def _dml(self, req: Request, info: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        org, op, sobject = self.org, info["operation"], info["object"]
        data = {k: v for k, v in record.items() if k not in ("Id", "id", "attributes")}
        rid = record.get("Id") or record.get("id")
        try:
            created = False
            if op == "insert":
                rid, created = org.create(sobject, data, req.user_id), True
            elif op == "upsert":
                ext = str(info["externalIdFieldName"])
                value = next((v for k, v in record.items() if k.lower() == ext.lower()), None)
                if value in (None, ""):
                    raise OrgError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
                rid, created = org.upsert(sobject, ext, str(value), data, req.user_id)
            elif not rid:
                raise OrgError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            elif op == "update":
                org.update(sobject, str(rid), data, req.user_id)
            else:
                org.delete(sobject, str(rid), req.user_id)
            return {"success": True, "created": created, "id": rid, "errors": []}
        except OrgError as err:
            return {"success": False, "created": False, "id": None, "errors": [
                {"fields": err.fields, "message": err.message, "statusCode": err.code}]}

    def _query(self, req: Request, soql: str, include_deleted: bool) -> list[dict[str, Any]]:
        result = self.org.query(soql, include_deleted)
        if result.count_only or result.aggregate or result.nested:
            raise SoqlError("MALFORMED_QUERY", "Aggregate queries, parent-to-child subqueries and TYPEOF are not "
                            "supported by the Bulk API")
        o = self.org.schema[result.sobject]
        datetimes = [c for c in result.columns if (f := o.field(c)) is not None and f.type == "datetime"]
        with self.org.lock:
            projector = Projector(self.org, result, req.version)
            rows = [projector(r) for r in result.records]
        for row in rows:
            for c in datetimes:
                if row.get(c):
                    row[c] = int(parse_datetime(row[c]).timestamp() * 1000)
        return rows


def _json(req: Request) -> dict[str, Any]:
    try:
        body = json.loads(req.body or b"{}")
    except ValueError as exc:
        raise Bulk1Error("InvalidJob", f"Unable to parse the JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise Bulk1Error("InvalidJob", "Expected a JSON object")
    return body
