"""Pending pushes to Salesforce (`sf_outbox`): the API other areas call.

Rows are written inside the caller's transaction, so an engine step, a score change or an MQL hand-off
and the push it causes commit (or roll back) together. Payloads keep *local* field keys; the push maps
them to Salesforce names from `settings.salesforce.field_map` at send time, so a mapping change applies to
everything still pending. The push coalesces pending field updates per lead (latest value wins).

Row kinds (`sobject`, `op`):
- ("Lead", "update"): nurture-owned field updates for a lead; the push resolves Lead vs Contact from the
  lead's current Salesforce identity (a lead converted in Salesforce is pushed to its Contact).
- ("Task", "upsert"): an activity Task for the lead's owner, idempotent on the external key.
- ("CampaignMember", "upsert"): add/update the lead on a campaign with a status.
- ("LeadErasure", "anonymise" / "delete"): the Salesforce side of an erasure (compliance/erasure.py): overwrite the
  person's fields on the lead's current record, or delete it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from ..errors import ValidationError
from ..store.tables import sf_outbox

#: Local field keys a field update may carry (mapped to Salesforce names via config; `owner` → OwnerId).
FIELD_KEYS = frozenset({"score", "grade", "stage", "mql_status", "last_engagement", "owner"})


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(where, "datetime must be timezone-aware")
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValidationError(where, f"unsupported value type {type(value).__name__}")


def enqueue_field_update(conn: Connection, lead_id: int, fields: dict[str, Any], now: datetime) -> int:
    """Queue nurture-owned field values for a lead. `owner` is a local user id (pushed as OwnerId)."""
    if not fields:
        raise ValidationError("fields", "nothing to update")
    unknown = sorted(set(fields) - FIELD_KEYS)
    if unknown:
        allowed = ", ".join(sorted(FIELD_KEYS))
        raise ValidationError(f"fields.{unknown[0]}", f"not a pushable field (allowed: {allowed})")
    payload = {k: _jsonable(v, f"fields.{k}") for k, v in fields.items()}
    return _insert(conn, sobject="Lead", op="update", lead_id=lead_id, payload=payload, now=now)


def enqueue_task(conn: Connection, lead_id: int, subject: str, body: str, owner_id: int | None,
                 now: datetime) -> int:
    """Queue a Task on the lead (WhoId) for `owner_id` (a local user id; None = the lead's owner)."""
    if not subject.strip():
        raise ValidationError("subject", "a Task needs a subject")
    payload = {"Subject": subject[:255], "Description": body, "owner": owner_id, "ActivityDate": now.date().isoformat()}
    return _insert(conn, sobject="Task", op="upsert", lead_id=lead_id, payload=payload, now=now)


def enqueue_campaign_member(conn: Connection, lead_id: int, campaign: str | int, status: str,
                            now: datetime) -> int:
    """Queue adding the lead to a Salesforce campaign (local id, Salesforce id or name) with `status`."""
    if not str(campaign).strip():
        raise ValidationError("campaign", "a campaign is required")
    if not status.strip():
        raise ValidationError("status", "a campaign member status is required")
    payload = {"campaign": campaign, "Status": status}
    return _insert(conn, sobject="CampaignMember", op="upsert", lead_id=lead_id, payload=payload, now=now)


ERASURE_OPS = ("anonymise", "delete")
#: What an anonymised Salesforce record keeps of the person: nothing (required fields get a placeholder).
ANONYMISED: dict[str, dict[str, Any]] = {
    "Lead": {"FirstName": None, "LastName": "Erased", "Email": None, "Phone": None, "Title": None,
             "Company": "Erased", "City": None, "State": None, "HasOptedOutOfEmail": True},
    "Contact": {"FirstName": None, "LastName": "Erased", "Email": None, "Phone": None, "Title": None,
                "HasOptedOutOfEmail": True},
}


def enqueue_erasure(conn: Connection, lead_id: int, action: str, now: datetime) -> int:
    """Queue anonymising or deleting the lead's Salesforce record (after `nurture leads erase`)."""
    if action not in ERASURE_OPS:
        raise ValidationError("action", f"expected one of {', '.join(ERASURE_OPS)}, got {action!r}")
    return _insert(conn, sobject="LeadErasure", op=action, lead_id=lead_id, payload={"action": action}, now=now)


def _insert(conn: Connection, *, sobject: str, op: str, lead_id: int, payload: dict[str, Any],
            now: datetime) -> int:
    result = conn.execute(
        insert(sf_outbox).values(sobject=sobject, op=op, lead_id=lead_id, payload=payload, status="pending",
                                 attempts=0, created_at=now)
    )
    pk = result.inserted_primary_key
    return int(pk[0]) if pk else 0
