"""Salesforce sync bookkeeping and audit entries for the Sync & audit tests: three objects, pushes sent,
pending and failed, open errors of each kind (a push with its outbox row, a pull of one record, a whole
job), the API usage the last sync saw, and audit entries by three users on three entities over two days."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from nurture_tui.salesforce.sync import LOCK_KEY
from nurture_tui.store import tables as t
from nurture_tui.workspace import Workspace

PUSH_ERROR_ID, PULL_ERROR_ID, JOB_ERROR_ID = 1, 2, 3
FAILED_OUTBOX_ID = 3


def seed_sync(ws: Workspace, now: datetime) -> dict[str, Any]:
    with ws.engine.begin() as conn:
        conn.execute(insert(t.sync_state), [
            {"sobject": s, "watermark": now - timedelta(minutes=m), "last_run_at": now - timedelta(minutes=2),
             "status": "idle", "detail": {}} for s, m in (("Contact", 7), ("Task", 30))
        ] + [{"sobject": LOCK_KEY, "watermark": None, "status": "idle", "last_run_at": now - timedelta(minutes=2),
              "detail": {"api_used": 4210, "api_max": 15000, "api_allowed": 12000,
                         "at": (now - timedelta(minutes=2)).isoformat()}}])
        outbox = (  # id, object, op, lead, record, status, attempts, last error, created (min ago), sent
            (1, "Lead", "update", 3, "00Q000000000000003", "sent", 1, None, 60, 3),
            (2, "Lead", "update", 6, "00Q000000000000006", "pending", 0, None, 1, None),
            (FAILED_OUTBOX_ID, "Task", "create", 9, None, "error", 5,
             "FIELD_CUSTOM_VALIDATION_EXCEPTION: Subject too long", 180, None),
        )
        conn.execute(insert(t.sf_outbox), [
            {"id": i, "sobject": obj, "op": op, "lead_id": lead, "record_id": rec, "payload": {}, "status": st,
             "attempts": n, "last_error": err, "created_at": now - timedelta(minutes=made),
             "sent_at": None if sent is None else now - timedelta(minutes=sent)}
            for i, obj, op, lead, rec, st, n, err, made, sent in outbox])
        conn.execute(insert(t.sync_error), [
            {"id": PUSH_ERROR_ID, "sobject": "Task", "direction": "push", "record_id": None,
             "sf_outbox_id": FAILED_OUTBOX_ID, "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
             "message": "Subject: value too long for the org's validation rule", "payload": {}, "attempts": 5,
             "created_at": now - timedelta(hours=2)},
            {"id": PULL_ERROR_ID, "sobject": "Contact", "direction": "pull", "record_id": "003000000000000042",
             "sf_outbox_id": None, "code": "UNKNOWN_OWNER", "message": "OwnerId 005xx is not a nurture user",
             "payload": {}, "attempts": 1, "created_at": now - timedelta(hours=1)},
            {"id": JOB_ERROR_ID, "sobject": "*", "direction": "push", "record_id": None, "sf_outbox_id": None,
             "code": "SYNC_FAILED", "message": "ConnectionError: the org did not answer", "payload": {},
             "attempts": 1, "created_at": now - timedelta(minutes=30)},
        ])
        conn.execute(insert(t.audit), [
            {"at": now - timedelta(days=d, minutes=m), "user": user, "action": action, "entity": entity,
             "entity_id": eid, "before": None, "after": None}
            for d, m, user, action, entity, eid in (
                (1, 10, "olaf", "sequence.publish", "sequence", "welcome"),
                (1, 5, "rita", "mql.accept", "mql", "1"),
                (0, 50, "olaf", "segment.save", "segment", "Decision makers"),
                (0, 40, "rita", "mql.reject", "mql", "2"),
            )])
    return {"push_error": PUSH_ERROR_ID, "pull_error": PULL_ERROR_ID, "job_error": JOB_ERROR_ID}
