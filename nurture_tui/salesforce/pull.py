"""Pull: Salesforce → local store, per object by SystemModstamp watermark.

Each object is read with `SystemModstamp >= watermark − overlap ORDER BY SystemModstamp, Id` (REST pages, or
Bulk 2.0 when more than `bulk_threshold` rows match). Every page is applied and the watermark advanced in one
transaction, so an interrupted pull resumes where it stopped; the overlap re-reads a few minutes and rows
whose SystemModstamp equals the stored `sf_modstamp` are skipped (dedupe). Deletes and merges come from a
`queryAll … IsDeleted = true` pass with its own watermark. A lead converted in Salesforce moves the local
lead (and its nurture state) onto the new Contact. Campaign responses and new opportunities are recorded as
engagement through `engine.events.record_events`.

Every object is applied by one routine (`Puller._apply`: compare with the mirrored rows → map → batched insert
and update → count); what differs per object — its table, the local columns compared, the page's lookups and
the record → row mapping — is its entry in `PULL_SPECS`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update

from ..activity import ActivityEvent
from ..batching import chunks
from ..compliance.erased import erased_emails, erased_lead_ids
from ..compliance.withdrawal import withdraw
from ..config import Settings
from ..engine.events import record_events
from ..scoring import grading
from ..store import audit, rollups
from ..store.engine import write_tx
from ..store.fastwrite import insert_many, update_many
from ..store.inlist import in_values
from ..store.tables import (
    account,
    campaign,
    campaign_member,
    lead,
    opportunity,
    sf_outbox,
    sync_error,
    sync_state,
)
from ..store.tables import user as user_t
from ..workspace import Workspace
from . import backoff, live
from . import mapping as m
from .api import SfApi
from .lookup import by_sf_id
from .merges import apply_deletes, merge_local


@dataclass
class ObjectReport:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    merged: int = 0
    converted: int = 0
    skipped: int = 0
    errors: int = 0
    via: str = "rest"
    erased: int = 0  # records of people erased at their request, not brought back (compliance/erasure.py)


@dataclass
class PullReport:
    objects: dict[str, ObjectReport] = field(default_factory=dict)
    events: int = 0

    @property
    def rows(self) -> int:
        return sum(o.fetched for o in self.objects.values())


log = logging.getLogger("nurture.salesforce")
#: A bulk pull's first result page is small, so writing starts while the full pages (25,000) are fetched.
FIRST_PAGE_ROWS = 5000
ErrorSink = Callable[[Connection, str, str, str | None, str, str, dict[str, Any]], None]


@dataclass
class Prepared:
    """What a page's records give without the database — worked out in the prefetch thread (`_prepare`), so
    it overlaps the previous page's SQLite writes (which release the GIL) instead of adding to them."""

    top: datetime | None  # the page's newest SystemModstamp
    values: dict[str, dict[str, Any]] | None = None  # Lead/Contact: `mapping.lead_values` by record Id
    emails: list[str] | None = None  # Lead/Contact: the page's addresses (trimmed, lower-cased)


def _prepare(obj: str, page: list[dict[str, Any]]) -> Prepared:
    prepared = Prepared(_top_stamp(page))
    if PULL_SPECS[obj].mapper is _people_rows:
        values = m.lead_values
        prepared.values = {r["Id"]: values(obj, r) for r in page}
        prepared.emails = list({str(r.get("Email") or "").strip().lower() for r in page} - {""})
    return prepared


