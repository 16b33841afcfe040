"""Create: leads nurture knows but Salesforce does not (CSV import, form posts, the API) become Salesforce
records, and are linked back (`lead.sf_id`).

- **Who** (`salesforce.create_policy`, like Pardot's "sync with CRM"): `all` (default) — every local lead;
  `mql` — only leads that qualified (MQL); `segments` — only members of `salesforce.create_segments`;
  `none` — never create (a lead is then linked only when a pull finds its email in Salesforce).
- **Duplicates first**: before inserting, the candidates' emails are looked up in Salesforce (a query on
  Contact and one on Lead, in one `/composite` request per 200); a match is linked instead of inserted (a
  Contact wins over a Lead, converted Leads are skipped). That lookup also makes a create safe to repeat:
  after a crash or a lost response, the next sync finds the record it created and links it — nothing is
  created twice.
- **Lead or Contact** (`salesforce.contact_match`): with `domain` (default) a lead whose account — or, failing
  that, whose email domain — matches a mirrored Account (its Website's domain) is created as a Contact of
  that Account; `account` uses only the lead's own account; `none` always creates Leads.
- **Bulk above `bulk_threshold`**: the look-up runs as Bulk 2.0 query jobs of `Email IN (…)` chunks sized to
  the SOQL statement limit (thousands of emails a job, three calls each per object), and the creates go as one
  Bulk 2.0 `insert` ingest job per object (Lead; Contact with AccountId); its `successfulResults` link the
  new ids back (by email) and its `failedResults` keep each rejected record's error, as the Collections path
  does. The job id is stored (`sync_state` row `_create_job:<id>`) *before* any data is uploaded, and the
  upload and close are never retried: after a crash or a lost response the next sync reads that job first —
  still open: aborted (nothing was created); complete: its results are applied — so nothing is created twice.
- Records carry the lead's fields and its nurture-owned values (score, grade, stage, MQL status, Status,
  opt-out), so one call creates a complete record. A record Salesforce rejects (required field, validation
  rule, duplicate rule) keeps its error (`sync_error`, Sync & audit) and does not hold up the others; it is
  tried again when the lead changes (the change capture marks it dirty) or on `nurture sync --retry-errors`.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from ..batching import chunks
from ..config import Settings
from ..store.tables import account, lead, mql, segment, sf_lead_sync, sync_error, sync_state
from ..store.tables import user as user_t
from . import live
from .api import SfApi, _csv_dicts

BATCH = 200
#: Calls one batch may need: the email look-ups (one /composite request) and the create.
CALLS_PER_BATCH = 2
#: The SOQL statement limit (salesforce-wire.md §9): a Bulk look-up query is at most this long.
SOQL_LIMIT = 100_000
#: Calls one Bulk 2.0 query job needs (create, poll, one result page) and one insert job (create, upload,
#: close, poll, successful and failed results, a spare poll).
QUERY_JOB_CALLS = 3
INGEST_CALLS = 7
#: Rows a Bulk query result page holds (maxRecords) when the look-up reads a whole object's emails.
SCAN_ROWS_PER_CALL = 50_000
#: `sync_state` rows of Bulk insert jobs created and not yet settled: `_create_job:<job id>`.
JOB_PREFIX = "_create_job:"
#: Codes worth trying again on the next sync without a change (lock contention, momentary limits).
TRANSIENT = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNPROCESSED"})

ErrorSink = Callable[[Connection, str, str, str | None, str, str, dict[str, Any]], None]


@dataclass
class CreateReport:
    candidates: int = 0
    created: int = 0
    linked: int = 0
    failed: int = 0
    calls: int = 0
    bulk_jobs: int = 0  # Bulk 2.0 insert jobs run
    recovered_jobs: int = 0  # insert jobs of an interrupted sync settled from their results


class MatchFailed(RuntimeError):
    """An email look-up before a create failed: nothing is created, everything stays queued."""


def _soql_str(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _soql_list(values: list[str]) -> str:
    return ", ".join(_soql_str(v) for v in values)


def soql_chunks(values: list[str], room: int) -> Iterator[str]:
    """`'a', 'b', …` lists of the values, each at most `room` characters (the SOQL statement limit less the
    rest of the query)."""
    part: list[str] = []
    size = 0
    for v in values:
        lit = _soql_str(v)
        if part and size + 2 + len(lit) > room:
            yield ", ".join(part)
            part, size = [], 0
        size += len(lit) + (2 if part else 0)
        part.append(lit)
    if part:
        yield ", ".join(part)


def _csv_text(records: list[dict[str, Any]]) -> str:
    """Bulk 2.0 insert CSV (salesforce-wire.md §5): one column per field any record has, empty = not set."""
    columns = sorted({k for rec in records for k in rec if k != "attributes"})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for rec in records:
        w.writerow([_cell(rec.get(c)) for c in columns])
    return buf.getvalue()


def _email(r: Any) -> str:
    return str(r.email or "").strip().lower()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def create_segments(conn: Connection, settings: Settings) -> tuple[list[str], list[str]]:
    """`salesforce.create_segments` split into the saved segments that exist and the names that do not."""
    wanted = settings.salesforce.create_segments
    have = {str(n).lower(): str(n) for (n,) in conn.execute(select(segment.c.name))}
    return [have[n.lower()] for n in wanted if n.lower() in have], [n for n in wanted if n.lower() not in have]


def candidates(conn: Connection, settings: Settings, now: datetime | None = None, *,
               limit: int | None = None) -> list[Any]:
    """Local leads without a Salesforce record that the create policy lets through and that are not waiting
    for a fix (a rejected create is tried again once the lead changed). Segment membership (`segments`) is
    evaluated now, by the segments' own rules (a materialised segment by its members), so a lead that joined
    a segment since the last sync is a candidate at the next one."""
    policy = settings.salesforce.create_policy
    if policy == "none":
        return []
    s = sf_lead_sync.c
    c = lead.c
    q = (select(c.id, c.sf_type, c.email, c.first_name, c.last_name, c.company, c.title, c.phone, c.industry,
                c.employees, c.country, c.state, c.city, c.lead_source, c.account_id, c.owner_id, c.score, c.grade,
                c.stage, c.last_activity_at, c.opted_out, c.bounced, s.seq, s.pushed)
         .select_from(lead.outerjoin(sf_lead_sync, s.lead_id == c.id))
         .where(c.sf_id.is_(None), c.status.is_distinct_from("Merged"), c.status.is_distinct_from("Deleted"),
                # never seen, changed since, or never pushed nor refused (a lead the policy let wait)
                or_(s.lead_id.is_(None), s.dirty_since.is_not(None),
                    and_(s.pushed_at.is_(None), s.error_seq.is_(None))),
                live.not_backing_off(time.time()))  # clock-ok: a transient failure's backoff (trigger clock)
         .order_by(c.id))
    if policy == "mql":
        q = q.where(or_(c.mql_at.is_not(None), c.id.in_(select(mql.c.lead_id))))
    elif policy == "segments":
        from ..segments import compiler
        from ..segments.rules import Group, Rule, SegmentCondition

        names, _missing = create_segments(conn, settings)
        if not names:
            return []
        rule = Rule(root=Group(op="any", items=tuple(SegmentCondition(segment=n) for n in names)))
        when = now if now is not None else datetime.now(UTC)  # clock-ok: only when no domain time was given
        q = q.where(compiler.where_clause(conn, rule, when, half_life_days=settings.scoring.half_life_days))
    if limit is not None:
        q = q.limit(limit)
    return list(conn.execute(q))


def settle_waiting(conn: Connection, candidate_ids: set[int]) -> None:
    """Dirty leads no push will send — merged or deleted ones, and local leads the create policy does not let
    through (yet) — are marked clean, so they do not make the scheduler push every tick. A waiting local lead
    stays a create candidate (never pushed) and is looked at again by every full sync."""
    s, c = sf_lead_sync.c, lead.c
    q = (select(s.lead_id).join(lead, c.id == s.lead_id)
         .where(s.dirty_since.is_not(None), s.retry_at.is_(None),  # (one in backoff waits for its retry)
                or_(c.sf_id.is_(None), c.status.in_(("Merged", "Deleted")))))
    idle = [int(r[0]) for r in conn.execute(q) if int(r[0]) not in candidate_ids]
    for chunk in chunks(idle):
        conn.execute(update(sf_lead_sync).where(s.lead_id.in_(chunk)).values(dirty_since=None))


def _domain(site: str | None) -> str | None:
    if not site:
        return None
    host = site.split("://")[-1].split("/")[0].lower()
    return host[4:] if host.startswith("www.") else host


class Creator:
    def __init__(self, settings: Settings, api: SfApi, engine: Any, now: datetime, on_error: ErrorSink,
                 org: live.OrgFields | None, budget_ok: Callable[[int], bool]) -> None:
        self.settings = settings
        self.cfg = settings.salesforce
        self.api = api
        self.engine = engine
        self.now = now
        self.on_error = on_error
        self.org = org
        self.budget_ok = budget_ok
        self.report = CreateReport()
        self.read_at = time.time()  # clock-ok: when the leads to create were read (the triggers' clock)

    def run(self) -> CreateReport:
        from ..store.engine import write_tx

        self.recover()
        self._missing_segments()
        self.read_at = time.time()  # clock-ok: the capture triggers' clock
        with self.engine.connect() as conn:
            rows = candidates(conn, self.settings, self.now)
        with write_tx(self.engine) as conn:
            settle_waiting(conn, {int(r.id) for r in rows})
        if not rows:
            return self.report
        with self.engine.connect() as conn:
            values = live.values_for(conn, rows, self.settings, self.now, self.org)
            accounts = self._accounts(conn)
            users = {u.id: u.sf_id for u in conn.execute(select(user_t.c.id, user_t.c.sf_id)
                                                        .where(user_t.c.sf_id.is_not(None)))}
        self.report.candidates = len(rows)
        if len(rows) > self.cfg.bulk_threshold:
            self._run_bulk(rows, values, accounts, users)
            return self.report
        for batch in chunks(rows, BATCH):
            if not self.budget_ok(CALLS_PER_BATCH):
                return self.report
            found = self._match([r.email for r in batch])
            records: list[tuple[Any, dict[str, Any]]] = []
            links: list[tuple[Any, str, str]] = []
            for r in batch:
                hit = found.get(r.email)
                if hit is not None:
                    links.append((r, hit[0], hit[1]))
                else:
                    records.append((r, self._record(r, values[int(r.id)], accounts, users)))
            results: list[dict[str, Any]] = []
            if records:
                results = self.api.create_once([rec for _, rec in records])
                self.report.calls += 1
            with write_tx(self.engine) as conn:
                self._settle(conn, links, records, results)
        return self.report

    # ------------------------------------------------------------------------------------ Bulk 2.0 path
    def _run_bulk(self, rows: list[Any], values: dict[int, dict[str, Any]], accounts: dict[str, Any],
                  users: dict[int, str]) -> None:
        """Above `bulk_threshold`: look the emails up with Bulk 2.0 query jobs, link the matches, then one
        Bulk 2.0 insert job per object for the rest."""
        from ..store.engine import write_tx

        found = self._match_bulk([r.email for r in rows])
        if found is None:
            return  # the budget ran out: everything stays a candidate
        links: list[tuple[Any, str, str]] = []
        by_object: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
        for r in rows:
            hit = found.get(r.email)
            if hit is not None:
                links.append((r, hit[0], hit[1]))
            else:
                rec = self._record(r, values[int(r.id)], accounts, users)
                by_object.setdefault(rec["attributes"]["type"], []).append((r, rec))
        if links:
            with write_tx(self.engine) as conn:
                self._settle(conn, links, [], [])
        for sobject in sorted(by_object):
            if not self.budget_ok(INGEST_CALLS):
                return
            self._ingest(sobject, by_object[sobject])

    def _match_bulk(self, emails: list[str]) -> dict[str, tuple[str, str]] | None:
        """email → (sobject, id) like `_match`, with Bulk 2.0 query jobs: per object either `Email IN (…)`
        chunks as long as the SOQL statement limit allows (thousands of emails a job, 3 calls each), or — when
        that is cheaper, as for a large backlog against an org of similar size — one job reading every
        record's email (3 calls plus one per result page); None when the API budget ran out."""
        out: dict[str, tuple[str, str]] = {}
        for sobject, extra in (("Lead", " AND IsConverted = false"), ("Contact", "")):
            head = f"SELECT Id, Email FROM {sobject} WHERE Email IN ("
            tail = f"){extra}"
            room = SOQL_LIMIT - len(head) - len(tail)
            at_least = -(-sum(len(e) + 4 for e in emails) // room)  # statements the lists need, at least
            scan = self._scan_cost(sobject)
            queries: list[tuple[str, set[str] | None, int]]
            if scan < QUERY_JOB_CALLS * at_least:
                wanted = set(emails)
                queries = [(f"SELECT Id, Email FROM {sobject} WHERE Email != null{extra}", wanted, scan)]
            else:
                queries = [(head + part + tail, None, QUERY_JOB_CALLS) for part in soql_chunks(emails, room)]
            for soql, keep, cost in queries:
                if not self.budget_ok(cost):
                    return None
                before = self.api.calls.api_calls
                try:
                    for page in self.api.bulk_query_pages(sobject, soql, max_records=SCAN_ROWS_PER_CALL):
                        for rec in page:
                            email = str(rec.get("Email") or "").strip().lower()
                            if email and (keep is None or email in keep) and (sobject == "Contact" or email not in out):
                                out[email] = (sobject, str(rec["Id"]))
                except Exception as exc:
                    raise MatchFailed(f"looking up {sobject} emails: {type(exc).__name__}: {str(exc)[:300]}") from exc
                finally:
                    self.report.calls += self.api.calls.api_calls - before
        return out

    def _scan_cost(self, sobject: str) -> int:
        """Calls a Bulk query of every `sobject` email would take, estimated from the mirrored records."""
        with self.engine.connect() as conn:
            rows = int(conn.execute(select(func.count()).select_from(lead).where(
                lead.c.sf_type == sobject, lead.c.sf_id.is_not(None))).scalar() or 0)
        return 2 + max(1, -(-int(rows * 1.1) // SCAN_ROWS_PER_CALL))

    def _missing_segments(self) -> None:
        """Say in Sync & audit which `salesforce.create_segments` names are no saved segment (one open row
        each; it resolves when the segment exists or the name is gone from the setting)."""
        if self.cfg.create_policy != "segments":
            return
        from ..store.engine import write_tx

        e = sync_error.c
        with self.engine.connect() as conn:
            _names, missing = create_segments(conn, self.settings)
            open_rows = {r.message: r.id for r in conn.execute(select(e.id, e.message).where(
                e.code == "CREATE_SEGMENT_MISSING", e.resolved_at.is_(None)))}
        problems = {f"salesforce.create_segments: no saved segment named {n!r} (no lead is created for it)"
                    for n in missing}
        if not problems and not open_rows:
            return
        with write_tx(self.engine) as w:
            gone = [i for m, i in open_rows.items() if m not in problems]
            if gone:
                w.execute(update(sync_error).where(e.id.in_(gone)).values(resolved_at=self.now))
            for problem in sorted(problems - set(open_rows)):
                self.on_error(w, "Lead", "push", None, "CREATE_SEGMENT_MISSING", problem, {})

    def _bulk2(self, sobject: str) -> Any:
        return getattr(self.api.sf.bulk2, sobject)._client

    def _ingest(self, sobject: str, records: list[tuple[Any, dict[str, Any]]]) -> None:
        """One Bulk 2.0 insert job. The job id is committed before any data goes up; upload and close are
        sent once (a retry after a lost response could insert twice) — if either fails the sync stops and the
        next one settles the job from what Salesforce says of it (`recover`)."""
        from simple_salesforce.bulk2 import Operation

        from ..store.engine import write_tx

        before = self.api.calls.api_calls
        try:
            job = self.api.call(lambda: self._bulk2(sobject).create_job(Operation.insert))  # empty: safe to retry
            job_id = str(job["id"])
            with write_tx(self.engine) as conn:
                conn.execute(insert(sync_state).values(
                    sobject=JOB_PREFIX + job_id, status="open", last_run_at=self.now,
                    detail={"object": sobject, "records": len(records), "lead_ids": [int(r.id) for r, _ in records]}))
            client = self._bulk2(sobject)
            client.upload_job_data(job_id, _csv_text([rec for _, rec in records]))
            client.close_job(job_id)
            self._finish(sobject, job_id, records)
        finally:
            self.report.calls += self.api.calls.api_calls - before
            self.report.bulk_jobs += 1

    def _finish(self, sobject: str, job_id: str, records: list[tuple[Any, dict[str, Any]]] | None) -> None:
        """Wait for the job, read its results and settle every record of it (by email), then forget the job —
        in one transaction. `records` None (recovery): the local leads are found by the emails in the results,
        and a created record is linked and its values pushed by the field push (like an email match)."""
        from simple_salesforce.exceptions import SalesforceOperationError

        from ..store.engine import write_tx

        job_error: str | None = None
        try:
            self.api.call(lambda: self._bulk2(sobject).wait_for_job(job_id, False, 0))
        except SalesforceOperationError as exc:  # Failed or Aborted: what was processed is in the results
            job_error = str(exc)[:500]
        ok_rows = _csv_dicts(self.api.call(partial(self._results, sobject, job_id, "successfulResults")))
        failed_rows = _csv_dicts(self.api.call(partial(self._results, sobject, job_id, "failedResults")))
        ok = {str(row.get("Email") or "").strip().lower(): row for row in ok_rows}
        failed = {str(row.get("Email") or "").strip().lower(): row for row in failed_rows}
        with write_tx(self.engine) as conn:
            links: list[tuple[Any, str, str]] = []
            if records is None:  # after a crash: what was created is linked, its values pushed next
                found = self._recorded(conn, job_id, sobject, set(ok) | set(failed))
                links = [(r, sobject, str(ok[_email(r)].get("sf__Id"))) for r, _ in found if _email(r) in ok]
                records = [(r, rec) for r, rec in found if _email(r) not in ok]
            results: list[dict[str, Any]] = []
            for r, _rec in records:
                email = _email(r)
                if email in ok:
                    results.append({"success": True, "id": ok[email].get("sf__Id")})
                elif email in failed:
                    code, _, message = (failed[email].get("sf__Error") or "UNKNOWN").partition(":")
                    message, _, fields = message.rstrip(" -").rpartition(":")
                    results.append({"success": False, "errors": [
                        {"statusCode": code, "message": message or fields,
                         "fields": [f for f in fields.split(",") if f] if message else []}]})
                else:
                    results.append({"success": False, "errors": [{"statusCode": "UNPROCESSED", "message": (
                        f"not processed by Bulk job {job_id}" + (f": {job_error}" if job_error else ""))}]})
            self._settle(conn, links, records, results)
            conn.execute(delete(sync_state).where(sync_state.c.sobject == JOB_PREFIX + job_id))

    def _results(self, sobject: str, job_id: str, which: str) -> str:
        return str(self._bulk2(sobject).get_ingest_results(job_id, which))

    def _recorded(self, conn: Connection, job_id: str, sobject: str,
                  emails: set[str]) -> list[tuple[Any, dict[str, Any]]]:
        """The local leads of a job found after a crash: those the job was created for (by id) that have no
        Salesforce record yet and whose email is in its results (the others were never sent: they stay
        candidates)."""
        detail = conn.execute(select(sync_state.c.detail).where(sync_state.c.sobject == JOB_PREFIX + job_id)).scalar()
        ids = [int(i) for i in (detail or {}).get("lead_ids") or []]
        s, c = sf_lead_sync.c, lead.c
        out: list[tuple[Any, dict[str, Any]]] = []
        for part in chunks(ids):
            q = (select(c.id, c.email, s.seq, s.pushed).select_from(lead.outerjoin(sf_lead_sync, s.lead_id == c.id))
                 .where(c.id.in_(part), c.sf_id.is_(None)))
            out += [(r, {"attributes": {"type": sobject}}) for r in conn.execute(q)
                    if str(r.email or "").strip().lower() in emails]
        return out

    def recover(self) -> None:
        """Settle Bulk insert jobs a previous sync created but did not finish (a crash, a lost response): a job
        still open never got its data or its close — it is aborted (nothing was created) and its leads stay
        candidates; a closed one is waited for and its results applied. A job Salesforce no longer knows is
        forgotten (the email look-up links whatever it made)."""
        from simple_salesforce.exceptions import SalesforceResourceNotFound

        from ..store.engine import write_tx

        with self.engine.connect() as conn:
            pending = [(str(r.sobject), r.detail or {}) for r in conn.execute(
                select(sync_state.c.sobject, sync_state.c.detail).where(sync_state.c.sobject.like(JOB_PREFIX + "%")))]
        for key, detail in pending:
            job_id, sobject = key.removeprefix(JOB_PREFIX), str(detail.get("object") or "Lead")
            before = self.api.calls.api_calls
            try:
                try:
                    info = self.api.call(lambda: self._bulk2(sobject).get_job(job_id, False))  # noqa: B023
                except SalesforceResourceNotFound:
                    info = None
                if info is not None and info.get("state") == "Open":
                    self.api.call(lambda: self._bulk2(sobject).abort_job(job_id, False))  # noqa: B023
                    info = None
                if info is None:
                    with write_tx(self.engine) as conn:
                        conn.execute(delete(sync_state).where(sync_state.c.sobject == key))
                    continue
                self._finish(sobject, job_id, None)
                self.report.recovered_jobs += 1
            finally:
                self.report.calls += self.api.calls.api_calls - before

    def _accounts(self, conn: Connection) -> dict[str, Any]:
        """Mirrored accounts by local id (as str) and by website domain (`d:<domain>`)."""
        out: dict[str, Any] = {}
        if self.cfg.contact_match == "none":
            return out
        a_c = account.c
        for a in conn.execute(select(a_c.id, a_c.sf_id, a_c.domain).where(a_c.sf_id.is_not(None))):
            out[str(a.id)] = a.sf_id
            d = _domain(a.domain)
            if d and self.cfg.contact_match == "domain":
                out.setdefault(f"d:{d}", a.sf_id)
        return out

    def _match(self, emails: list[str]) -> dict[str, tuple[str, str]]:
        """email → (sobject, Salesforce id) of an existing Contact, else an unconverted Lead: both look-ups in
        one `/composite` request (one API call; ≤ 200 emails never need a second page)."""
        wanted = _soql_list(emails)
        base = f"/services/data/v{self.api.sf.sf_version}/query/?q="
        subrequests = [{"method": "GET", "referenceId": sobject, "url": base + quote_plus(
            f"SELECT Id, Email FROM {sobject} WHERE Email IN ({wanted}){extra} ORDER BY CreatedDate, Id")}
            for sobject, extra in (("Lead", " AND IsConverted = false"), ("Contact", ""))]
        res = self.api.call(partial(self.api.sf.restful, "composite", method="POST",
                                    json={"allOrNone": False, "compositeRequest": subrequests}))
        self.report.calls += 1
        out: dict[str, tuple[str, str]] = {}
        for sub in res.get("compositeResponse") or []:
            body = sub.get("body")
            if sub.get("httpStatusCode") != 200 or not isinstance(body, dict):
                err = body[0] if isinstance(body, list) and body else {}
                raise MatchFailed(f"looking up {sub.get('referenceId')} emails: {err.get('errorCode', '?')} "
                                  f"{err.get('message', sub.get('httpStatusCode'))}")
            for rec in body.get("records") or []:
                email = str(rec.get("Email") or "").strip().lower()
                if email and (sub.get("referenceId") == "Contact" or email not in out):
                    out[email] = (str(sub.get("referenceId")), str(rec["Id"]))
        return out

    def _record(self, r: Any, nurture: dict[str, Any], accounts: dict[str, Any],
                users: dict[int, str]) -> dict[str, Any]:
        acct = accounts.get(str(r.account_id)) if r.account_id is not None else None
        if acct is None and self.cfg.contact_match == "domain":
            acct = accounts.get(f"d:{r.email.rsplit('@', 1)[-1]}")
        common = {"FirstName": r.first_name, "LastName": r.last_name, "Email": r.email, "Title": r.title,
                  "Phone": r.phone, "LeadSource": r.lead_source}
        if acct is not None:
            rec = {"attributes": {"type": "Contact"}, **common, "AccountId": acct, "MailingCountry": r.country}
            nurture = {k: v for k, v in nurture.items() if k != live.STATUS}
        else:
            rec = {"attributes": {"type": "Lead"}, **common, "Company": r.company, "Industry": r.industry,
                   "NumberOfEmployees": r.employees, "Country": r.country, "State": r.state, "City": r.city}
        if r.owner_id is not None and users.get(r.owner_id):
            rec["OwnerId"] = users[r.owner_id]
        rec.update(nurture)
        return {k: v for k, v in rec.items() if v is not None}

    def _settle(self, conn: Connection, links: list[tuple[Any, str, str]],
                records: list[tuple[Any, dict[str, Any]]], results: list[dict[str, Any]]) -> None:
        held = set()
        ids = [sf for _, _, sf in links] + [str(res.get("id")) for res in results if res.get("success")]
        for chunk in chunks(ids):
            held |= {r[0] for r in conn.execute(select(lead.c.sf_id).where(lead.c.sf_id.in_(chunk)))}
        done: list[tuple[int, int, dict[str, Any]]] = []
        resolved: list[int] = []
        linked: list[int] = []
        to_link: list[dict[str, Any]] = []
        for r, sobject, sf_id in links:
            if sf_id in held:
                self._error(conn, r, sobject, sf_id, "DUPLICATE_SF_RECORD",
                            f"{r.email} matches {sobject} {sf_id}, already linked to another local lead", final=True)
                continue
            to_link.append({"b_id": int(r.id), "b_sf": sf_id, "b_type": sobject})
            resolved.append(int(r.id))
            linked.append(int(r.id))
            self.report.linked += 1
        managed = live.values_keys(self.settings)
        for i, (r, rec) in enumerate(records):
            res: dict[str, Any] = results[i] if i < len(results) else {"success": False, "errors": [
                {"statusCode": "UNPROCESSED", "message": "no result returned for this record"}]}
            sobject = rec["attributes"]["type"]
            if res.get("success"):
                sf_id = str(res["id"])
                to_link.append({"b_id": int(r.id), "b_sf": sf_id, "b_type": sobject})
                sent = {k: v for k, v in rec.items() if k in managed}
                done.append((int(r.id), int(r.seq or 0), {**(r.pushed or {}), **sent}))
                resolved.append(int(r.id))
                self.report.created += 1
            else:
                err: dict[str, Any] = (res.get("errors") or [{}])[0]
                code = str(err.get("statusCode") or "UNKNOWN")
                fields = err.get("fields") or []
                message = str(err.get("message") or "") + (f" (fields: {', '.join(fields)})" if fields else "")
                self._error(conn, r, sobject, None, code, message, final=code not in TRANSIENT, record=rec)
        if to_link:  # one executemany: a Bulk job settles 10,000s of leads
            conn.execute(update(lead).where(lead.c.id == bindparam("b_id"), lead.c.sf_id.is_(None))
                         .values(sf_id=bindparam("b_sf"), sf_type=bindparam("b_type")), to_link)
        live.mark_dirty(conn, linked, time.time())  # clock-ok: their values go out with this sync's field push
        live.settle_created(conn, done, self.now, self.read_at)
        for part in chunks(resolved):
            conn.execute(update(sync_error).where(sync_error.c.lead_id.in_(part), sync_error.c.resolved_at.is_(None),
                                                  sync_error.c.direction == "push").values(resolved_at=self.now))

    def _error(self, conn: Connection, r: Any, sobject: str, sf_id: str | None, code: str, message: str, *,
               final: bool, record: dict[str, Any] | None = None) -> None:
        self.report.failed += 1
        open_row = conn.execute(select(sync_error.c.id).where(
            sync_error.c.lead_id == r.id, sync_error.c.resolved_at.is_(None), sync_error.c.code == code)).first()
        if open_row is not None:
            conn.execute(update(sync_error).where(sync_error.c.id == open_row.id).values(
                message=message, attempts=sync_error.c.attempts + 1, created_at=self.now))
        else:
            self.on_error(conn, sobject, "push", sf_id, code, f"create {r.email}: {message}",
                          {"lead_id": int(r.id), "record": {k: v for k, v in (record or {}).items()
                                                            if k != "attributes"}})
        live.ensure_rows(conn, [int(r.id)])
        live.settle_error(conn, int(r.id), int(r.seq or 0), code, message, final=final, cfg=self.cfg)
