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
- Records carry the lead's fields and its nurture-owned values (score, grade, stage, MQL status, Status,
  opt-out), so one call creates a complete record. A record Salesforce rejects (required field, validation
  rule, duplicate rule) keeps its error (`sync_error`, Sync & audit) and does not hold up the others; it is
  tried again when the lead changes (the change capture marks it dirty) or on `nurture sync --retry-errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import Connection, and_, or_, select, update

from ..batching import chunks
from ..config import Settings
from ..store.tables import account, lead, mql, segment, segment_member, sf_lead_sync, sync_error
from ..store.tables import user as user_t
from . import live
from .api import SfApi

BATCH = 200
#: Calls one batch may need: the email look-ups (one /composite request) and the create.
CALLS_PER_BATCH = 2
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


class MatchFailed(RuntimeError):
    """An email look-up before a create failed: nothing is created, everything stays queued."""


def _soql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def candidates(conn: Connection, settings: Settings) -> list[Any]:
    """Local leads without a Salesforce record that the create policy lets through and that are not waiting
    for a fix (a rejected create is tried again once the lead changed)."""
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
                    and_(s.pushed_at.is_(None), s.error_seq.is_(None))))
         .order_by(c.id))
    if policy == "mql":
        q = q.where(or_(c.mql_at.is_not(None), c.id.in_(select(mql.c.lead_id))))
    elif policy == "segments":
        names = settings.salesforce.create_segments
        q = q.where(c.id.in_(select(segment_member.c.lead_id).join(segment, segment.c.id == segment_member.c.segment_id)
                             .where(segment.c.name.in_(names))))
    return list(conn.execute(q))


def settle_waiting(conn: Connection, candidate_ids: set[int]) -> None:
    """Dirty leads no push will send — merged or deleted ones, and local leads the create policy does not let
    through (yet) — are marked clean, so they do not make the scheduler push every tick. A waiting local lead
    stays a create candidate (never pushed) and is looked at again by every full sync."""
    s, c = sf_lead_sync.c, lead.c
    q = (select(s.lead_id).join(lead, c.id == s.lead_id)
         .where(s.dirty_since.is_not(None), or_(c.sf_id.is_(None), c.status.in_(("Merged", "Deleted")))))
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

        self.read_at = time.time()  # clock-ok: the capture triggers' clock
        with self.engine.connect() as conn:
            rows = candidates(conn, self.settings)
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
        for r, sobject, sf_id in links:
            if sf_id in held:
                self._error(conn, r, sobject, sf_id, "DUPLICATE_SF_RECORD",
                            f"{r.email} matches {sobject} {sf_id}, already linked to another local lead", final=True)
                continue
            self._link(conn, r, sobject, sf_id)
            resolved.append(int(r.id))
            linked.append(int(r.id))
            self.report.linked += 1
        for i, (r, rec) in enumerate(records):
            res: dict[str, Any] = results[i] if i < len(results) else {"success": False, "errors": [
                {"statusCode": "UNPROCESSED", "message": "no result returned for this record"}]}
            sobject = rec["attributes"]["type"]
            if res.get("success"):
                sf_id = str(res["id"])
                self._link(conn, r, sobject, sf_id)
                sent = {k: v for k, v in rec.items() if k in live.values_keys(self.settings)}
                done.append((int(r.id), int(r.seq or 0), {**(r.pushed or {}), **sent}))
                resolved.append(int(r.id))
                self.report.created += 1
            else:
                err: dict[str, Any] = (res.get("errors") or [{}])[0]
                code = str(err.get("statusCode") or "UNKNOWN")
                fields = err.get("fields") or []
                message = str(err.get("message") or "") + (f" (fields: {', '.join(fields)})" if fields else "")
                self._error(conn, r, sobject, None, code, message, final=code not in TRANSIENT, record=rec)
        live.mark_dirty(conn, linked, time.time())  # clock-ok: their values go out with this sync's field push
        live.ensure_rows(conn, [d[0] for d in done])
        live.settle_ok(conn, done, self.now, self.read_at)
        for part in chunks(resolved):
            conn.execute(update(sync_error).where(sync_error.c.lead_id.in_(part), sync_error.c.resolved_at.is_(None),
                                                  sync_error.c.direction == "push").values(resolved_at=self.now))

    def _link(self, conn: Connection, r: Any, sobject: str, sf_id: str) -> None:
        conn.execute(update(lead).where(lead.c.id == r.id, lead.c.sf_id.is_(None)).values(sf_id=sf_id,
                                                                                           sf_type=sobject))

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
        live.settle_error(conn, int(r.id), int(r.seq or 0), code, message, final=final)
