"""Deletes, merges and local lead folding for the pull.

A plain delete marks the local row (its pending pushes then fail visibly with ENTITY_IS_DELETED); a merge folds
the loser into the survivor — history, memberships, opportunities, enrollments (a second live enrollment in
the same sequence is exited, never doubled), MQL entries and pending pushes move, the higher score is kept
and the loser row is marked `Merged`; a conversion uses the same folding when the Contact was already
mirrored separately.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from ..batching import chunks
from ..store import audit
from ..store.tables import (
    account,
    activity,
    campaign_member,
    enrollment,
    lead,
    mql,
    opportunity,
    sf_lead_sync,
    sf_outbox,
)
from . import mapping as m
from .lookup import by_sf_id


def merge_local(conn: Connection, *, keep: int, gone: int, reason: str, now: datetime) -> None:
    """Fold local lead `gone` into `keep`: history, memberships, opportunities, enrollments, MQL entries and
    pending pushes move (a campaign membership the survivor already has stays with the loser)."""
    for table in (activity, opportunity):
        conn.execute(update(table).where(table.c.lead_id == gone).values(lead_id=keep))
    cm = campaign_member.c
    conn.execute(update(campaign_member).where(cm.lead_id == gone, cm.campaign_id.not_in(
        select(cm.campaign_id).where(cm.lead_id == keep).scalar_subquery())).values(lead_id=keep))
    conn.execute(update(sf_outbox).where(sf_outbox.c.lead_id == gone, sf_outbox.c.status == "pending")
                 .values(lead_id=keep))
    moved = _move_enrollments(conn, keep=keep, gone=gone, now=now)
    rows = {r.id: r for r in conn.execute(select(lead.c.id, lead.c.score, lead.c.custom, lead.c.sf_id, lead.c.mql_at,
                                                 lead.c.status)
                                          .where(lead.c.id.in_([keep, gone])))}
    conn.execute(update(mql).where(mql.c.lead_id == gone).values(lead_id=keep))
    if gone in rows and keep in rows:
        values: dict[str, Any] = {"score": max(rows[keep].score or 0.0, rows[gone].score or 0.0)}
        if rows[keep].mql_at is None and rows[gone].mql_at is not None:  # the loser's open MQL cycle carries on
            values.update(mql_at=rows[gone].mql_at, status=rows[gone].status)
        conn.execute(update(lead).where(lead.c.id == keep).values(**values))
        custom = dict(rows[gone].custom or {})
        custom.update(merged_into=keep, sf_merged_id=rows[gone].sf_id, merge_reason=reason)
        conn.execute(update(lead).where(lead.c.id == gone).values(sf_id=None, status="Merged", custom=custom,
                                                                   updated_at=now))
    conn.execute(delete(sf_lead_sync).where(sf_lead_sync.c.lead_id == gone))
    audit.record(conn, at=now, user="salesforce-sync", action="salesforce.merge", entity="lead",
                 entity_id=keep, before={"merged": gone}, after={"reason": reason, **moved})


LIVE = ("active", "waiting")


def _move_enrollments(conn: Connection, *, keep: int, gone: int, now: datetime) -> dict[str, int]:
    """The loser's enrollments move to the survivor; one in a sequence the survivor is already live in is
    exited (`merged`) first, so nobody is enrolled twice in the same sequence."""
    e = enrollment.c
    live_seqs = {r[0] for r in conn.execute(select(e.sequence_id).where(e.lead_id == keep, e.status.in_(LIVE)))}
    twins = [r[0] for r in conn.execute(select(e.id).where(e.lead_id == gone, e.status.in_(LIVE),
                                                           e.sequence_id.in_(live_seqs)))] if live_seqs else []
    if twins:
        conn.execute(update(enrollment).where(e.id.in_(twins)).values(
            status="exited", due_at=None, wait_for=None, exited_at=now, exit_reason=f"merged into lead {keep}"))
    n = conn.execute(update(enrollment).where(e.lead_id == gone).values(lead_id=keep)).rowcount
    return {"enrollments_moved": int(n or 0), "enrollments_exited": len(twins)}


def apply_deletes(conn: Connection, obj: str, rows: list[dict[str, Any]], now: datetime) -> tuple[int, int]:
    """Apply a page of deleted records; returns (deleted, merged)."""
    deleted = merged = 0
    if obj == "CampaignMember":
        ids = [r["Id"] for r in rows]
        for chunk in chunks(ids):
            deleted += conn.execute(delete(campaign_member).where(campaign_member.c.sf_id.in_(chunk))).rowcount
        return deleted, merged
    if obj == "Opportunity":
        ids = [r["Id"] for r in rows]
        for chunk in chunks(ids):
            deleted += conn.execute(delete(opportunity).where(opportunity.c.sf_id.in_(chunk))).rowcount
        return deleted, merged
    table = account if obj == "Account" else lead
    masters = [str(r.get("MasterRecordId")) for r in rows if r.get("MasterRecordId")]
    locals_ = by_sf_id(conn, table, [table.c.id, table.c.sf_id, table.c.custom],
                        [r["Id"] for r in rows] + masters)
    for r in rows:
        gone = locals_.get(r["Id"])
        if gone is None:
            continue
        master_id = m.text(r.get("MasterRecordId"))
        keep = locals_.get(master_id) if master_id else None
        if master_id and keep is None:
            # The survivor is not mirrored yet: the loser's row (and its nurture state) becomes it.
            custom = {**(gone.custom or {}), "sf_merged_from": r["Id"]}
            conn.execute(update(table).where(table.c.id == gone.id).values(sf_id=master_id, custom=custom,
                                                                          sf_modstamp=None))
            merged += 1
        elif keep is not None and keep.id != gone.id:
            if obj == "Account":
                for t in (lead, opportunity):
                    conn.execute(update(t).where(t.c.account_id == gone.id).values(account_id=keep.id))
                conn.execute(update(account).where(account.c.id == gone.id).values(
                    sf_id=None, custom={**(gone.custom or {}), "merged_into": keep.id}))
            else:
                merge_local(conn, keep=keep.id, gone=gone.id, reason=f"merged in Salesforce into {master_id}",
                            now=now)
            merged += 1
        else:
            custom = {**(gone.custom or {}), "sf_deleted": True,
                      "sf_deleted_at": r.get("SystemModstamp")}
            values: dict[str, Any] = {"custom": custom}
            if obj != "Account":
                values["status"] = "Deleted"
            conn.execute(update(table).where(table.c.id == gone.id).values(**values))
            deleted += 1
    return deleted, merged
