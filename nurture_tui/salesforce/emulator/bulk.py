"""Bulk API 2.0 under `/services/data/vXX.X/jobs/`: query jobs (CSV results with Sforce-Locator paging) and
ingest jobs (CSV upload, per-record successful/failed/unprocessed results).

CSV rules (salesforce-wire.md §5): empty cells are "leave unchanged" on ingest and `#N/A` sets null; query
results quote every value, give null as an empty cell and booleans as true/false; result columns follow the
SELECT order (API ≥ 50). Jobs complete when `UploadComplete` is set (query: on creation); `polls_before_done`
makes the first job-info polls report InProgress, like a busy org.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import threading
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .faults import Faults
from .rest import Request, Response
from .soql import SoqlError
from .store import Org, OrgError

_DELIMS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


def csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)


@dataclass
class Job:
    info: dict[str, Any]
    polls_left: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    getters: list[Any] = field(default_factory=list)
    upload: bytearray = field(default_factory=bytearray)
    header: list[str] = field(default_factory=list)
    ok: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)


class BulkApi:
    def __init__(self, org: Org, faults: Faults, *, polls_before_done: int = 0) -> None:
        self.org = org
        self.faults = faults
        self.polls_before_done = polls_before_done
        self.jobs: dict[str, Job] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, req: Request, parts: list[str]) -> Response:
        try:
            return self._route(req, parts)
        except OrgError as err:
            return Response(err.status, err.rest_body())
        except SoqlError as err:
            body = req.json() if req.method == "POST" else None
            soql = str(body.get("query") or "") if isinstance(body, dict) else ""
            return Response(400, [{"message": err.wire_message(soql), "errorCode": err.code}])

    def _route(self, req: Request, parts: list[str]) -> Response:
        kind = parts[0] if parts else ""
        if kind not in ("query", "ingest"):
            raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
        if len(parts) == 1:
            if req.method == "POST":
                return self._create(req, kind)
            if req.method == "GET":
                return Response(200, {"done": True, "records": [j.info for j in self.jobs.values()
                                                                 if j.info["jobType"].endswith(kind.title())]})
        job = self.jobs.get(parts[1]) if len(parts) > 1 else None
        if job is None:
            raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
        if len(parts) == 2:
            if req.method == "GET":
                return Response(200, self._poll(job))
            if req.method == "PATCH":
                return self._set_state(req, job)
            if req.method == "DELETE":
                self.jobs.pop(job.info["id"], None)
                return Response(204)
        sub = parts[2].lower() if len(parts) == 3 else ""
        if kind == "query" and sub == "results" and req.method == "GET":
            return self._results(req, job)
        if kind == "ingest" and sub == "batches" and req.method == "PUT":
            if job.info["state"] != "Open":
                raise OrgError("INVALIDJOBSTATE", f"Job {job.info['id']} is not open for data upload", status=409)
            job.upload.extend(req.body)
            return Response(201, b"", content_type="text/plain")
        if kind == "ingest" and req.method == "GET" and sub in ("successfulresults", "failedresults",
                                                                  "unprocessedrecords"):
            return self._ingest_results(job, sub)
        raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)

    # ---------------------------------------------------------------------------------------- creation
    def _new_info(self, req: Request, body: dict[str, Any], job_type: str, sobject: str) -> dict[str, Any]:
        now = self.org.now_str()
        jid = f"750{next(self._seq):012d}AAA"
        return {"id": jid, "operation": body.get("operation"), "object": sobject, "createdById": req.user_id,
                "createdDate": now, "systemModstamp": now, "state": "UploadComplete", "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(req.version), "jobType": job_type,
                "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": body.get("columnDelimiter", "COMMA"),
                "numberRecordsProcessed": 0, "retries": 0, "totalProcessingTime": 0}

    def _create(self, req: Request, kind: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise OrgError("JSON_PARSER_ERROR", "Expected a JSON object")
        if body.get("columnDelimiter", "COMMA") not in _DELIMS or body.get("lineEnding", "LF") not in _ENDINGS:
            raise OrgError("INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        if kind == "query":
            op = body.get("operation")
            if op not in ("query", "queryAll"):
                raise OrgError("INVALIDJOB", f"Invalid operation: {op}")
            soql = str(body.get("query") or "")
            result = self.org.query(soql, include_deleted=op == "queryAll", user_id=req.user_id)
            if result.count_only or result.aggregate or result.nested:
                raise OrgError("INVALIDJOB", "Aggregate queries, parent-to-child subqueries and TYPEOF are not "
                               "supported by Bulk API 2.0")
            info = self._new_info(req, body, "V2Query", result.sobject)
            job = Job(info, self.polls_before_done, rows=result.records, columns=result.columns,
                      getters=result.getters)
            failure = self.faults.bulk_failure(result.sobject)
            if failure:
                info["errorMessage"] = failure
                job.rows = []
            info["_final"] = "Failed" if failure else "JobComplete"
            info["numberRecordsProcessed"] = 0 if failure else len(result.records)
        else:
            op = body.get("operation")
            if op not in ("insert", "update", "upsert", "delete", "hardDelete"):
                raise OrgError("INVALIDJOB", f"Invalid operation: {op}")
            sobject = self.org.obj(str(body.get("object") or "")).name
            if op == "upsert" and not body.get("externalIdFieldName"):
                raise OrgError("INVALIDJOB", "External ID was blank for upsert")
            info = self._new_info(req, body, "V2Ingest", sobject)
            info.update(state="Open", externalIdFieldName=body.get("externalIdFieldName"), numberRecordsFailed=0,
                        contentUrl=f"services/data/v{req.version}/jobs/ingest/{info['id']}/batches",
                        apiActiveProcessingTime=0, apexProcessingTime=0)
            job = Job(info, self.polls_before_done)
        with self._lock:
            self.jobs[info["id"]] = job
        return Response(200, self._public(job))

    @staticmethod
    def _public(job: Job) -> dict[str, Any]:
        return {k: v for k, v in job.info.items() if not k.startswith("_") and v is not None}

    def _poll(self, job: Job) -> dict[str, Any]:
        info = job.info
        if "_final" in info and info["state"] in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                info["state"] = "InProgress"
            else:
                info["state"] = info.pop("_final")
        return self._public(job)

    def _set_state(self, req: Request, job: Job) -> Response:
        body = req.json()
        state = body.get("state") if isinstance(body, dict) else None
        info = job.info
        if state == "Aborted":
            if info["state"] in ("JobComplete", "Failed"):
                raise OrgError("INVALIDJOBSTATE", "Job is already complete", status=409)
            info["state"] = "Aborted"
            info.pop("_final", None)
        elif state == "UploadComplete" and info["jobType"] == "V2Ingest":
            if info["state"] != "Open":
                raise OrgError("INVALIDJOBSTATE", f"Job {info['id']} is not open", status=409)
            info["state"] = "UploadComplete"
            self._process(req, job)
        else:
            raise OrgError("INVALIDJOBSTATE", f"Invalid state change to {state}", status=400)
        return Response(200, self._public(job))

    # ------------------------------------------------------------------------------------------ ingest
    def _process(self, req: Request, job: Job) -> None:
        info = job.info
        delim = _DELIMS[info["columnDelimiter"]]
        text = job.upload.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        try:
            job.header = next(reader)
        except StopIteration:
            job.header = []
        rows = list(reader)
        failure = self.faults.bulk_failure(info["object"])
        if failure or not job.header:
            info["_final"] = "Failed"
            info["errorMessage"] = failure or "InvalidBatch : Empty CSV file"
            job.unprocessed = rows
            return
        op = info["operation"]
        sobject = info["object"]
        header = job.header
        lower = [h.lower() for h in header]
        ext = info.get("externalIdFieldName") or "Id"
        id_pos = lower.index("id") if "id" in lower else -1
        ext_pos = lower.index(ext.lower()) if ext.lower() in lower else -1
        org = self.org
        user = req.user_id
        with org.lock:
            for row in rows:
                data = {h: (None if v == "#N/A" else v) for h, v in zip(header, row, strict=False) if v != ""}
                try:
                    if len(row) != len(header):
                        raise OrgError("INVALID_FIELD", f"row has {len(row)} columns, header has {len(header)}")
                    created = False
                    if op == "insert":
                        rid = org.create(sobject, data, user)
                        created = True
                    elif op == "update":
                        rid = row[id_pos] if id_pos >= 0 else ""
                        if not rid:
                            raise OrgError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                        data.pop(header[id_pos], None)
                        org.update(sobject, rid, data, user)
                    elif op == "upsert":
                        if ext_pos < 0 or not row[ext_pos]:
                            raise OrgError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
                        rid, created = org.upsert(sobject, ext, row[ext_pos], data, user)
                    else:
                        rid = row[id_pos] if id_pos >= 0 else ""
                        org.delete(sobject, rid, user)
                    job.ok.append([rid, "true" if created else "false", *row])
                except OrgError as err:
                    fields = ",".join(err.fields)
                    job.failed.append(["", f"{err.code}:{err.message}:{fields} --", *row])
        info["_final"] = "JobComplete"
        info["numberRecordsProcessed"] = len(rows)
        info["numberRecordsFailed"] = len(job.failed)

    def _ingest_results(self, job: Job, which: str) -> Response:
        if job.info["state"] not in ("JobComplete", "Failed", "Aborted"):
            raise OrgError("JOB_NOT_COMPLETE", "job is not complete", status=412)
        if which == "successfulresults":
            header, rows = ["sf__Id", "sf__Created", *job.header], job.ok
        elif which == "failedresults":
            header, rows = ["sf__Id", "sf__Error", *job.header], job.failed
        else:
            header, rows = job.header, job.unprocessed
        return Response(200, self._csv(job, header, rows), content_type="text/csv")

    def _rows(self, job: Job, chunk: list[dict[str, Any]]) -> list[Any]:
        """CSV cells for query results: plain columns straight from the record (csv writes None as an empty
        cell), booleans as true/false, parent paths through their getters."""
        o = self.org.schema[job.info["object"]]
        plain = [o.field(c) if "." not in c else None for c in job.columns]
        if all(plain):
            get = itemgetter(*[f.name for f in plain if f])
            bools = [i for i, f in enumerate(plain) if f and f.type == "boolean"]
            if len(plain) == 1:
                return [[csv_cell(get(r))] for r in chunk]
            if not bools:
                return [get(r) for r in chunk]
            out = []
            for r in chunk:
                vals = list(get(r))
                for i in bools:
                    vals[i] = csv_cell(vals[i])
                out.append(vals)
            return out
        return [[csv_cell(g(r)) for g in job.getters] for r in chunk]

    def _csv(self, job: Job, header: list[str], rows: list[Any]) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=_DELIMS[job.info["columnDelimiter"]],
                       lineterminator=_ENDINGS[job.info["lineEnding"]], quoting=csv.QUOTE_ALL)
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue().encode()

    # ------------------------------------------------------------------------------------------- query
    def _results(self, req: Request, job: Job) -> Response:
        if job.info["state"] != "JobComplete":
            raise OrgError("JOB_NOT_COMPLETE", "can only download query results of successfully completed bulk "
                           f"job with status: JOB_COMPLETE. Current status: {job.info['state']}", status=412)
        try:
            max_records = int(req.params.get("maxRecords") or 50000)
            start = int(base64.urlsafe_b64decode(req.params["locator"].encode()).decode()) if req.params.get(
                "locator") else 0
        except ValueError as exc:
            raise OrgError("INVALID_LOCATOR", "invalid locator or maxRecords") from exc
        chunk = job.rows[start:start + max_records]
        with self.org.lock:
            values = self._rows(job, chunk)
        end = start + len(chunk)
        locator = base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.rows) else "null"
        if locator != "null":
            locator += "=" * (-len(locator) % 4)
        return Response(200, self._csv(job, job.columns, values), content_type="text/csv",
                        headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(chunk))})
