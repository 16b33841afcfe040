"""Lead progression: how many leads moved from one milestone to the next in the period, out of how many
could have, and how long it took, per sequence (with `--segment`, within that segment).

Milestones, in order: awareness (the lead was created), consideration and decision (the first
`stage_change` activity to that stage), MQL (first MQL), SQL (first MQL accepted by a rep), opportunity (the
lead's first opportunity). A milestone counts as reached when it or any later one is (a lead that jumps from
awareness straight to an MQL has passed consideration and decision at that moment, with 0 days each), so
the funnel never runs backwards.

For a transition X → Y and a group of leads:
- moved: leads that reached Y in the period;
- eligible: leads that had reached X before the end of the period and had not reached Y before it began;
- rate = moved / eligible; median_days: median of (reached Y − reached X) over the movers.
Groups: every sequence (its enrolled leads, entered before the end of the period; a lead enrolled in two
sequences counts in both), "(not nurtured)" (never enrolled), and "(all leads)".
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, distinct, func, select, union

from ..store.models.people import STAGES
from ..store.tables import activity, enrollment, lead, mql, opportunity, sequence
from .common import Report, Scope, days, make_report, quantile, r1, rate, segment_leads

NAME = "progression"
TITLE = "Lead progression by sequence"
MILESTONES = ("awareness", "consideration", "decision", "mql", "sql", "opportunity")
STAGE_MILESTONES = ("consideration", "decision")
COLUMNS = ["sequence", "segment", "transition", "eligible", "moved", "rate", "median_days"]
ALL, NONE = "(all leads)", "(not nurtured)"

assert all(s in STAGES for s in STAGE_MILESTONES)


def _reached(conn: Connection, scope: Scope, seg: Any) -> dict[int, dict[str, datetime]]:
    """Per lead with any milestone past awareness: when it reached each (closed downwards)."""
    until = scope.period.until
    a, m, o, lc = activity.c, mql.c, opportunity.c, lead.c
    raw: dict[int, dict[str, datetime]] = defaultdict(dict)
    created: dict[int, datetime] = {}

    def rows(stmt: Any, lead_col: Any) -> Any:
        stmt = stmt.add_columns(func.min(lc.created_at)).join_from(stmt.get_final_froms()[0], lead, lc.id == lead_col)
        return conn.execute(stmt.where(lead_col.in_(seg)) if seg is not None else stmt)

    def keep(lid: int, name: str, at: datetime | None, born: datetime | None) -> None:
        if born is not None:
            created[lid] = born
        if at is not None and at < until and (name not in raw[lid] or at < raw[lid][name]):
            raw[lid][name] = at

    to = _json_text(conn, a.meta, "to")
    for lid, stage, at, born in rows(select(a.lead_id, to, func.min(a.at)).where(
            a.kind == "stage_change", a.at < until, to.in_(STAGE_MILESTONES)).group_by(a.lead_id, to), a.lead_id):
        keep(lid, stage, at, born)
    for lid, at, born in rows(select(m.lead_id, func.min(m.created_at)).group_by(m.lead_id), m.lead_id):
        keep(lid, "mql", at, born)
    for lid, at, born in rows(select(m.lead_id, func.min(m.decided_at)).where(m.status == "accepted")
                              .group_by(m.lead_id), m.lead_id):
        keep(lid, "sql", at, born)
    for lid, at, born in rows(select(o.lead_id, func.min(o.created_at)).where(o.lead_id.is_not(None))
                              .group_by(o.lead_id), o.lead_id):
        keep(lid, "opportunity", at, born)
    out: dict[int, dict[str, datetime]] = {}
    for lid, got in raw.items():
        born = created.get(lid)
        if not got or born is None:
            continue
        closed: dict[str, datetime] = {}
        later: datetime | None = None
        for name in reversed(MILESTONES[1:]):
            at = got.get(name)
            later = at if later is None or (at is not None and at < later) else later
            if later is not None:
                closed[name] = later
        closed["awareness"] = min(born, *closed.values())
        out[lid] = closed
    return out


def _json_text(conn: Connection, column: Any, key: str) -> Any:
    """`column ->> key` on either backend."""
    if conn.dialect.name == "postgresql":
        return column.op("->>")(key)
    return func.json_extract(column, f"$.{key}")


def _advanced_ids(until: datetime) -> Any:
    a, m, o = activity.c, mql.c, opportunity.c
    return union(select(a.lead_id).where(a.kind == "stage_change", a.at < until),
                 select(m.lead_id), select(o.lead_id).where(o.lead_id.is_not(None)))


def load(conn: Connection, scope: Scope) -> Report:
    p = scope.period
    seg = segment_leads(conn, scope)
    reached = _reached(conn, scope, seg)
    e, lc = enrollment.c, lead.c
    enrolled_where = [e.entered_at < p.until]  # (a lead enrolled before the end was created before it)
    if scope.sequence_id is not None:
        enrolled_where.append(e.sequence_id == scope.sequence_id)
    if seg is not None:
        enrolled_where.append(e.lead_id.in_(seg))
    names = dict(conn.execute(select(sequence.c.id, sequence.c.name)).all())
    # groups of the advanced leads
    groups: dict[int, set[str]] = defaultdict(set)
    if reached:
        for lid, sid in conn.execute(select(e.lead_id, e.sequence_id).distinct()
                                     .where(*enrolled_where, e.lead_id.in_(_advanced_ids(p.until)))):
            groups[lid].add(names.get(sid, str(sid)))
    # awareness counts per group (every lead created before the end)
    lead_where = [lc.created_at < p.until]
    if seg is not None:
        lead_where.append(lc.id.in_(seg))
    total = int(conn.execute(select(func.count()).select_from(lead).where(*lead_where)).scalar_one())
    if total == 0:
        return make_report(NAME, TITLE, scope, COLUMNS, [], empty="no leads existed before the end of the period")
    per_seq = {names.get(sid, str(sid)): int(n) for sid, n in conn.execute(
        select(e.sequence_id, func.count(distinct(e.lead_id))).where(*enrolled_where).group_by(e.sequence_id))}
    enrolled_leads = select(e.lead_id).where(*enrolled_where).group_by(e.lead_id).subquery()
    nurtured_any = int(conn.execute(select(func.count()).select_from(enrolled_leads)).scalar_one())
    aware = {ALL: total, NONE: total - nurtured_any, **per_seq}
    if scope.sequence_id is not None:
        aware = {k: v for k, v in aware.items() if k != NONE}

    def lead_groups(lid: int) -> list[str]:
        gs = groups.get(lid)
        if scope.sequence_id is not None:
            return [ALL, *gs] if gs else []
        return [ALL, *(gs or {NONE})]

    reached_before: dict[tuple[str, str], int] = defaultdict(int)  # (group, milestone) reached < until
    before_start: dict[tuple[str, str], int] = defaultdict(int)  # reached < since
    moved: dict[tuple[str, str], list[float]] = defaultdict(list)
    for lid, ms in reached.items():
        for g in lead_groups(lid):
            for i, name in enumerate(MILESTONES[1:], start=1):
                at = ms.get(name)
                if at is None:
                    continue
                reached_before[(g, name)] += 1
                if at < p.since:
                    before_start[(g, name)] += 1
                else:
                    moved[(g, name)].append(days(at - ms[MILESTONES[i - 1]]))
    rows: list[dict[str, Any]] = []
    seg_label = scope.segment_name or "(all)"
    order = [ALL, *sorted(k for k in aware if k not in (ALL, NONE)), NONE]
    for g in [k for k in order if k in aware]:
        for i in range(1, len(MILESTONES)):
            x, y = MILESTONES[i - 1], MILESTONES[i]
            had_x = aware[g] if x == "awareness" else reached_before[(g, x)]
            eligible = had_x - before_start[(g, y)]
            mv = moved[(g, y)]
            rows.append({"sequence": g, "segment": seg_label, "transition": f"{x} → {y}", "eligible": eligible,
                         "moved": len(mv), "rate": rate(len(mv), eligible),
                         "median_days": r1(quantile(mv, 0.5))})
    return make_report(NAME, TITLE, scope, COLUMNS, rows, notes=[
        "moved = reached the next milestone in the period; eligible = had reached the previous one before the "
        "end and not the next one before the start; rate = moved / eligible",
        "a skipped milestone counts as reached with the later one (0 days)",
    ])