def _prefetched(obj: str, pages: Iterator[list[dict[str, Any]]],
                ahead: int = 2) -> Iterator[tuple[list[dict[str, Any]], Prepared]]:
    """Fetch the next pages (HTTP, the org's work, CSV/JSON parsing, `_prepare`) while the caller applies this
    one.

    Up to `ahead` pages are requested in advance, so the org (the emulator: a process of its own) is not left
    idle while a page is written. The source generator only ever runs in the one worker thread, one step at a
    time, and the caller makes no other API calls meanwhile, so the session is never used concurrently;
    errors surface at the same page (a generator that raised is exhausted: requests queued after it get
    None)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def fetch() -> tuple[list[dict[str, Any]], Prepared] | None:
        page = next(pages, None)
        return None if page is None else (page, _prepare(obj, page))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sf-pull-prefetch") as pool:
        queued = deque(pool.submit(fetch) for _ in range(ahead))
        try:
            while True:
                got = queued.popleft().result()
                if got is None:
                    return
                queued.append(pool.submit(fetch))
                yield got
        finally:
            for f in queued:  # the caller stopped early (an error applying a page): fetch no further
                f.cancel()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a page is applied: its tens of thousands of new dicts and tuples
    (none of them in cycles) would otherwise trigger hundreds of young-generation passes per page."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _top_stamp(page: list[dict[str, Any]]) -> datetime | None:
    """The page's newest SystemModstamp (one wire format per response, so the string maximum is the latest)."""
    stamps = [str(s) for s in (r.get("SystemModstamp") for r in page) if s]
    return m.sf_datetime(max(stamps)) if stamps else None


def _record_events(conn: Connection, events: list[ActivityEvent], now: datetime, settings: Settings) -> int:
    if not events:
        return 0
    record_events(conn, events, now, settings)
    return len(events)


