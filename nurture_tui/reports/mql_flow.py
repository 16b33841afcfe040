"""MQL flow: the MQLs created in the period and what became of them, in total, by rep and by lead source.

- created: MQL queue entries created in the period (a lead's later cycles count again);
- accepted / rejected / recycled: their status now (recycled = rejected and put back into nurture, so it
  is also counted in rejected); open: still new or snoozed; rejected_by_reason: the rep's reasons;
- median_hours_to_accept: from creation to acceptance, over the accepted entries;
- sla_breaches: entries decided after their SLA ran out, or still open past it now (SLA = the configured
  `scoring.mql_sla_hours` after creation, or after the end of a snooze — `scoring.mql.sla_due`).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..config import ScoringSettings
from ..scoring.mql import OPEN_STATUSES, sla_due
from ..store.tables import lead, mql, user
from .common import Report, Scope, make_report, quantile, r1, segment_leads

NAME = "mql"
TITLE = "MQL flow"
COLUMNS = ["by", "key", "created", "accepted", "rejected", "recycled", "open", "accept_rate",
           "median_hours_to_accept", "sla_breaches", "rejected_by_reason"]


def load(conn: Connection, scope: Scope, settings: ScoringSettings) -> Report:
    p = scope.period
    m, lc = mql.c, lead.c
    where = [m.created_at >= p.since, m.created_at < p.until]
    seg = segment_leads(conn, scope)
    if seg is not None:
        where.append(m.lead_id.in_(seg))
    stmt = (select(m.status, m.created_at, m.decided_at, m.snoozed_until, m.reject_reason, m.queue,
                   user.c.username.label("rep"), lc.lead_source)
            .select_from(mql.join(lead, lc.id == m.lead_id).outerjoin(user, user.c.id == m.rep_id))
            .where(*where))
    groups: dict[tuple[str, str], dict[str, Any]] = {}

    def group(by: str, key: str) -> dict[str, Any]:
        g = groups.get((by, key))
        if g is None:
            g = groups[(by, key)] = {"counts": Counter(), "hours": [], "reasons": Counter()}
        return g

    for r in conn.execute(stmt):
        breached = _breached(r.status, r.created_at, r.decided_at, r.snoozed_until, scope.now, settings)
        rep = r.rep or (f"queue {r.queue}" if r.queue else "(unassigned)")
        for g in (group("total", "all"), group("rep", rep), group("source", r.lead_source or "(none)")):
            c = g["counts"]
            c["created"] += 1
            c["accepted"] += r.status == "accepted"
            c["rejected"] += r.status in ("rejected", "recycled")
            c["recycled"] += r.status == "recycled"
            c["open"] += r.status in OPEN_STATUSES
            c["sla_breaches"] += breached
            if r.status == "accepted" and r.decided_at is not None:
                g["hours"].append((r.decided_at - r.created_at).total_seconds() / 3600.0)
            if r.status in ("rejected", "recycled"):
                g["reasons"][r.reject_reason or "(no reason)"] += 1
    order = {"total": 0, "rep": 1, "source": 2}
    rows = []
    for (by, key), g in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        c = g["counts"]
        decided = c["accepted"] + c["rejected"]
        rows.append({"by": by, "key": key, **{k: c[k] for k in ("created", "accepted", "rejected", "recycled",
                                                                "open")},
                     "accept_rate": round(100.0 * c["accepted"] / decided, 1) if decided else None,
                     "median_hours_to_accept": r1(quantile(g["hours"], 0.5)), "sla_breaches": c["sla_breaches"],
                     "rejected_by_reason": "; ".join(f"{k}: {n}" for k, n in g["reasons"].most_common())})
    return make_report(NAME, TITLE, scope, COLUMNS, rows, notes=[
        f"SLA: {settings.mql_sla_hours:g} h from creation (or from the end of a snooze); accept_rate = accepted / "
        "decided; recycled ⊂ rejected",
    ], empty="no MQLs were created in the period")


def _breached(status: str, created: datetime, decided: datetime | None, snoozed: datetime | None, now: datetime,
              settings: ScoringSettings) -> bool:
    due = sla_due(created, snoozed, settings)
    if status in OPEN_STATUSES:
        return now > due
    return decided is not None and decided > due
