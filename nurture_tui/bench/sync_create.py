"""`nurture bench sync`'s `create` scenario: a backlog of local leads Salesforce does not know (a CSV import)
created in the emulated org by one sync, through the real create path (salesforce/create.py) — above
`bulk_threshold` the email look-up as Bulk 2.0 query jobs and the inserts as Bulk 2.0 ingest jobs — over
HTTPS with unchanged simple-salesforce.

Seeded: `records` new local leads (emails the org does not have) plus `linked` local copies of leads the org
already has (their Salesforce id cleared, as if imported before the first sync), so the look-up finds and
links them instead of inserting. Measured: wall time, created / linked rows per second, every API call the
sync made (emulator stats) per 200 leads handled, and that every lead has exactly one record in the org.

Target (issue 19): ≤ 1 API call per 200 records.
"""

from __future__ import annotations

import time
from typing import Any

NEW_DOMAIN = "create-bench.example"


def run(ws: Any, emu: Any, session: Any, *, records: int, linked: int) -> dict[str, Any]:
    from sqlalchemy import delete, func, insert, select, update

    from ..salesforce.sync import run_sync
    from ..store.engine import write_tx
    from ..store.tables import lead, sf_lead_sync

    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        known = [r.id for r in conn.execute(select(lead.c.id).where(lead.c.sf_type == "Lead", lead.c.sf_id.is_not(None))
                                            .order_by(lead.c.id).limit(linked))]
        conn.execute(update(lead).where(lead.c.id.in_(known)).values(sf_id=None, sf_type=None))
        # as if imported before the first sync: no push history (an earlier scenario may have pushed them)
        conn.execute(delete(sf_lead_sync).where(sf_lead_sync.c.lead_id.in_(known)))
        rows = [{"email": f"new{i:06d}@{NEW_DOMAIN}", "first_name": "New", "last_name": f"Lead {i}",
                 "company": f"Company {i % 997}", "title": "Buyer", "created_at": now, "updated_at": now}
                for i in range(records)]
        for at in range(0, len(rows), 5000):
            conn.execute(insert(lead), rows[at:at + 5000])
    emu.admin("reset-stats")
    start, cpu = time.perf_counter(), time.process_time()
    report = run_sync(ws, pull=False, push=True)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    if report.error or report.pushed is None:
        raise SystemExit(f"create failed: {report.error}")
    calls = int(emu.admin("stats")["api_calls"])
    pushed = report.pushed
    handled = pushed.created + pushed.linked
    with ws.engine.connect() as conn:
        missing = int(conn.execute(select(func.count()).select_from(lead).where(lead.c.sf_id.is_(None))).scalar() or 0)
    soql = f"SELECT COUNT() FROM Lead WHERE Email LIKE '%@{NEW_DOMAIN}'"
    in_org = int(session.get(f"{emu.url}/services/data/v59.0/query", params={"q": soql},
                             headers={"Authorization": f"Bearer {emu.token()}"}).json()["totalSize"])
    return {
        "records": records, "linked_expected": len(known), "created": pushed.created, "linked": pushed.linked,
        "failed": pushed.create_failed, "local_leads_without_sf_id": missing,
        "new_leads_in_org": in_org, "exactly_once": in_org == records and missing == 0,
        "create_seconds": round(seconds, 3), "create_client_cpu_seconds": round(cpu_s, 3),
        "create_rows_per_s": round(handled / seconds) if seconds else None,
        "create_api_calls": calls, "create_calls_by_create_path": pushed.create_calls,
        "create_bulk_jobs": pushed.create_bulk_jobs,
        "create_api_calls_per_200": round(calls / max(1.0, handled / 200), 4),
        "target_api_calls_per_200": 1,
    }