class Puller:
    def __init__(self, ws: Workspace, api: SfApi, *, full: bool, on_error: ErrorSink) -> None:
        self.ws = ws
        self.api = api
        self.full = full
        self.cfg = ws.settings.salesforce
        self.on_error = on_error
        self.report = PullReport()
        self.now = ws.clock.now()
        self._users: dict[str, int] | None = None
        self._retry_upto = 0
        self._fresh: set[str] = set()
        self._graded: bool | None = None  # whether an active grade profile exists (read once per sync)

    # --------------------------------------------------------------------------------------- driver
    def run(self, objects: list[str] | None = None) -> PullReport:
        objects = objects or m.PULL_ORDER
        with self.ws.engine.connect() as conn:  # errors recorded before this sync are the ones to retry
            self._retry_upto = int(conn.execute(select(func.max(sync_error.c.id))).scalar() or 0)
        for obj in objects:
            self.pull_object(obj)
            self.retry_failed(obj)
        for obj in objects:
            if obj in m.DELETABLE:
                self.pull_deletes(obj)
        return self.report

    def _state(self, key: str) -> datetime | None:
        with self.ws.engine.connect() as conn:
            row = conn.execute(select(sync_state.c.watermark).where(sync_state.c.sobject == key)).first()
        return row.watermark if row else None

    def _save_state(self, conn: Connection, key: str, watermark: datetime | None, *, done: bool = False) -> None:
        values: dict[str, Any] = {"last_run_at": self.now, "status": "idle" if done else "running"}
        if watermark is not None:
            values["watermark"] = watermark
        if done and self.full:
            values["last_full_at"] = self.now
        n = conn.execute(update(sync_state).where(sync_state.c.sobject == key).values(**values)).rowcount
        if not n:
            conn.execute(insert(sync_state).values(sobject=key, detail={}, **values))

    def _pages(self, obj: str, soql: str, include_deleted: bool, rep: ObjectReport,
               count_soql: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """REST pages, or a Bulk 2.0 job when more than `bulk_threshold` rows match.

        With `count_soql` (first and full pulls, where big results are likely) a COUNT() decides; otherwise
        (incremental syncs, usually small) the REST query starts and its first page's totalSize decides —
        one call instead of two in the common case."""
        from simple_salesforce.exceptions import SalesforceOperationError

        if count_soql is not None and self.api.count(count_soql, include_deleted) <= self.cfg.bulk_threshold:
            yield from self.api.query_pages(soql, include_deleted)
            return
        if count_soql is None:
            rest = self.api.query_pages(soql, include_deleted)
            first = next(rest, None)
            if first is None:
                return
            if self.api.last_total <= self.cfg.bulk_threshold:
                yield first
                yield from rest
                return
            rest.close()
        rep.via = "bulk"
        try:
            yield from self.api.bulk_query_pages(obj, soql, include_deleted, first_records=FIRST_PAGE_ROWS)
            return
        except SalesforceOperationError as exc:  # a failed bulk job: say so, then read it over REST
            with write_tx(self.ws.engine) as conn:
                self.on_error(conn, obj, "pull", None, "BULK_JOB_FAILED", str(exc)[:2000], {"soql": soql})
            rep.errors += 1
            rep.via = "rest"
        yield from self.api.query_pages(soql, include_deleted)

    def _window(self, key: str) -> tuple[str, datetime | None]:
        watermark = None if self.full else self._state(key)
        if watermark is None:
            return "", None
        since = watermark - timedelta(seconds=self.cfg.overlap_seconds)
        return f"SystemModstamp >= {m.soql_datetime(since)}", watermark

    def pull_object(self, obj: str) -> ObjectReport:
        rep = self.report.objects.setdefault(obj, ObjectReport())
        cond, watermark = self._window(obj)
        if watermark is None and obj in m.DELETABLE and self._local_count(obj) == 0:
            self._fresh.add(obj)  # first mirror of this object: there is nothing local a delete could remove
        where = f" WHERE {cond}" if cond else ""
        soql = f"SELECT {', '.join(m.PULL_FIELDS[obj])} FROM {obj}{where} ORDER BY SystemModstamp, Id"
        count_soql = f"SELECT COUNT() FROM {obj}{where}" if watermark is None else None
        for page, prepared in _prefetched(obj, self._pages(obj, soql, False, rep, count_soql)):
            rep.fetched += len(page)
            with _gc_paused(), write_tx(self.ws.engine) as conn:
                self._apply(conn, obj, page, rep, prepared)
                top = prepared.top
                watermark = max(watermark, top) if watermark and top else (top or watermark)
                self._save_state(conn, obj, watermark)
        with write_tx(self.ws.engine) as conn:
            self._save_state(conn, obj, watermark, done=True)
        if obj == "User":
            self._users = None
        return rep

    def retry_failed(self, obj: str) -> None:
        """Records that failed to apply earlier (open pull errors) are read again by Id and re-applied; their
        error rows are resolved first, so a record that still fails gets a fresh one."""
        e = sync_error.c
        with self.ws.engine.connect() as conn:
            failed = conn.execute(select(e.id, e.record_id).where(
                e.direction == "pull", e.sobject == obj, e.resolved_at.is_(None), e.record_id.is_not(None),
                e.id <= self._retry_upto)).all()
        if not failed:
            return
        rep = self.report.objects.setdefault(obj, ObjectReport())
        ids = sorted({str(r.record_id) for r in failed})
        for chunk in chunks(ids, 200):
            quoted = ", ".join(f"'{i}'" for i in chunk if i.isalnum())
            soql = f"SELECT {', '.join(m.PULL_FIELDS[obj])} FROM {obj} WHERE Id IN ({quoted})"
            for page in self.api.query_pages(soql):
                with write_tx(self.ws.engine) as conn:
                    conn.execute(update(sync_error).where(e.id.in_([r.id for r in failed if r.record_id in chunk]))
                                 .values(resolved_at=self.now))
                    self._apply(conn, obj, page, rep)

    # ---------------------------------------------------------------------------------------- applying
    def _apply(self, conn: Connection, obj: str, rows: list[dict[str, Any]], rep: ObjectReport,
               prepared: Prepared | None = None) -> None:
        """One page of `obj` → its local table, driven by `PULL_SPECS[obj]`: compare with what is mirrored,
        map the changed records, write the inserts and the updates as batched executemany, count, record events."""
        spec = PULL_SPECS[obj]
        table = spec.table
        existing = by_sf_id(conn, table, [table.c.id, table.c.sf_id, *(table.c[n] for n in spec.columns)],
                            (r["Id"] for r in rows))
        page = Page(self, conn, obj, rows, existing, rep, prepared or _prepare(obj, rows))
        row_for = spec.mapper(page)
        intercept = spec.intercept
        by_modstamp = spec.by_modstamp
        stamp = m.sf_datetime
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for r in rows:
            local = existing.get(r["Id"])
            if intercept is not None and intercept(page, r, local):
                continue
            if by_modstamp and local is not None and local.sf_modstamp == stamp(r.get("SystemModstamp")):
                rep.unchanged += 1
                continue
            row = row_for(r, local)
            if row is not None:
                (updates if "id" in row else inserts).append(row)
        if inserts and table is lead:
            with rollups.bulk_lead_inserts(conn):  # lead_cohort counted once per page, not per row
                insert_many(conn, table, inserts)
        elif inserts:
            insert_many(conn, table, inserts)
        update_many(conn, table, updates)
        rep.inserted += len(inserts)
        rep.updated += len(updates)
        if table is lead and (inserts or updates):
            self._grade(conn, inserts, updates)
        self.report.events += _record_events(conn, page.events, self.now, self.ws.settings)

    def _grade(self, conn: Connection, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
        """Grade on arrival: pulled leads (new, or with changed fields) get their fit grade in the page's own
        transaction, so no lead sits ungraded until someone runs `scoring grades regrade`. Without an active
        grade profile nothing can change (no grade, and a pull moves no score): skipped."""
        if self._graded is None:
            self._graded = bool(grading.load_profiles(conn))
        if not self._graded:
            return
        ids = [int(u["id"]) for u in updates]
        if inserts:
            ids += [int(r[0]) for r in conn.execute(select(lead.c.id).where(
                in_values(conn, lead.c.sf_id, [str(i["sf_id"]) for i in inserts])))]
        grading.regrade(conn, ids, self.now, self.ws.settings)

    def users(self, conn: Connection) -> dict[str, int]:
        """Local user id by Salesforce user id (cached for the sync; reset after the User pull)."""
        if self._users is None:
            self._users = {r.sf_id: r.id for r in conn.execute(
                select(user_t.c.id, user_t.c.sf_id).where(user_t.c.sf_id.is_not(None)))}
        return self._users

    def error(self, conn: Connection, obj: str, rec: dict[str, Any], code: str, message: str,
              rep: ObjectReport) -> None:
        """A record that cannot be applied: counted, and kept in `sync_error` to be retried next sync."""
        rep.errors += 1
        payload = {k: v for k, v in rec.items() if k != "attributes"}
        self.on_error(conn, obj, "pull", str(rec.get("Id")), code, message, payload)

    def pending_owner_changes(self, conn: Connection, lead_ids: list[int]) -> set[int]:
        """Leads whose local owner change still waits in the outbox (their pulled OwnerId must not win yet)."""
        out: set[int] = set()
        o = sf_outbox.c
        for chunk in chunks(lead_ids):
            for row in conn.execute(select(o.lead_id, o.payload).where(
                    o.status == "pending", o.sobject == "Lead", o.lead_id.in_(chunk))):
                if isinstance(row.payload, dict) and "owner" in row.payload:
                    out.add(row.lead_id)
        return out

    def converted(self, conn: Connection, r: dict[str, Any], local: Any, stamp: datetime | None,
                  rep: ObjectReport) -> None:
        """Lead converted in Salesforce: the local lead (score, enrollments, history) becomes the Contact."""
        contact_id = m.text(r.get("ConvertedContactId"))
        if local is None or local.sf_type == "Contact" or not contact_id:
            rep.unchanged += 1
            return
        other = conn.execute(select(lead.c.id).where(lead.c.sf_id == contact_id)).first()
        if other is not None and other.id != local.id:
            merge_local(conn, keep=local.id, gone=other.id, reason=f"converted lead {r['Id']}", now=self.now)
        custom = dict(local.custom or {})
        custom.update(sf_lead_id=r["Id"], sf_converted_at=stamp.isoformat() if stamp else None)
        conn.execute(update(lead).where(lead.c.id == local.id).values(
            sf_id=contact_id, sf_type="Contact", status=m.text(r.get("Status")), sf_modstamp=stamp, custom=custom,
            updated_at=self.now))
        backoff.end(conn, [local.id])  # pushes refused by the converted Lead go to the Contact next, at once
        audit.record(conn, at=self.now, user="salesforce-sync", action="salesforce.convert", entity="lead",
                     entity_id=local.id, before={"sf_id": r["Id"], "sf_type": "Lead"},
                     after={"sf_id": contact_id, "sf_type": "Contact"})
        rep.converted += 1

    # ----------------------------------------------------------------------------------- deletes/merges
    def pull_deletes(self, obj: str) -> None:
        rep = self.report.objects.setdefault(obj, ObjectReport())
        key = f"{obj}.deleted"
        cond, watermark = self._window(key)
        where = " WHERE IsDeleted = true" + (f" AND {cond}" if cond else "")
        fields = "Id, SystemModstamp" + (", MasterRecordId" if obj in m.MERGEABLE else "")
        soql = f"SELECT {fields} FROM {obj}{where} ORDER BY SystemModstamp, Id"
        if watermark is None and (obj in self._fresh or self._local_count(obj) == 0):
            # Nothing was mirrored before this sync, so nothing to delete: start at the object's watermark.
            with write_tx(self.ws.engine) as conn:
                self._save_state(conn, key, self._state(obj), done=True)
            return
        for page in self._pages(obj, soql, True, rep):
            with write_tx(self.ws.engine) as conn:
                deleted, merged = apply_deletes(conn, obj, page, self.now)
                rep.deleted += deleted
                rep.merged += merged
                top = _top_stamp(page)
                watermark = max(watermark, top) if watermark and top else (top or watermark)
                self._save_state(conn, key, watermark)
        if watermark is None:
            # Nothing deleted yet: a later delete bumps SystemModstamp past the object's own watermark.
            watermark = self._state(obj)
        with write_tx(self.ws.engine) as conn:
            self._save_state(conn, key, watermark, done=True)

    def _local_count(self, obj: str) -> int:
        table = PULL_SPECS[obj].table
        with self.ws.engine.connect() as conn:
            return len(conn.execute(select(table.c.id).where(table.c.sf_id.is_not(None)).limit(1)).all())


# -------------------------------------------------------------------------------------------- per-object specs
#: One page's row mapper: (record, its mirrored row or None) → the row to write — with "id" it updates that
#: local row, without it inserts — or None when the record is settled otherwise (unchanged, skipped, an error).
RowMapper = Callable[[dict[str, Any], Any], "dict[str, Any] | None"]


@dataclass
class Page:
    """A page being applied: what the mappers read (the records, their mirrored rows) and what they add to."""

    puller: Puller
    conn: Connection
    sobject: str
    rows: list[dict[str, Any]]
    existing: dict[str, Any]  # mirrored rows by Salesforce id (the spec's columns)
    rep: ObjectReport
    prepared: Prepared  # what the records give without the database (see `_prepare`)
    events: list[ActivityEvent] = field(default_factory=list)  # engagement to record with the page


@dataclass(frozen=True)
class PullSpec:
    """How one Salesforce object lands locally; `Puller._apply` does the rest the same way for every object."""

    table: Table
    #: local columns read for records already mirrored, besides `id` and `sf_id`
    columns: tuple[str, ...]
    #: per page: runs the lookups the page's records need and returns the row mapper
    mapper: Callable[[Page], RowMapper]
    #: unchanged = the stored `sf_modstamp` equals the record's SystemModstamp (else the mapper compares)
    by_modstamp: bool = True
    #: settles a record before the compare and returns True (a converted Lead moves the local lead instead)
    intercept: Callable[[Page, dict[str, Any], Any], bool] | None = None


def _user_rows(page: Page) -> RowMapper:
    """Users carry no modstamp locally, so they compare by value; a new one adopts the local user with its
    username unless that user already belongs to another Salesforce user."""
    conn, rep, now = page.conn, page.rep, page.puller.now
    names = [str(r.get("Username") or "") for r in page.rows if r["Id"] not in page.existing]
    by_name: dict[str, Any] = {}
    for chunk in chunks(names):
        for row in conn.execute(select(user_t.c.id, user_t.c.username, user_t.c.sf_id)
                                .where(user_t.c.username.in_(chunk))):
            by_name[row.username] = row

    def mapped(r: dict[str, Any], local: Any) -> dict[str, Any] | None:
        vals = {"username": str(r.get("Username") or r["Id"])[:120], "name": (m.text(r.get("Name")) or "")[:200],
                "email": m.text(r.get("Email")), "active": m.boolean(r.get("IsActive")), "sf_id": r["Id"]}
        if local is None:
            match = by_name.get(vals["username"])
            if match is not None and match.sf_id not in (None, r["Id"]):
                page.puller.error(conn, "User", r, "DUPLICATE_USERNAME", f"local user {match.id} already has "
                                  f"username {vals['username']} for Salesforce user {match.sf_id}", rep)
                return None
            local = match
        if local is None:
            by_name[vals["username"]] = None
            return {**vals, "role": "rep", "created_at": now}
        if all(getattr(local, k, None) == v for k, v in vals.items()):
            rep.unchanged += 1
            return None
        return {"id": local.id, **vals}

    return mapped


def _account_rows(page: Page) -> RowMapper:
    users, now = page.puller.users(page.conn), page.puller.now

    def mapped(r: dict[str, Any], local: Any) -> dict[str, Any]:
        site = m.text(r.get("Website"))
        vals = {"name": (m.text(r.get("Name")) or "")[:255], "industry": m.text(r.get("Industry")),
                "employees": m.integer(r.get("NumberOfEmployees")), "country": m.text(r.get("BillingCountry")),
                "domain": site.split("://")[-1].split("/")[0][:255] if site else None,
                "owner_id": users.get(str(r.get("OwnerId"))), "sf_modstamp": m.sf_datetime(r.get("SystemModstamp")),
                "updated_at": now}
        if local is None:
            return {**vals, "sf_id": r["Id"], "created_at": now, "custom": {}}
        return {"id": local.id, **vals}

    return mapped


def _campaign_rows(page: Page) -> RowMapper:
    # Campaigns a sequence created locally (add_to_campaign) before they were synced: link them by name.
    unlinked = {row.name: row.id for row in page.conn.execute(
        select(campaign.c.id, campaign.c.name).where(campaign.c.sf_id.is_(None)))}

    def mapped(r: dict[str, Any], local: Any) -> dict[str, Any]:
        vals = {"name": (m.text(r.get("Name")) or r["Id"])[:255], "type": m.text(r.get("Type")),
                "status": m.text(r.get("Status")), "is_active": m.boolean(r.get("IsActive")),
                "sf_modstamp": m.sf_datetime(r.get("SystemModstamp"))}
        if local is None and vals["name"] in unlinked:
            return {"id": unlinked.pop(vals["name"]), "sf_id": r["Id"], **vals}
        if local is None:
            return {**vals, "sf_id": r["Id"]}
        return {"id": local.id, **vals}

    return mapped


def _converted_lead(page: Page, r: dict[str, Any], local: Any) -> bool:
    if r.get("IsConverted") not in (True, "true"):
        return False
    page.puller.converted(page.conn, r, local, m.sf_datetime(r.get("SystemModstamp")), page.rep)
    return True


def _people_rows(page: Page) -> RowMapper:
    """Leads and Contacts both become local leads, keyed by Salesforce id and, for records not mirrored yet,
    by email: a local-only lead with the address is adopted, one mirrored from another record is a
    DUPLICATE_EMAIL error. Opt-outs are sticky; the owner follows `salesforce.owner_authority`."""
    puller, conn, rep, sobject = page.puller, page.conn, page.rep, page.sobject
    users = puller.users(conn)
    c = lead.c
    # email → (local id, Salesforce id); -1 marks a row inserted by this page
    emails: dict[str, tuple[int, str | None]] = {}
    wanted = page.prepared.emails or []
    if wanted:
        for row in conn.execute(select(c.email, c.id, c.sf_id).where(in_values(conn, c.email, wanted))):
            emails[row.email] = (row.id, row.sf_id)
    accounts: dict[str, int] = {}
    if sobject == "Contact":
        accounts = {k: v.id for k, v in by_sf_id(conn, account, [account.c.id, account.c.sf_id],
                                                  (str(r.get("AccountId") or "") for r in page.rows)).items()}
    held_owner = puller.pending_owner_changes(conn, [e.id for e in page.existing.values()])
    erased = erased_emails(conn, wanted)  # people erased at their request stay erased
    erased_ids = erased_lead_ids(conn, [e.id for e in page.existing.values()])
    echoes = live.pending_status_echo(conn, [e.id for e in page.existing.values()]) if sobject == "Lead" else {}
    scoring = puller.ws.settings.scoring
    lifecycle = {scoring.mql_lead_status, scoring.accepted_lead_status, scoring.recycled_lead_status}
    status_map = puller.cfg.status_map
    salesforce_owns_owner = puller.cfg.owner_authority == "salesforce"
    is_lead = sobject == "Lead"
    now = puller.now
    values = page.prepared.values or {}

    def mapped(r: dict[str, Any], local: Any) -> dict[str, Any] | None:
        sf_id = r["Id"]
        vals = values.pop(sf_id, None) or m.lead_values(sobject, r)  # (popped: a repeated Id maps afresh)
        email = vals["email"]
        if not email:
            rep.skipped += 1  # nothing to nurture without an address
            return None
        if email in erased or (local is not None and local.id in erased_ids):
            rep.erased += 1
            log.warning("salesforce pull: %s %s belongs to a person erased at their request; not brought back",
                        sobject, sf_id)
            return None
        holder = emails.get(email)
        target_id = local.id if local is not None else None
        if target_id is None and holder is not None and holder[1] is None:
            target_id = holder[0]  # a local-only lead (import, form) now known to Salesforce
        if holder is not None and holder[0] != target_id:
            puller.error(conn, sobject, r, "DUPLICATE_EMAIL", f"{email} already belongs to local lead {holder[0]} "
                         f"(Salesforce {holder[1]}); merge the duplicates in Salesforce", rep)
            return None
        vals["sf_id"] = sf_id
        vals["sf_type"] = sobject
        vals["sf_modstamp"] = r.get("SystemModstamp") or None  # kept as text: fastwrite converts it cheaply
        vals["updated_at"] = now
        if is_lead:
            vals["bounced"] = bool(r.get("EmailBouncedDate"))
        else:
            vals["account_id"] = accounts.get(str(r.get("AccountId") or ""))
        opted = r.get("HasOptedOutOfEmail") in (True, "true")
        sf_owner = users.get(r.get("OwnerId") or "")
        if target_id is None:
            vals["opted_out"] = opted
            vals["owner_id"] = sf_owner
            vals["custom"] = {}
            vals["score"] = 0.0
            vals["created_at"] = r.get("CreatedDate") or now
            emails[email] = (-1, sf_id)
            return vals
        current = local if local is not None else conn.execute(
            select(c.opted_out, c.owner_id).where(c.id == target_id)).first()
        vals["opted_out"] = opted or bool(current.opted_out if current is not None else False)
        if opted and not (current is not None and current.opted_out):
            withdraw(conn, target_id, None, now)  # opted out in Salesforce: consent withdrawn (docs/compliance.md)
        local_owner = current.owner_id if current is not None else None
        if salesforce_owns_owner:
            vals["owner_id"] = local_owner if target_id in held_owner else sf_owner
        else:
            vals["owner_id"] = local_owner if local_owner is not None else sf_owner
        if local is not None and is_lead and local.status in lifecycle and vals["status"] != local.status:
            # Echo suppression: the MQL lifecycle is nurture's; a pulled Status that is only the echo of what
            # nurture pushed (or pushed before a newer local change went out) must not undo it.
            dirty, pushed_status = echoes.get(target_id, (False, None))
            ours = status_map.get(local.status)
            if vals["status"] in (pushed_status, ours) or (dirty and ours != pushed_status):
                vals["status"] = local.status
        vals["id"] = target_id
        emails[email] = (target_id, sf_id)
        return vals

    return mapped


def _people_ids(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Local lead id by the Salesforce Lead/Contact ids a page's records point at."""
    ids = [str(r.get(k)) for r in rows for k in ("LeadId", "ContactId") if r.get(k)]
    return {k: v.id for k, v in by_sf_id(conn, lead, [lead.c.id, lead.c.sf_id], ids).items()}


def _member_rows(page: Page) -> RowMapper:
    """A member whose campaign or person is not mirrored (e.g. no email) is skipped; a new response is
    engagement (`campaign_response`)."""
    conn, rep, now, events = page.conn, page.rep, page.puller.now, page.events
    camps = by_sf_id(conn, campaign, [campaign.c.id, campaign.c.sf_id, campaign.c.name],
                     (str(r.get("CampaignId")) for r in page.rows))
    people = _people_ids(conn, page.rows)

    def mapped(r: dict[str, Any], local: Any) -> dict[str, Any] | None:
        stamp = m.sf_datetime(r.get("SystemModstamp"))
        camp = camps.get(str(r.get("CampaignId")))
        who = people.get(str(r.get("ContactId") or "")) or people.get(str(r.get("LeadId") or ""))
        if camp is None or who is None:
            rep.skipped += 1
            return None
        responded = m.boolean(r.get("HasResponded"))
        vals = {"campaign_id": camp.id, "lead_id": who, "status": (m.text(r.get("Status")) or "Sent")[:40],
                "responded": responded, "sf_modstamp": stamp}
        if responded and (local is None or not local.responded):
            events.append(ActivityEvent(who, "campaign_response", stamp or now, meta={
                "campaign": camp.name, "campaign_sf_id": camp.sf_id, "status": vals["status"], "source": "salesforce"}))
        if local is None:
            return {**vals, "sf_id": r["Id"], "created_at": m.sf_datetime(r.get("CreatedDate")) or now}
        return {"id": local.id, **vals}

    return mapped


def _opportunity_rows(page: Page) -> RowMapper:
    """A new opportunity of a mirrored contact is engagement (`opportunity`)."""
    conn, now, events = page.conn, page.puller.now, page.events
    accounts = {k: v.id for k, v in by_sf_id(conn, account, [account.c.id, account.c.sf_id],
                                              (str(r.get("AccountId") or "") for r in page.rows)).items()}
    people = _people_ids(conn, page.rows)

    def mapped(r: dict[str, Any], local: Any) -> dict[str, Any]:
        stamp = m.sf_datetime(r.get("SystemModstamp"))
        who = people.get(str(r.get("ContactId") or ""))
        vals = {"account_id": accounts.get(str(r.get("AccountId") or "")), "lead_id": who,
                "name": (m.text(r.get("Name")) or "")[:255], "stage": m.text(r.get("StageName")),
                "amount": m.number(r.get("Amount")), "is_closed": m.boolean(r.get("IsClosed")),
                "is_won": m.boolean(r.get("IsWon")), "close_date": m.sf_date(r.get("CloseDate")),
                "sf_modstamp": stamp}
        if local is not None:
            return {"id": local.id, **vals}
        if who is not None:
            events.append(ActivityEvent(who, "opportunity", stamp or now, meta={
                "sf_id": r["Id"], "stage": vals["stage"], "amount": vals["amount"], "source": "salesforce"}))
        return {**vals, "sf_id": r["Id"], "created_at": m.sf_datetime(r.get("CreatedDate")) or now}

    return mapped


_PEOPLE_COLUMNS = ("sf_type", "email", "sf_modstamp", "owner_id", "opted_out", "custom", "status")

#: Every pulled object (see `mapping.PULL_FIELDS` for the Salesforce fields read, `PULL_ORDER` for the order).
PULL_SPECS: dict[str, PullSpec] = {
    "User": PullSpec(user_t, ("username", "name", "email", "active"), _user_rows, by_modstamp=False),
    "Account": PullSpec(account, ("sf_modstamp",), _account_rows),
    "Campaign": PullSpec(campaign, ("sf_modstamp",), _campaign_rows),
    "Lead": PullSpec(lead, _PEOPLE_COLUMNS, _people_rows, intercept=_converted_lead),
    "Contact": PullSpec(lead, _PEOPLE_COLUMNS, _people_rows),
    "CampaignMember": PullSpec(campaign_member, ("sf_modstamp", "responded"), _member_rows),
    "Opportunity": PullSpec(opportunity, ("sf_modstamp", "is_won"), _opportunity_rows),
}
