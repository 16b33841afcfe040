"""The older Bulk API (1.0) under `/services/async/{ver}/`, in both flavours real clients use:

- JSON jobs (simple-salesforce's `sf.bulk`): JSON job and batch info, a batch is a JSON list of records (or the
  SOQL text), results are JSON; query records carry `attributes` and datetimes as epoch milliseconds, as on a
  real org (simple-salesforce issue #290).
- CSV jobs (jsforce's `conn.bulk`): job and batch info in the `http://www.force.com/2009/06/asyncapi/dataload`
  XML namespace, a batch is CSV (empty cell = unchanged, `#N/A` = null), DML results are CSV
  (`Id,Success,Created,Error`), query results a `<result-list>` and then CSV (datetimes as `…000Z`).

Routes: `job` (create), `job/{id}` (info; POST `state` Closed/Aborted), `job/{id}/batch` (add; GET the list),
`job/{id}/batch/{bid}` (info), `…/result` (per-record results, or the query result ids), `…/result/{rid}`,
`…/request`. The session travels in `X-SFDC-Session`; errors are `{exceptionCode, exceptionMessage}` (an
`<error>` element for XML). Batches are processed when added, so their state is `Completed` at the first poll.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .bulk import csv_cell
from .query import QueryResult
from .rest import Projector, Request, Response
from .soql import SoqlError, parse_datetime
from .store import Org, OrgError

_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")
_NS = "http://www.force.com/2009/06/asyncapi/dataload"
_XML = "application/xml"


class Bulk1Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Batch:
    info: dict[str, Any]
    request: Any = None
    results: list[dict[str, Any]] = field(default_factory=list)  # DML: {success, created, id, errors}
    query: QueryResult | None = None


@dataclass
class Job1:
    info: dict[str, Any]
    batches: dict[str, Batch] = field(default_factory=dict)

    @property
    def json(self) -> bool:
        return str(self.info["contentType"]) == "JSON"


class Bulk1Api:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.jobs: dict[str, Job1] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, req: Request, parts: list[str]) -> Response:
        job = self.jobs.get(parts[1]) if len(parts) > 1 and parts[0] == "job" else None
        as_json = job.json if job is not None else "xml" not in req.headers.get("content-type", "json")
        try:
            return self._route(req, parts, job)
        except (Bulk1Error, OrgError, SoqlError) as exc:
            if isinstance(exc, Bulk1Error):
                code, message, status = exc.code, exc.message, exc.status
            elif isinstance(exc, OrgError):
                code, message, status = "InvalidJob", exc.message, 400
            else:
                code, message, status = "InvalidBatch", f"{exc.code}: {exc.message}", 400
            if as_json:
                return Response(status, {"exceptionCode": code, "exceptionMessage": message})
            return Response(status, _xml("error", {"exceptionCode": code, "exceptionMessage": message}), _XML)

    def _route(self, req: Request, parts: list[str], job: Job1 | None) -> Response:
        if not parts or parts[0] != "job":
            raise Bulk1Error("InvalidUrl", "unknown Bulk API resource", 404)
        if len(parts) == 1 and req.method == "POST":
            job = self._create(req)
            return self._info(job, "jobInfo", job.info, 201)
        if job is None:
            raise Bulk1Error("InvalidJob", f"Invalid job id: {parts[1] if len(parts) > 1 else ''}")
        if len(parts) == 2:
            if req.method == "POST":
                self._set_state(req, job)
            return self._info(job, "jobInfo", job.info)
        if parts[2] != "batch":
            raise Bulk1Error("InvalidUrl", "unknown Bulk API resource", 404)
        if len(parts) == 3:
            if req.method == "POST":
                return self._info(job, "batchInfo", self._add_batch(req, job).info, 201)
            infos = [b.info for b in job.batches.values()]
            if job.json:
                return Response(200, {"batchInfo": infos})
            return Response(200, _xml_list("batchInfoList", "batchInfo", infos), _XML)
        batch = job.batches.get(parts[3])
        if batch is None:
            raise Bulk1Error("InvalidBatch", f"Invalid batch id: {parts[3]}")
        if len(parts) == 4:
            return self._info(job, "batchInfo", batch.info)
        if parts[4] == "request":
            if job.json:
                return Response(200, batch.request)
            return Response(200, str(batch.request), "text/csv")
        if parts[4] == "result":
            return self._result(req, job, batch, parts[5] if len(parts) > 5 else None)
        raise Bulk1Error("InvalidUrl", "unknown Bulk API resource", 404)

    def _info(self, job: Job1, root: str, info: dict[str, Any], status: int = 200) -> Response:
        return Response(status, info) if job.json else Response(status, _xml(root, info), _XML)

    # -------------------------------------------------------------------------------------------- jobs
    def _create(self, req: Request) -> Job1:
        body = _job_body(req)
        op = body.get("operation")
        if op not in _OPERATIONS:
            raise Bulk1Error("InvalidJob", f"Invalid operation: {op}")
        content_type = str(body.get("contentType") or "XML").upper()
        if content_type not in ("JSON", "CSV"):
            raise Bulk1Error("InvalidJob", f"contentType {content_type} is not emulated (JSON and CSV are)")
        sobject = self.org.obj(str(body.get("object") or "")).name
        if op == "upsert" and not body.get("externalIdFieldName"):
            raise Bulk1Error("InvalidJob", "External ID was blank for upsert")
        now = self.org.now_str()
        serial = body.get("concurrencyMode") in (1, "1", "Serial")
        info = {"apexProcessingTime": 0, "apiActiveProcessingTime": 0, "apiVersion": float(req.version),
                "assignmentRuleId": None, "concurrencyMode": "Serial" if serial else "Parallel",
                "contentType": content_type, "createdById": req.user_id, "createdDate": now,
                "externalIdFieldName": body.get("externalIdFieldName"), "id": f"750{next(self._seq):012d}AAA",
                "numberBatchesCompleted": 0, "numberBatchesFailed": 0, "numberBatchesInProgress": 0,
                "numberBatchesQueued": 0, "numberBatchesTotal": 0, "numberRecordsFailed": 0,
                "numberRecordsProcessed": 0, "numberRetries": 0, "object": sobject, "operation": op, "state": "Open",
                "systemModstamp": now, "totalProcessingTime": 0}
        job = Job1(info)
        with self._lock:
            self.jobs[info["id"]] = job
        return job

    def _set_state(self, req: Request, job: Job1) -> None:
        state = _job_body(req).get("state")
        if state not in ("Closed", "Aborted"):
            raise Bulk1Error("InvalidJobState", f"Invalid state: {state}")
        job.info["state"] = state
        job.info["systemModstamp"] = self.org.now_str()

    # ----------------------------------------------------------------------------------------- batches
    def _add_batch(self, req: Request, job: Job1) -> Batch:
        info = job.info
        if info["state"] != "Open":
            raise Bulk1Error("InvalidJobState", f"Job {info['id']} is not open")
        now = self.org.now_str()
        bid = f"751{next(self._seq):012d}AAA"
        batch = Batch({"apexProcessingTime": 0, "apiActiveProcessingTime": 0, "createdDate": now, "id": bid,
                       "jobId": info["id"], "numberRecordsFailed": 0, "numberRecordsProcessed": 0,
                       "state": "Completed", "stateMessage": None, "systemModstamp": now, "totalProcessingTime": 0})
        text = req.body.decode("utf-8-sig", "replace")
        if info["operation"] in ("query", "queryAll"):
            batch.request = [text] if job.json else text
            try:
                batch.query = self.org.query(text, info["operation"] == "queryAll", req.user_id)
                if batch.query.count_only or batch.query.aggregate or batch.query.nested:
                    raise SoqlError("MALFORMED_QUERY", "Aggregate queries, parent-to-child subqueries and TYPEOF "
                                    "are not supported by the Bulk API")
                batch.info["numberRecordsProcessed"] = batch.query.total
            except SoqlError as err:
                batch.query = None
                batch.info.update(state="Failed", stateMessage=f"InvalidBatch : {err.code}: {err.message}")
        else:
            records = _json_records(text) if job.json else _csv_records(text)
            batch.request = records if job.json else text
            batch.results = [self._dml(req, info, r) for r in records]
            batch.info["numberRecordsProcessed"] = len(batch.results)
            batch.info["numberRecordsFailed"] = sum(1 for r in batch.results if not r["success"])
        with self._lock:
            job.batches[bid] = batch
            failed = batch.info["state"] == "Failed"
            info["numberBatchesTotal"] += 1
            info["numberBatchesFailed" if failed else "numberBatchesCompleted"] += 1
            info["numberRecordsProcessed"] += batch.info["numberRecordsProcessed"]
            info["numberRecordsFailed"] += batch.info["numberRecordsFailed"]
        return batch

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

    # ----------------------------------------------------------------------------------------- results
    def _result(self, req: Request, job: Job1, batch: Batch, result_id: str | None) -> Response:
        if job.info["operation"] not in ("query", "queryAll"):
            if job.json:
                return Response(200, batch.results)
            rows = [[r["id"] or "", csv_cell(r["success"]), csv_cell(r["created"]),
                     "" if r["success"] else _error_text(r["errors"][0])] for r in batch.results]
            return Response(200, _csv(["Id", "Success", "Created", "Error"], rows), "text/csv")
        if batch.query is None:
            raise Bulk1Error("InvalidBatch", str(batch.info["stateMessage"]))
        rid = f"752{batch.info['id'][3:]}"
        if result_id is None:
            if job.json:
                return Response(200, [rid])
            return Response(200, f'<?xml version="1.0" encoding="UTF-8"?><result-list xmlns="{_NS}"><result>{rid}'
                            '</result></result-list>', _XML)
        if result_id != rid:
            raise Bulk1Error("InvalidBatch", f"Invalid result id: {result_id}")
        result = batch.query
        if job.json:
            return Response(200, self._json_rows(req, result))
        o = self.org.schema[result.sobject]
        kinds = [(f.type if (f := o.field(c)) is not None else "") for c in result.columns]
        with self.org.lock:
            rows = [[_csv_value(g(r), k) for g, k in zip(result.getters, kinds, strict=True)] for r in result.records]
        return Response(200, _csv(result.columns, rows), "text/csv")

    def _json_rows(self, req: Request, result: QueryResult) -> list[dict[str, Any]]:
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


# --------------------------------------------------------------------------------------------- formats
def _tag(xml: str, name: str) -> str | None:
    m = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", xml, re.DOTALL)
    return html.unescape(m.group(1).strip()) if m else None


def _job_body(req: Request) -> dict[str, Any]:
    text = req.body.decode("utf-8", "replace").strip()
    if text.startswith("<"):
        return {k: v for k in ("operation", "object", "contentType", "externalIdFieldName", "concurrencyMode",
                               "state") if (v := _tag(text, k)) is not None}
    try:
        body = json.loads(text or "{}")
    except ValueError as exc:
        raise Bulk1Error("InvalidJob", f"Unable to parse the job body: {exc}") from exc
    if not isinstance(body, dict):
        raise Bulk1Error("InvalidJob", "Expected a JSON object")
    return body


def _json_records(text: str) -> list[dict[str, Any]]:
    try:
        records = json.loads(text or "[]")
    except ValueError as exc:
        raise Bulk1Error("InvalidBatch", f"Unable to parse the batch: {exc}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise Bulk1Error("InvalidBatch", "a batch is a JSON list of records")
    return records


def _csv_records(text: str) -> list[dict[str, Any]]:
    """A CSV batch: empty cells are left out (unchanged); `#N/A` sets null."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not rows[0]:
        raise Bulk1Error("InvalidBatch", "InvalidBatch : Empty CSV file")
    header = rows[0]
    return [{h: (None if v == "#N/A" else v) for h, v in zip(header, row, strict=False) if v != ""}
            for row in rows[1:] if row]


def _csv_value(v: Any, ftype: str) -> str:
    if ftype == "datetime" and isinstance(v, str):
        return v.replace("+0000", "Z")
    return csv_cell(v)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def _error_text(error: dict[str, Any]) -> str:
    return f"{error['statusCode']}:{error['message']}:{','.join(error['fields'])} --"


def _xml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\+0000", v):
        v = v.replace("+0000", "Z")
    return html.escape(str(v), quote=False)


def _xml_body(info: dict[str, Any]) -> str:
    return "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in info.items() if v is not None)


def _xml(root: str, info: dict[str, Any]) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{_NS}">{_xml_body(info)}</{root}>'


def _xml_list(root: str, item: str, infos: list[dict[str, Any]]) -> str:
    inner = "".join(f"<{item}>{_xml_body(i)}</{item}>" for i in infos)
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{_NS}">{inner}</{root}>'
