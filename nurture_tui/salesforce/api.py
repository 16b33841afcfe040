"""The sync's view of one org: a logged-in simple-salesforce client plus retry, re-login, call counting and the
API budget. Every call the sync makes goes through here (and through unchanged simple-salesforce)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .budget import ApiBudget
from .client import connect, make_session
from .retry import RetryPolicy, RetryStats, call_with_retry

if TYPE_CHECKING:
    import requests
    from simple_salesforce.api import Salesforce

    from ..config import SalesforceSettings

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass
class CallCounter:
    api_calls: int = 0
    logins: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class SfApi:
    def __init__(self, cfg: SalesforceSettings, *, policy: RetryPolicy | None = None,
                 session: requests.Session | None = None) -> None:
        self.cfg = cfg
        self.policy = policy or RetryPolicy()
        self.stats = RetryStats()
        self.calls = CallCounter()
        self.budget = ApiBudget(share=cfg.api_budget_share)
        self.session = session or make_session(cfg)
        self.session.hooks["response"].append(self._on_response)
        self.sf: Salesforce = self._login()
        self.last_total = 0  # totalSize of the last query started

    # ---------------------------------------------------------------------------------------- plumbing
    def _on_response(self, resp: Any, *args: Any, **kwargs: Any) -> None:
        url = resp.request.url or ""
        if "/services/data/" in url:
            self.calls.api_calls += 1
            self.budget.spend(1)
            m = _USAGE.search(resp.headers.get("Sforce-Limit-Info", ""))
            if m:
                self.budget.used = max(self.budget.used, int(m.group(1)))
                self.budget.max_calls = int(m.group(2))
        elif "/oauth2/token" in url or "/services/Soap/u/" in url:
            self.calls.logins += 1

    def _login(self) -> Salesforce:
        return connect(self.cfg, self.session)

    def relogin(self) -> None:
        self.sf = self._login()

    def call(self, fn: Callable[[], Any]) -> Any:
        return call_with_retry(fn, self.policy, self.stats, self.relogin)

    # ------------------------------------------------------------------------------------------- reads
    def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = self.call(lambda: self.sf.limits())
        daily = out.get("DailyApiRequests") or {}
        if daily.get("Max"):
            self.budget.max_calls = int(daily["Max"])
            self.budget.used = max(self.budget.used, int(daily["Max"]) - int(daily.get("Remaining") or 0))
        return out

    def count(self, soql: str, include_deleted: bool = False) -> int:
        res = self.call(lambda: self.sf.query(soql, include_deleted=include_deleted))
        return int(res["totalSize"])

    def query_pages(self, soql: str, include_deleted: bool = False,
                    batch_size: int | None = None) -> Generator[list[dict[str, Any]], None, None]:
        """REST query/queryAll, one list of records per page (nextRecordsUrl followed)."""
        kw: dict[str, Any] = {}
        if batch_size:
            kw["headers"] = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        res = self.call(lambda: self.sf.query(soql, include_deleted=include_deleted, **kw))
        self.last_total = int(res.get("totalSize") or 0)
        while True:
            yield list(res["records"])
            nxt = res.get("nextRecordsUrl")
            if res.get("done", True) or not nxt:
                return
            res = self.call(partial(self.sf.query_more, nxt, identifier_is_url=True,
                                    include_deleted=include_deleted, **kw))

    def bulk_query_pages(self, sobject: str, soql: str, include_deleted: bool = False,
                         max_records: int = 25000, first_records: int | None = None) -> Iterator[list[dict[str, str]]]:
        """Bulk 2.0 query/queryAll, one list of CSV rows (dicts of text) per result page.

        Drives simple-salesforce's Bulk 2.0 client one request at a time (its `query()` generator cannot be
        resumed after an error), so each request is retried and re-logged-in on its own; result pages are
        addressed by locator, so nothing is skipped or read twice. With `first_records` the first request asks
        for that many rows only (`maxRecords` is per request): the caller starts writing sooner while the next,
        full pages are fetched.
        """
        from simple_salesforce.bulk2 import Operation

        def client() -> Any:
            return getattr(self.sf.bulk2, sobject)._client

        op = Operation.query_all if include_deleted else Operation.query
        job = self.call(lambda: client().create_job(op, soql))
        job_id = job["id"]
        self.call(lambda: client().wait_for_job(job_id, True, 0))
        locator, size = "", min(first_records or max_records, max_records)
        while True:
            res = self.call(partial(_results, client, job_id, locator, size))
            yield _csv_dicts(res["records"])
            locator, size = res["locator"], max_records
            if not locator:
                return

    # ------------------------------------------------------------------------------------------ writes
    def collections(self, method: str, records: list[dict[str, Any]], path: str = "composite/sobjects") -> Any:
        body = {"allOrNone": False, "records": records}
        return self.call(lambda: self.sf.restful(path, method=method, json=body))

    def create_once(self, records: list[dict[str, Any]]) -> Any:
        """sObject Collections create, never retried: a create is not idempotent, and after a 5xx or a lost
        connection Salesforce may have made the records — the caller looks them up (by email) next time
        instead. simple-salesforce still re-logs in on an expired session (nothing was created then)."""
        body = {"allOrNone": False, "records": records}
        return self.sf.restful("composite/sobjects", method="POST", json=body)

    def bulk_ingest(self, sobject: str, operation: str, csv_path: Path,
                    external_id_field: str | None = None) -> list[dict[str, Any]]:
        """Run a Bulk 2.0 ingest job from a CSV file; returns simple-salesforce's job summaries."""
        def run() -> list[dict[str, Any]]:
            handler = getattr(self.sf.bulk2, sobject)
            if operation == "upsert":
                out: list[dict[str, Any]] = handler.upsert(csv_file=str(csv_path),
                                                           external_id_field=external_id_field, wait=0)
            else:
                out = getattr(handler, operation)(csv_file=str(csv_path), wait=0)
            return out

        result: list[dict[str, Any]] = self.call(run)
        return result

    def bulk_results(self, sobject: str, job_id: str, which: str) -> list[dict[str, str]]:
        def get() -> str:
            handler = getattr(self.sf.bulk2, sobject)
            fn = {"failed": handler.get_failed_records, "ok": handler.get_successful_records,
                  "unprocessed": handler.get_unprocessed_records}[which]
            return str(fn(job_id))

        return _csv_dicts(self.call(get))


def _results(client: Callable[[], Any], job_id: str, locator: str, max_records: int) -> Any:
    return client().get_query_results(job_id, locator, max_records)


def _csv_dicts(text: str) -> list[dict[str, str]]:
    """CSV text with a header row → one dict per row (csv.DictReader without its per-row Python overhead)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return []
    return [dict(zip(header, row, strict=False)) for row in reader]
