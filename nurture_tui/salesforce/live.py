"""Continuous push: each dirty lead's nurture-owned values, as they are now, diffed against what Salesforce has.

Change capture is the `sf_lead_sync` table, kept by triggers (store/sf_capture.py): any change of a lead's
score, grade, stage, last engagement, MQL lifecycle, opt-out, bounce or sequence status marks the lead
dirty. The push reads the *current* values of the dirty leads (so however many changes happened, the
latest value wins and one record goes out) and sends only the fields that differ from `sf_lead_sync.pushed`
— what Salesforce last accepted. After a successful write `pushed` is updated and the lead is clean unless
it changed again meanwhile (`seq` moved on).

Values sent (Salesforce names from `salesforce.field_map`, standard fields where the object has them in
its describe):

- score (the live, decayed score, rounded), grade, stage, MQL status (`Nurture_MQL_Status__c`: the local
  lifecycle name), last engagement, sequence status (`<sequence>: <status>` of the latest enrollment);
- `Status` (Leads): the MQL lifecycle mapped through `salesforce.status_map` onto the org's Lead Status
  picklist (values read from describe; an unmapped or unknown value is not sent);
- `HasOptedOutOfEmail = true` once the lead opted out (never pushed back to false: opt-out is sticky);
- `EmailBouncedDate` / `EmailBouncedReason` once the lead hard-bounced (the bounced message's time and error).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, Float, bindparam, case, func, insert, select, update

from ..batching import chunks
from ..config import SalesforceSettings, Settings
from ..scoring.scale import read_scale
from ..store.tables import enrollment, lead, mql, sequence, sf_lead_sync, sf_outbox, sync_state
from ..store.tables import outbox as mail_outbox
from .api import SfApi
from .backoff import next_try, ready

#: Fields the push may set besides the mapped custom fields.
OPT_OUT = "HasOptedOutOfEmail"
BOUNCE_DATE = "EmailBouncedDate"
BOUNCE_REASON = "EmailBouncedReason"
STATUS = "Status"


@dataclass
class OrgFields:
    """What the org's describe says about Lead and Contact: which fields exist, and the Lead Status values."""

    fields: dict[str, set[str]] = field(default_factory=dict)
    lead_statuses: set[str] | None = None  # None = the describe listed none (then the map is trusted)
    missing: set[str] = field(default_factory=set)  # status_map values a lead needed that the org lacks

    def has(self, sobject: str, name: str) -> bool:
        known = self.fields.get(sobject)
        return known is None or name in known


def read_org(api: SfApi) -> OrgFields:
    """Two describe calls (Lead, Contact); the sync does them only when something is to be pushed."""
    out = OrgFields()
    for sobject in ("Lead", "Contact"):
        desc: dict[str, Any] = api.call(partial(_describe, api, sobject))
        out.fields[sobject] = {f["name"] for f in desc.get("fields") or []}
        if sobject == "Lead":
            status = next((f for f in desc.get("fields") or [] if f["name"] == STATUS), None)
            values = {p["value"] for p in (status or {}).get("picklistValues") or [] if p.get("active", True)}
            out.lead_statuses = values or None
    return out


#: The org's describe is read at most this often (fields and Lead Status values change in Setup, rarely).
DESCRIBE_TTL_SECONDS = 3600.0
DESCRIBE_KEY = "_describe"


def org_fields(engine: Any, api: SfApi) -> OrgFields:
    """The Lead/Contact describe, from the `sync_state` cache when younger than DESCRIBE_TTL_SECONDS (so a push
    every few seconds does not spend two calls on it each time), else read and cached."""
    from ..store.engine import write_tx

    with engine.connect() as conn:
        cached = conn.execute(select(sync_state.c.detail).where(sync_state.c.sobject == DESCRIBE_KEY)).scalar()
    if cached and time.time() - float(cached.get("at") or 0) < DESCRIBE_TTL_SECONDS:  # clock-ok: a cache's age
        statuses = cached.get("lead_statuses")
        return OrgFields({k: set(v) for k, v in cached["fields"].items()},
                         set(statuses) if statuses is not None else None)
    org = read_org(api)
    read_at = time.time()  # clock-ok: a cache's age
    detail = {"at": read_at, "fields": {k: sorted(v) for k, v in org.fields.items()},
              "lead_statuses": sorted(org.lead_statuses) if org.lead_statuses is not None else None}
    with write_tx(engine) as conn:
        if not conn.execute(update(sync_state).where(sync_state.c.sobject == DESCRIBE_KEY)
                            .values(detail=detail)).rowcount:
            conn.execute(insert(sync_state).values(sobject=DESCRIBE_KEY, status="idle", detail=detail))
    return org


