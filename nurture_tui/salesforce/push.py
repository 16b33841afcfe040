"""Push: `sf_outbox` → Salesforce, in as few API calls as the data allows.

- Field updates are coalesced per lead (later values win) and sent to the lead's *current* Salesforce record
  (a lead converted in Salesforce is pushed to its Contact). Owner changes travel as OwnerId.
- Tasks and CampaignMembers are upserted on an external-id field (`salesforce.record_key_field`), so a retry
  after a lost response never creates a duplicate.
- Up to `bulk_threshold` records per object go through sObject Collections (200 per call); more go through
  one Bulk API 2.0 ingest job per object (a handful of calls for any number of rows).
- Each call's outcome is committed with the outbox rows it settles: sent rows are marked sent, failed ones
  keep the Salesforce code and message in `sync_error`. Transient per-record codes stay pending with a capped
  backoff (backoff.py; the lead's other rows wait with them) until `max_attempts`, then wait for
  `--retry-errors`; nothing is dropped. A call that fails as a whole (after retry.py's own retries) or a failed
  Bulk job leaves its rows pending without counting an attempt. An exhausted API budget stops the push and
  leaves the rest pending.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from ..batching import chunks
from ..errors import ValidationError
from ..store.engine import write_tx
from ..store.tables import campaign, campaign_member, lead, sf_lead_sync, sf_outbox, sync_error, sync_state
from ..store.tables import user as user_t
from ..workspace import Workspace
from . import live
from . import mapping as m
from .api import SfApi
from .backoff import given_up, next_try
from .create import JOB_PREFIX, Creator, candidates
from .outbox import ANONYMISED

COLLECTION_SIZE = 200
#: Per-record codes worth retrying on a later sync (lock contention, a conversion the next pull will map,
#: a member created meanwhile in Salesforce, momentary limits).
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "CANNOT_UPDATE_CONVERTED_LEAD", "DUPLICATE_VALUE",
                             "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "BULK_JOB_FAILED", "UNPROCESSED"})
#: Calls one Bulk 2.0 ingest job needs (create, upload, close, poll, info, failed results, spare).
BULK_CALLS = 8

ErrorSink = Callable[[Connection, str, str, str | None, str, str, dict[str, Any]], None]


@dataclass
class Item:
    sobject: str
    record: dict[str, Any]
    outbox_ids: list[int]
    lead_id: int
    ext: str | None = None  # external-id field for upserts; None = update by Id
    member: tuple[int, int] | None = None  # (local campaign id, lead id) for CampaignMember items
    # (sf_lead_sync.seq read, the live fields sent, what Salesforce then has) — live.py
    live: tuple[int, dict[str, Any], dict[str, Any]] | None = None

    @property
    def key(self) -> str:
        return str(self.record[self.ext] if self.ext else self.record["Id"])


@dataclass
class PushReport:
    pending: int = 0
    records: int = 0
    sent: int = 0
    failed: int = 0
    retry_later: int = 0
    deferred: int = 0
    collection_calls: int = 0
    bulk_jobs: int = 0
    budget_stopped: bool = False
    backing_off: int = 0  # outbox rows held back by a retry backoff (theirs or another row's of the lead)
    live_records: int = 0  # leads whose changed nurture-owned values went out (live.py)
    created: int = 0  # local leads created in Salesforce (create.py)
    linked: int = 0  # local leads linked to an existing Salesforce record by email
    create_failed: int = 0
    create_calls: int = 0  # API calls the creates and their email look-ups took (create.py)
    create_bulk_jobs: int = 0  # Bulk 2.0 insert jobs among them


class Pusher:
    def __init__(self, ws: Workspace, api: SfApi, *, on_error: ErrorSink) -> None:
        self.ws = ws
        self.api = api
        self.cfg = ws.settings.salesforce
        self.on_error = on_error
        self.now = ws.clock.now()
        self.report = PushReport()
        self.org: live.OrgFields | None = None
        self.read_at = time.time()  # clock-ok: when the dirty leads were read (a later change stays to push)

    # ------------------------------------------------------------------------------------------ build
    def _load(self) -> tuple[list[Item], list[tuple[list[int], str, str]]]:
        """Pending rows → items to send, plus rows that fail before any call (code, message)."""
        with self.ws.engine.connect() as conn:
            # Driver-level read: at 100k pending rows SQLAlchemy's per-row JSON processing dominates the push.
            rows = [_OutboxRow(i, so, lid, p if isinstance(p, dict) else json.loads(p or "{}"))
                    for i, so, lid, p in conn.exec_driver_sql(
                        "SELECT id, sobject, lead_id, payload FROM sf_outbox WHERE status = 'pending' ORDER BY id")]
            leads = {lr[0]: _LeadRef(*lr) for lr in conn.exec_driver_sql(
                "SELECT id, sf_id, sf_type, owner_id FROM lead WHERE id IN "
                "(SELECT lead_id FROM sf_outbox WHERE status = 'pending')")}
            deleted = {r.id for r in conn.execute(select(lead.c.id, lead.c.custom).where(lead.c.status == "Deleted"))
                       if (r.custom or {}).get("sf_deleted")}
            users = {u.id: u.sf_id for u in conn.execute(select(user_t.c.id, user_t.c.sf_id))}
            held = _held_leads(conn)
            camps = list(conn.execute(select(campaign.c.id, campaign.c.sf_id, campaign.c.name)).all())
            members = {(cm.campaign_id, cm.lead_id): cm.sf_id for cm in conn.execute(
                select(campaign_member.c.campaign_id, campaign_member.c.lead_id, campaign_member.c.sf_id)
                .where(campaign_member.c.sf_id.is_not(None)))}
        self.report.pending = len(rows)
        self.erasures: list[Item] = []  # LeadErasure "delete" rows: DELETE calls, not updates
        fails: list[tuple[list[int], str, str]] = []
        updates: dict[int, Item] = {}
        items: list[Item] = []
        member_items: dict[tuple[int, int], Item] = {}
        key_field = self.cfg.record_key_field
        field_map = self.cfg.field_map
        for r in rows:
            if r.lead_id in held:
                self.report.backing_off += 1
                continue
            ld = leads.get(r.lead_id) if r.lead_id is not None else None
            if ld is None:
                fails.append(([r.id], "LEAD_NOT_FOUND", f"local lead {r.lead_id} does not exist"))
                continue
            if ld.id in deleted:
                fails.append(([r.id], "ENTITY_IS_DELETED", f"{ld.sf_type} {ld.sf_id} was deleted in Salesforce"))
                continue
            if not ld.sf_id:
                self.report.deferred += 1  # not in Salesforce yet: waits for the record to exist
                continue
            payload = r.payload
            try:
                if r.sobject == "Lead":
                    fields = m.push_fields(payload, field_map, f"sf_outbox[{r.id}]")
                    if "owner" in payload:
                        fields["OwnerId"] = self._owner(payload["owner"], users, r.id)
                    item = updates.get(ld.id)
                    if item is None or item.sobject != ld.sf_type:
                        item = Item(ld.sf_type or "Lead", {"Id": ld.sf_id}, [], ld.id)
                        updates[ld.id] = item
                    item.record.update(fields)
                    item.outbox_ids.append(r.id)
                elif r.sobject == "Task":
                    rec = {key_field: f"nurture-task-{r.id}", "WhoId": ld.sf_id, "Subject": payload.get("Subject"),
                           "Description": payload.get("Description"), "Status": "Not Started",
                           "Priority": "Normal", "ActivityDate": payload.get("ActivityDate")}
                    if payload.get("owner") is not None:  # an explicit assignee must exist in Salesforce
                        rec["OwnerId"] = self._owner(payload["owner"], users, r.id)
                    elif ld.owner_id is not None and users.get(ld.owner_id):
                        rec["OwnerId"] = users[ld.owner_id]  # else Salesforce assigns the integration user
                    items.append(Item("Task", rec, [r.id], ld.id, ext=key_field))
                elif r.sobject == "CampaignMember":
                    camp = self._campaign(payload.get("campaign"), camps, r.id)
                    status = str(payload.get("Status") or "Sent")
                    known = members.get((camp.id, ld.id))
                    if known:
                        item = Item("CampaignMember", {"Id": known, "Status": status}, [r.id], ld.id)
                    else:
                        who = "ContactId" if ld.sf_type == "Contact" else "LeadId"
                        item = Item("CampaignMember", {key_field: f"nurture-cm-{camp.sf_id}-{ld.sf_id}",
                                                       "CampaignId": camp.sf_id, who: ld.sf_id, "Status": status},
                                    [r.id], ld.id, ext=key_field)
                    item.member = (camp.id, ld.id)
                    prev = member_items.get(item.member)
                    if prev is not None:  # coalesce: the latest status wins, every row settles with it
                        item.outbox_ids = prev.outbox_ids + item.outbox_ids
                    member_items[item.member] = item
                elif r.sobject == "LeadErasure":  # compliance/erasure.py: the person asked to be forgotten
                    sobject = ld.sf_type or "Lead"
                    if payload.get("action") == "delete":
                        self.erasures.append(Item(sobject, {"Id": ld.sf_id}, [r.id], ld.id))
                    else:  # anonymise: replaces whatever else was pending for the lead
                        updates[ld.id] = Item(sobject, {"Id": ld.sf_id, **ANONYMISED.get(sobject, {})}, [r.id], ld.id)
                else:
                    fails.append(([r.id], "UNSUPPORTED", f"unknown outbox kind {r.sobject}"))
            except ValidationError as exc:
                fails.append(([r.id], "INVALID_OUTBOX_ROW", str(exc)))
        self._merge_live(updates)
        self._status_problems()
        return [*updates.values(), *items, *member_items.values()], fails

    def _status_problems(self) -> None:
        """Say in Sync & audit which `status_map` values the org's Lead Status picklist lacks (one open row per
        problem); a problem gone (the value added in Setup, the map changed) resolves its row."""
        if self.org is None:
            return
        problems = set(live.unmapped_statuses(self.ws.settings, self.org))
        e = sync_error.c
        with self.ws.engine.connect() as conn:
            open_rows = {r.message: r.id for r in conn.execute(select(e.id, e.message).where(
                e.code == "STATUS_NOT_IN_PICKLIST", e.resolved_at.is_(None)))}
        if not problems and not open_rows:
            return
        with write_tx(self.ws.engine) as conn:
            gone = [i for message, i in open_rows.items() if message not in problems and self._status_checked(message)]
            if gone:
                conn.execute(update(sync_error).where(e.id.in_(gone)).values(resolved_at=self.now))
            for problem in sorted(problems - set(open_rows)):
                self.on_error(conn, "Lead", "push", None, "STATUS_NOT_IN_PICKLIST", problem, {})

    def _merge_live(self, updates: dict[int, Item]) -> None:
        """Dirty leads' changed nurture-owned values join the lead's update (one record per lead, the live
        values last: they are the newest); leads with nothing new for Salesforce are just marked clean."""
        self.read_at = time.time()  # clock-ok: as above
        with self.ws.engine.connect() as conn:
            dirty = live.load_dirty(conn, self.ws.settings, self.now, self.org)
        unchanged: list[tuple[int, int, dict[str, Any]]] = []
        for d in dirty:
            changes = d.changes
            item = updates.get(d.lead_id)
            if not changes and item is None:
                unchanged.append((d.lead_id, d.seq, d.pushed))
                continue
            if item is None or item.sobject != (d.sf_type or "Lead"):
                item = Item(d.sf_type or "Lead", {"Id": d.sf_id}, [], d.lead_id)
                updates[d.lead_id] = item
            item.record.update(changes)
            item.live = (d.seq, changes, {**d.pushed, **changes})
            self.report.live_records += 1
        if unchanged:
            with write_tx(self.ws.engine) as conn:
                live.settle_ok(conn, unchanged, self.now, self.read_at)

    def _status_checked(self, message: str) -> bool:
        """Whether this push looked at the status a problem row is about (only statuses leads needed are)."""
        key = message.removeprefix("salesforce.status_map.").split(":", 1)[0]
        value = self.ws.settings.salesforce.status_map.get(key)
        return value is None or self.org is None or self.org.lead_statuses is None or value in self.org.lead_statuses

    @staticmethod
    def _owner(owner: Any, users: dict[int, str | None], row_id: int) -> str:
        sf = users.get(int(owner)) if str(owner).isdigit() else None
        if not sf:
            raise ValidationError(f"sf_outbox[{row_id}].owner", f"user {owner} has no Salesforce user id")
        return sf

    @staticmethod
    def _campaign(ref: Any, camps: list[Any], row_id: int) -> Any:
        for c in camps:
            if ref in (c.id, c.sf_id, c.name) or str(ref) in (str(c.id), c.sf_id, c.name):
                if not c.sf_id:
                    break
                return c
        raise ValidationError(f"sf_outbox[{row_id}].campaign", f"no Salesforce campaign {ref!r}")

    # ------------------------------------------------------------------------------------------- send
    def _prepare(self) -> None:
        """Read the org's Lead/Contact describe (fields, Lead Status values) when anything live is due, then
        create or link the local leads Salesforce does not know yet (create.py)."""
        with self.ws.engine.connect() as conn:
            s = sf_lead_sync.c
            due = conn.execute(select(s.lead_id).where(s.dirty_since.is_not(None)).limit(1)).first()
            if due is None:  # a local lead never seen by the push (no sync row yet)?
                due = conn.execute(select(lead.c.id).select_from(lead.outerjoin(sf_lead_sync, s.lead_id == lead.c.id))
                                   .where(lead.c.sf_id.is_(None), s.lead_id.is_(None)).limit(1)).first()
            if due is None:  # a Bulk insert job an interrupted sync left to settle?
                due = conn.execute(select(sync_state.c.sobject).where(sync_state.c.sobject.like(JOB_PREFIX + "%"))
                                   .limit(1)).first()
            if due is None and self.cfg.create_policy in ("mql", "segments"):
                # a waiting lead that qualified or joined a create segment since (no change capture for that)
                due = next(iter(candidates(conn, self.ws.settings, self.now, limit=1)), None)
        if due is None:
            return
        if not self._budget_ok(2):
            return
        self.org = live.org_fields(self.ws.engine, self.api)
        creator = Creator(self.ws.settings, self.api, self.ws.engine, self.now, self.on_error, self.org,
                          self._budget_ok)
        try:
            creator.run()
        finally:
            rep = creator.report
            self.report.created, self.report.linked, self.report.create_failed = rep.created, rep.linked, rep.failed
            self.report.create_calls, self.report.create_bulk_jobs = rep.calls, rep.bulk_jobs

    def run(self) -> PushReport:
        self._prepare()
        if self.report.budget_stopped:
            return self.report
        items, fails = self._load()
        if fails:
            with write_tx(self.ws.engine) as conn:
                for ids, code, message in fails:
                    self._fail(conn, None, ids, code, message, final=True)
        self.report.records = len(items) + len(self.erasures)
        groups: dict[tuple[str, str | None], list[Item]] = {}
        for it in items:
            groups.setdefault((it.sobject, it.ext), []).append(it)
        # Updates by Id of Leads and Contacts share Collections calls (mixed types are allowed).
        collections: dict[str | None, list[Item]] = {}
        for (sobject, ext), group in groups.items():
            if len(group) > self.cfg.bulk_threshold:
                if not self._bulk(sobject, ext, group):
                    return self.report
            else:
                collections.setdefault(ext if ext else None, []).extend(group)
        for ext, group in collections.items():
            if ext is None:
                for chunk in chunks(group, COLLECTION_SIZE):
                    if not self._collection_call(chunk, None):
                        return self.report
            else:
                by_type: dict[str, list[Item]] = {}
                for it in group:
                    by_type.setdefault(it.sobject, []).append(it)
                for group2 in by_type.values():
                    for chunk in chunks(group2, COLLECTION_SIZE):
                        if not self._collection_call(chunk, ext):
                            return self.report
        # erased people's records go last: whatever else was pending for them has been sent by now
        for chunk in chunks(self.erasures, COLLECTION_SIZE):
            if not self._delete_call(chunk):
                return self.report
        return self.report

    def _budget_ok(self, calls: int) -> bool:
        b = self.api.budget
        if b.max_calls and b.used + calls > b.allowed:
            self.report.budget_stopped = True
            return False
        return True

    def _delete_call(self, chunk: list[Item]) -> bool:
        """sObject Collections DELETE of erased people's records (an already deleted one counts as done)."""
        if not self._budget_ok(1):
            return False
        ids = ",".join(it.record["Id"] for it in chunk)
        results = self.api.call(lambda: self.api.sf.restful("composite/sobjects", method="DELETE",
                                                            params={"ids": ids, "allOrNone": "false"}))
        self.report.collection_calls += 1
        ok: list[tuple[Item, str | None]] = []
        bad: list[tuple[Item, str, str]] = []
        for it, res in zip(chunk, results, strict=False):
            err = (res.get("errors") or [{}])[0]
            if res.get("success") or err.get("statusCode") == "ENTITY_IS_DELETED":
                ok.append((it, None))
            else:
                bad.append((it, str(err.get("statusCode") or "UNKNOWN"), str(err.get("message") or "")))
        for it in chunk[len(results):]:
            bad.append((it, "UNPROCESSED", "no result returned for this record"))
        self._settle(ok, bad)
        return True

    def _collection_call(self, chunk: list[Item], ext: str | None) -> bool:
        if not self._budget_ok(1):
            return False
        records = [{"attributes": {"type": it.sobject}, **({"id": it.record["Id"]} if not ext else {}),
                    **{k: v for k, v in it.record.items() if k != "Id" or ext}} for it in chunk]
        path = f"composite/sobjects/{chunk[0].sobject}/{ext}" if ext else "composite/sobjects"
        results = self.api.collections("PATCH", records, path)
        self.report.collection_calls += 1
        ok: list[tuple[Item, str | None]] = []
        bad: list[tuple[Item, str, str]] = []
        for it, res in zip(chunk, results, strict=False):
            if res.get("success"):
                ok.append((it, res.get("id")))
            else:
                err = (res.get("errors") or [{}])[0]
                bad.append((it, str(err.get("statusCode") or "UNKNOWN"), str(err.get("message") or "")))
        for it in chunk[len(results):]:
            bad.append((it, "UNPROCESSED", "no result returned for this record"))
        self._settle(ok, bad)
        return True

    def _bulk(self, sobject: str, ext: str | None, group: list[Item]) -> bool:
        from simple_salesforce.exceptions import SalesforceOperationError

        if not self._budget_ok(BULK_CALLS):
            return False
        columns = [ext or "Id", *sorted({k for it in group for k in it.record} - {ext or "Id"})]
        with tempfile.TemporaryDirectory(prefix="nurture-bulk-") as tmp:
            path = Path(tmp) / f"{sobject}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(columns)
                for it in group:
                    w.writerow([_csv_value(it.record, c) for c in columns])
            try:
                jobs = self.api.bulk_ingest(sobject, "upsert" if ext else "update", path, ext)
            except SalesforceOperationError as exc:
                self._settle([], [(it, "BULK_JOB_FAILED", str(exc)[:500]) for it in group], job_error=str(exc))
                self.report.bulk_jobs += 1
                return True
        self.report.bulk_jobs += len(jobs)
        by_key = {it.key: it for it in group}
        failed: dict[str, tuple[str, str]] = {}
        unprocessed: set[str] = set()
        created: dict[str, str] = {}
        for job in jobs:
            if int(job.get("numberRecordsFailed") or 0):
                for row in self.api.bulk_results(sobject, job["job_id"], "failed"):
                    code, _, message = (row.get("sf__Error") or "UNKNOWN").partition(":")
                    failed[row.get(ext or "Id") or ""] = (code, message.rstrip(" -:"))
            if int(job.get("numberRecordsProcessed") or 0) < int(job.get("numberRecordsTotal") or 0):
                for row in self.api.bulk_results(sobject, job["job_id"], "unprocessed"):
                    unprocessed.add(row.get(ext or "Id") or "")
            if sobject == "CampaignMember" and ext:
                for row in self.api.bulk_results(sobject, job["job_id"], "ok"):
                    created[row.get(ext) or ""] = row.get("sf__Id") or ""
        ok = [(it, created.get(k) or it.record.get("Id")) for k, it in by_key.items()
              if k not in failed and k not in unprocessed]
        bad = [(by_key[k], c, msg) for k, (c, msg) in failed.items() if k in by_key]
        bad += [(by_key[k], "UNPROCESSED", "not processed by the bulk job") for k in unprocessed if k in by_key]
        self._settle(ok, bad)
        return True

    # ----------------------------------------------------------------------------------------- settle
    def _settle(self, ok: list[tuple[Item, str | None]], bad: list[tuple[Item, str, str]],
                job_error: str | None = None) -> None:
        with write_tx(self.ws.engine) as conn:
            ids = [i for it, _ in ok for i in it.outbox_ids]
            # Only look for errors to resolve when some push error is open (sync_error has no index for this).
            open_errors = conn.execute(select(sync_error.c.id).where(
                sync_error.c.resolved_at.is_(None), sync_error.c.sf_outbox_id.is_not(None)).limit(1)).first()
            for chunk in chunks(ids):
                conn.execute(update(sf_outbox).where(sf_outbox.c.id.in_(chunk)).values(
                    status="sent", sent_at=self.now, attempts=sf_outbox.c.attempts + 1, last_error=None,
                    retry_at=None))
                if open_errors is not None:
                    conn.execute(update(sync_error).where(sync_error.c.sf_outbox_id.in_(chunk),
                                                          sync_error.c.resolved_at.is_(None))
                                 .values(resolved_at=self.now))
            self.report.sent += len(ok)
            for it, sf_id in ok:
                if it.member is not None and sf_id:
                    self._member_row(conn, it, sf_id)
            done = [(it.lead_id, it.live[0], it.live[2]) for it, _ in ok if it.live is not None]
            live.settle_ok(conn, done, self.now, self.read_at)
            for chunk in chunks([d[0] for d in done]):
                conn.execute(update(sync_error).where(sync_error.c.lead_id.in_(chunk), sync_error.c.direction == "push",
                                                      sync_error.c.resolved_at.is_(None)).values(resolved_at=self.now))
            if job_error is not None:
                # One row for the whole job; its records stay pending (no attempt counted: no record was
                # refused) and are retried next time.
                self.on_error(conn, bad[0][0].sobject if bad else "", "push", None, "BULK_JOB_FAILED",
                              job_error[:2000], {"records": len(bad)})
                for chunk in chunks([i for it, _c, _m in bad for i in it.outbox_ids]):
                    conn.execute(update(sf_outbox).where(sf_outbox.c.id.in_(chunk)).values(
                        last_error=f"BULK_JOB_FAILED: {job_error[:300]}"))
                self.report.retry_later += len(bad)
                return
            for it, code, message in bad:
                self._fail(conn, it, it.outbox_ids, code, message, final=code not in TRANSIENT_CODES)
                if it.live is not None:
                    self._fail_live(conn, it, code, message, final=code not in TRANSIENT_CODES)

    def _fail_live(self, conn: Connection, it: Item, code: str, message: str, *, final: bool) -> None:
        """A lead whose live values Salesforce rejected: its error is kept (one open row per lead and code) and
        it is tried again once it changes, or on `--retry-errors`; transient codes retry next sync."""
        assert it.live is not None
        transient = not final
        final = live.settle_error(conn, it.lead_id, it.live[0], code, message, final=final, cfg=self.cfg)
        if final and transient:
            message += given_up(self.cfg, "when the lead changes or on `nurture sync --retry-errors`")
        e = sync_error.c
        if it.outbox_ids:  # the outbox rows' own error rows already say it
            return
        row = conn.execute(select(e.id).where(e.lead_id == it.lead_id, e.code == code, e.resolved_at.is_(None),
                                              e.sf_outbox_id.is_(None))).first()
        if row is not None:
            conn.execute(update(sync_error).where(e.id == row.id).values(
                message=message, attempts=e.attempts + 1, created_at=self.now))
        else:
            self.on_error(conn, it.sobject, "push", it.record.get("Id"), code, message,
                          {"lead_id": it.lead_id, "record": it.record})
        if final:
            self.report.failed += 1
        else:
            self.report.retry_later += 1

    def _member_row(self, conn: Connection, it: Item, sf_id: str) -> None:
        assert it.member is not None
        camp_id, lead_id = it.member
        status = str(it.record.get("Status") or "Sent")
        cm = campaign_member.c
        n = conn.execute(update(campaign_member).where(
            or_(cm.sf_id == sf_id, (cm.campaign_id == camp_id) & (cm.lead_id == lead_id)))
            .values(status=status, sf_id=sf_id)).rowcount
        if not n:
            conn.execute(insert(campaign_member).values(campaign_id=camp_id, lead_id=lead_id, status=status,
                                                        sf_id=sf_id, created_at=self.now))

    def _fail(self, conn: Connection, it: Item | None, ids: list[int], code: str, message: str, *,
              final: bool) -> None:
        """Outbox rows Salesforce refused: a final code is kept as an error at once; a transient one stays pending
        with a capped backoff (backoff.py) until `max_attempts` failures in a row, then is kept as well. Either
        way the error is in `sync_error` and `--retry-errors` queues the row again."""
        o = sf_outbox.c
        wall = time.time()  # clock-ok: retry_at is on the capture triggers' (wall) clock, like sf_lead_sync's
        for oid in ids:
            attempts = (conn.execute(select(o.attempts).where(o.id == oid)).scalar() or 0) + 1
            retry_at = None if final else next_try(self.cfg, attempts, wall)
            text = message + (given_up(self.cfg) if retry_at is None and not final else "")
            conn.execute(update(sf_outbox).where(o.id == oid).values(
                attempts=attempts, status="pending" if retry_at else "error", retry_at=retry_at,
                last_error=f"{code}: {text}"[:2000]))
            self._error_row(conn, it, oid, code, text, attempts)
            if retry_at is None:
                self.report.failed += 1
            else:
                self.report.retry_later += 1

    def _error_row(self, conn: Connection, it: Item | None, oid: int, code: str, message: str, attempts: int) -> None:
        """The outbox row's one open `sync_error` row, created or brought up to date."""
        existing = conn.execute(select(sync_error.c.id).where(
            sync_error.c.sf_outbox_id == oid, sync_error.c.resolved_at.is_(None))).first()
        if existing:
            conn.execute(update(sync_error).where(sync_error.c.id == existing.id).values(
                code=code, message=message, attempts=attempts, created_at=self.now))
        else:
            self.on_error(conn, it.sobject if it else "Lead", "push", it.record.get("Id") if it else None, code,
                          message, {"record": it.record if it else None, "sf_outbox_id": oid, "attempts": attempts})


def _held_leads(conn: Connection) -> set[int]:
    """Leads with an outbox row waiting out a retry backoff: all their rows wait with it, so a coalesced field
    update or member status never overtakes an older one that is retried later."""
    o = sf_outbox.c
    wall = time.time()  # clock-ok: as in Pusher._fail
    # (by the retry_at index: few rows have one; the status index would read every pending row)
    return {int(lead_id) for lead_id, status in conn.execute(select(o.lead_id, o.status).where(o.retry_at > wall))
            if status == "pending" and lead_id is not None}


@dataclass(frozen=True)
class _LeadRef:
    id: int
    sf_id: str | None
    sf_type: str | None
    owner_id: int | None


@dataclass(frozen=True)
class _OutboxRow:
    id: int
    sobject: str
    lead_id: int | None
    payload: dict[str, Any]


def _csv_value(record: dict[str, Any], column: str) -> str:
    """Bulk CSV cell: missing = empty (leave unchanged), None = #N/A (set null)."""
    if column not in record:
        return ""
    v = record[column]
    if v is None:
        return "#N/A"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