def _describe(api: SfApi, sobject: str) -> dict[str, Any]:
    out: dict[str, Any] = getattr(api.sf, sobject).describe()
    return out


def sf_datetime(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000") if at is not None else None


def lifecycle(conn: Connection, lead_ids: list[int], settings: Settings) -> dict[int, str]:
    """The MQL lifecycle name of each lead's latest MQL entry (none = never qualified)."""
    s = settings.scoring
    names = {"new": s.mql_lead_status, "snoozed": s.mql_lead_status, "accepted": s.accepted_lead_status,
             "rejected": s.recycled_lead_status, "recycled": s.recycled_lead_status}
    out: dict[int, str] = {}
    for chunk in chunks(lead_ids):
        latest = (select(mql.c.lead_id, func.max(mql.c.id).label("id")).where(mql.c.lead_id.in_(chunk))
                  .group_by(mql.c.lead_id).subquery())
        for lead_id, status in conn.execute(select(mql.c.lead_id, mql.c.status).join(latest, mql.c.id == latest.c.id)):
            out[int(lead_id)] = names.get(status, status)
    return out


def sequence_status(conn: Connection, lead_ids: list[int]) -> dict[int, str]:
    """`<sequence>: <status>` of each lead's latest enrollment (active and waiting are both "in progress": the
    change capture does not follow the engine's moves between them)."""
    out: dict[int, str] = {}
    for chunk in chunks(lead_ids):
        latest = (select(enrollment.c.lead_id, func.max(enrollment.c.id).label("id"))
                  .where(enrollment.c.lead_id.in_(chunk)).group_by(enrollment.c.lead_id).subquery())
        q = (select(enrollment.c.lead_id, enrollment.c.status, sequence.c.name)
             .join(latest, enrollment.c.id == latest.c.id).join(sequence, sequence.c.id == enrollment.c.sequence_id))
        for lead_id, status, name in conn.execute(q):
            shown = "in progress" if status in ("active", "waiting") else status
            out[int(lead_id)] = f"{name}: {shown}"[:255]
    return out


def bounces(conn: Connection, lead_ids: list[int]) -> dict[int, tuple[datetime | None, str]]:
    """The latest hard bounce of each lead: (when, the receiving server's answer) — from the lead's own bounce
    columns where the store has them (bounce processing), else from its latest bounced message."""
    out: dict[int, tuple[datetime | None, str]] = {}
    if "bounced_at" in lead.c and "bounce_reason" in lead.c:
        for chunk in chunks(lead_ids):
            for lid, at, reason in conn.execute(select(lead.c.id, lead.c.bounced_at, lead.c.bounce_reason)
                                                .where(lead.c.id.in_(chunk), lead.c.bounced_at.is_not(None))):
                out[int(lid)] = (at, (reason or "bounced")[:255])
    o = mail_outbox.c
    for chunk in chunks([i for i in lead_ids if i not in out]):
        for row in conn.execute(select(o.lead_id, o.sent_at, o.created_at, o.last_error)
                                .where(o.lead_id.in_(chunk), o.status == "bounced").order_by(o.id)):
            out[int(row.lead_id)] = (row.sent_at or row.created_at, (row.last_error or "bounced")[:255])
    return out


@dataclass
class Dirty:
    """One dirty lead: its sync row and the Salesforce values it should have now."""

    lead_id: int
    sf_id: str | None
    sf_type: str | None
    seq: int
    pushed: dict[str, Any]
    values: dict[str, Any]

    @property
    def changes(self) -> dict[str, Any]:
        """Only what differs from what Salesforce last accepted (a new None clears a field set before)."""
        return {k: v for k, v in self.values.items() if self.pushed.get(k) != v and (v is not None or k in self.pushed)}


def values_for(conn: Connection, rows: list[Any], settings: Settings, now: datetime,
               org: OrgFields | None) -> dict[int, dict[str, Any]]:
    """Salesforce field → value for each lead row (needs id, sf_type, score, grade, stage, last_activity_at,
    opted_out, bounced)."""
    cfg = settings.salesforce
    fmap = cfg.field_map
    ids = [int(r.id) for r in rows]
    cycle = lifecycle(conn, ids, settings)
    seqs = sequence_status(conn, ids) if fmap.get("sequence_status") else {}
    bounced = bounces(conn, [int(r.id) for r in rows if r.bounced])
    factor = read_scale(conn, settings.scoring.half_life_days).factor(now)  # (never writes)
    # the mapped fields each object has (checked once, not per lead)
    names = {so: {key: name for key, name in fmap.items() if name and (org is None or org.has(so, name))}
             for so in ("Lead", "Contact")}
    extras = {so: (org is None or org.has(so, OPT_OUT), org is None or org.has(so, BOUNCE_DATE))
              for so in ("Lead", "Contact")}
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        lead_id = int(r.id)
        sobject = r.sf_type or "Lead"
        field = names.get(sobject) or names["Lead"]
        stage_of = cycle.get(lead_id)
        candidates = {"score": round(float(r.score or 0.0) * factor), "grade": r.grade, "stage": r.stage,
                      "mql_status": stage_of, "last_engagement": sf_datetime(r.last_activity_at),
                      "sequence_status": seqs.get(lead_id)}
        vals = {field[k]: v for k, v in candidates.items() if k in field}
        status = cfg.status_map.get(stage_of or "")
        if sobject == "Lead" and status:
            if org is None or org.lead_statuses is None or status in org.lead_statuses:
                vals[STATUS] = status
            else:
                org.missing.add(stage_of or "")
        can_opt_out, can_bounce = extras.get(sobject) or extras["Lead"]
        if r.opted_out and can_opt_out:
            vals[OPT_OUT] = True
        if r.bounced and lead_id in bounced and can_bounce:
            at, reason = bounced[lead_id]
            vals[BOUNCE_DATE] = sf_datetime(at or now)
            vals[BOUNCE_REASON] = reason
        out[lead_id] = vals
    return out


def unmapped_statuses(settings: Settings, org: OrgFields) -> list[str]:
    """One line per `salesforce.status_map` entry a lead needed whose value the org's Lead Status picklist
    lacks (those leads get the custom MQL status field, not `Status`)."""
    if org.lead_statuses is None:
        return []
    values = ", ".join(sorted(org.lead_statuses))
    return [f"salesforce.status_map.{k}: {settings.salesforce.status_map.get(k)!r} is not a Lead Status in this "
            f"org (values: {values})" for k in sorted(org.missing)]


_LEAD_COLS = (lead.c.id, lead.c.sf_id, lead.c.sf_type, lead.c.score, lead.c.grade, lead.c.stage,
              lead.c.last_activity_at, lead.c.opted_out, lead.c.bounced)


def load_dirty(conn: Connection, settings: Settings, now: datetime, org: OrgFields | None,
               lead_ids: Iterable[int] | None = None) -> list[Dirty]:
    """Dirty leads that have a Salesforce record (creates are salesforce/create.py's), with their values."""
    s = sf_lead_sync.c
    wall = time.time()  # clock-ok: retry_at is stamped on the triggers' (wall) clock
    q = (select(s.seq, s.pushed, *_LEAD_COLS)
         .join(lead, lead.c.id == s.lead_id)
         .where(s.dirty_since.is_not(None), lead.c.sf_id.is_not(None), not_backing_off(wall),
                lead.c.status.is_distinct_from("Merged"), lead.c.status.is_distinct_from("Deleted"))
         .order_by(s.dirty_since, s.lead_id))
    if lead_ids is not None:
        q = q.where(s.lead_id.in_(list(lead_ids)))  # (small sets only: tests, merges)
    rows = list(conn.execute(q))
    values = values_for(conn, rows, settings, now, org)
    return [Dirty(int(r.id), r.sf_id, r.sf_type, int(r.seq), dict(r.pushed or {}), values[int(r.id)]) for r in rows]


def not_backing_off(wall: float) -> Any:
    """Rows not waiting out a retry backoff (a transient per-record failure) at unix time `wall`."""
    return ready(sf_lead_sync.c.retry_at, wall)


def settle_ok(conn: Connection, done: list[tuple[int, int, dict[str, Any]]], now: datetime,
              read_at: float | None = None) -> None:
    """Leads whose values Salesforce accepted: `done` = (lead id, `seq` read, what Salesforce has now). One
    batched UPDATE: the lead is clean unless it changed again after it was read at `read_at` (`seq` moved on:
    then it stays dirty, its oldest unpushed change taken as no older than the read)."""
    if not done:
        return
    s = sf_lead_sync.c
    read = bindparam("b_read", type_=Float())
    stmt = (update(sf_lead_sync).where(s.lead_id == bindparam("b_lead"))
            .values(pushed=bindparam("b_pushed", type_=sf_lead_sync.c.pushed.type), pushed_at=now, error=None,
                    error_seq=None, attempts=0, retry_at=None,
                    dirty_since=case((s.seq == bindparam("b_seq"), None),
                                     (func.coalesce(s.dirty_since, 0.0) > read, s.dirty_since), else_=read)))
    conn.execute(stmt, [{"b_lead": lead_id, "b_seq": seq, "b_pushed": snapshot, "b_read": read_at or 0.0}
                        for lead_id, seq, snapshot in done])


def settle_created(conn: Connection, done: list[tuple[int, int, dict[str, Any]]], now: datetime,
                   read_at: float | None = None) -> None:
    """`settle_ok` for leads just created in Salesforce, most of which have no `sf_lead_sync` row yet: those
    are inserted settled (one batched INSERT instead of an insert and an update), the others settled."""
    if not done:
        return
    s = sf_lead_sync.c
    have: set[int] = set()
    for chunk in chunks(sorted({d[0] for d in done})):
        have |= {int(r[0]) for r in conn.execute(select(s.lead_id).where(s.lead_id.in_(chunk)))}
    new = [{"lead_id": lead_id, "seq": 0, "dirty_since": None, "pushed": snapshot, "pushed_at": now, "attempts": 0}
           for lead_id, _seq, snapshot in done if lead_id not in have]
    if new:
        conn.execute(insert(sf_lead_sync), new)
    settle_ok(conn, [d for d in done if d[0] in have], now, read_at)


def settle_error(conn: Connection, lead_id: int, seq: int, code: str, message: str, *, final: bool,
                 cfg: SalesforceSettings | None = None) -> bool:
    """A rejected lead keeps its error; a final one stops being retried until the lead changes again (the
    trigger marks it dirty) or `nurture sync --retry-errors`. A transient one (with `cfg`) is retried after a
    backoff (`retry_backoff_seconds` doubling, at most `retry_backoff_max_seconds`) — not at every push —
    and after `max_attempts` failures in a row it is given up like a final one. Returns whether the lead
    was given up (no more automatic retries)."""
    s = sf_lead_sync.c
    values: dict[str, Any] = {"error": f"{code}: {message}"[:2000], "error_seq": seq}
    wall = time.time()  # clock-ok: compared with the triggers' (wall) clock
    if not final and cfg is not None:
        attempts = int(conn.execute(select(s.attempts).where(s.lead_id == lead_id)).scalar() or 0) + 1
        retry_at = next_try(cfg, attempts, wall)
        if retry_at is None:
            final = True
        else:
            values.update(attempts=attempts, retry_at=retry_at)
    if not final:  # stays to push (a create that was never dirty, too)
        values["dirty_since"] = func.coalesce(s.dirty_since, wall)
    if final:
        values.update(dirty_since=None, attempts=0, retry_at=None)
    conn.execute(update(sf_lead_sync).where(s.lead_id == lead_id, s.seq == seq).values(**values))
    return final


def mark_dirty(conn: Connection, lead_ids: Iterable[int], at: float) -> None:
    """Mark leads dirty by hand (after a merge, `--retry-errors`): same effect as the trigger."""
    s = sf_lead_sync.c
    for chunk in chunks(sorted(set(lead_ids))):
        have = {r[0] for r in conn.execute(select(s.lead_id).where(s.lead_id.in_(chunk)))}
        if have:
            conn.execute(update(sf_lead_sync).where(s.lead_id.in_(have))
                         .values(seq=s.seq + 1, dirty_since=func.coalesce(s.dirty_since, at)))
        missing = [i for i in chunk if i not in have]
        if missing:
            conn.execute(insert(sf_lead_sync), [{"lead_id": i, "seq": 1, "dirty_since": at, "pushed": {}}
                                                for i in missing])


def push_margin(interval: float, last_push_s: float = 0.0) -> float:
    """How long before the oldest unpushed change reaches the push interval the push starts (the push itself
    takes time): a quarter of the interval (at most 10 s), or 1.5 × the last push's duration when that is more
    — never more than half the interval."""
    return min(interval / 2, max(min(interval / 4, 10.0), 1.5 * last_push_s))


def push_due(conn: Connection, interval: float, now_epoch: float, last_push_s: float = 0.0) -> bool:
    """A push is due when the oldest unpushed change (trigger time, unix seconds) is about to be `interval` old,
    or a lead or an outbox row waiting out a retry backoff has reached its `retry_at` (one in backoff makes no
    push due)."""
    s = sf_lead_sync.c
    oldest, retry = conn.execute(select(
        func.min(case((s.retry_at.is_(None), s.dirty_since))),
        func.min(case((s.retry_at.is_not(None), s.retry_at)))).where(s.dirty_since.is_not(None))).one()
    if oldest is not None and now_epoch >= float(oldest) + interval - push_margin(interval, last_push_s):
        return True
    o = sf_outbox.c  # the earliest pending row in backoff (by the retry_at index: few rows have one)
    outbox_retry = next((r for r, status in conn.execute(select(o.retry_at, o.status).where(o.retry_at.is_not(None))
                                                          .order_by(o.retry_at)) if status == "pending"), None)
    return any(r is not None and now_epoch >= float(r) for r in (retry, outbox_retry))


def ensure_rows(conn: Connection, lead_ids: list[int]) -> None:
    """A clean `sf_lead_sync` row for each lead that has none yet (a lead created before any change)."""
    s = sf_lead_sync.c
    for chunk in chunks(sorted(set(lead_ids))):
        have = {r[0] for r in conn.execute(select(s.lead_id).where(s.lead_id.in_(chunk)))}
        missing = [i for i in chunk if i not in have]
        if missing:
            conn.execute(insert(sf_lead_sync), [{"lead_id": i, "seq": 0, "dirty_since": None, "pushed": {}}
                                                for i in missing])


def values_keys(settings: Settings) -> set[str]:
    """Every Salesforce field the continuous push manages."""
    return {*settings.salesforce.field_map.values(), STATUS, OPT_OUT, BOUNCE_DATE, BOUNCE_REASON}


def pending_status_echo(conn: Connection, lead_ids: list[int]) -> dict[int, tuple[bool, Any]]:
    """For the pull: lead id → (has unpushed local changes, the Status nurture last pushed)."""
    s = sf_lead_sync.c
    out: dict[int, tuple[bool, Any]] = {}
    for chunk in chunks(lead_ids):
        for lead_id, dirty, pushed in conn.execute(select(s.lead_id, s.dirty_since, s.pushed)
                                                   .where(s.lead_id.in_(chunk))):
            out[int(lead_id)] = (dirty is not None, (pushed or {}).get(STATUS))
    return out


