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
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, distinct, func, select, type_coerce, union
from sqlalchemy.types import NullType

from ..store.models.people import STAGES
from ..store.tables import activity, enrollment, lead, lead_cohort, lead_milestone, mql, opportunity, sequence
from ..store.types import UTCDateTime
from .common import Report, Scope, days, make_report, quantile, r1, rate, segment_leads

NAME = "progression"
TITLE = "Lead progression by sequence"
MILESTONES = ("awareness", "consideration", "decision", "mql", "sql", "opportunity")
STAGE_MILESTONES = ("consideration", "decision")
COLUMNS = ["sequence", "segment", "transition", "eligible", "moved", "rate", "median_days"]
ALL, NONE = "(all leads)", "(not nurtured)"

assert all(s in STAGES for s in STAGE_MILESTONES)

Raw = dict[int, dict[str, datetime]]


def _scan_reached(conn: Connection, scope: Scope, seg: Any) -> tuple[Raw, dict[int, datetime]]:
    """Per lead: the earliest time of each milestone past awareness before the end of the period, and when the
    lead was created — from the log itself (used with a segment, and to check the rollup)."""
    until = scope.period.until
    a, m, o, lc = activity.c, mql.c, opportunity.c, lead.c
    raw: Raw = defaultdict(dict)
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
    return raw, created


def _rollup_reached(conn: Connection, scope: Scope) -> dict[int, dict[str, datetime]]:
    """The same, already closed, from the `lead_milestone` rollup (kept exact by triggers: store/rollups.py):
    its times do not depend on the period, so only the ones before its end are kept. (The times are read
    untyped and converted by the column type's own `process_result_value`, which parses SQLite's text with
    `fromisoformat`: several times faster than DateTime's generic parser first, at ~300k values.)"""
    until, dialect = scope.period.until, conn.dialect
    to_utc = UTCDateTime().process_result_value
    ms = lead_milestone.c
    cols = [ms.awareness_at, ms.consideration_at, ms.decision_at, ms.mql_at, ms.sql_at, ms.opportunity_at]
    out: dict[int, dict[str, datetime]] = {}
    seen: dict[Any, datetime] = {}  # a lead's closed times often repeat (an opportunity closes every stage)
    for lid, *times in conn.execute(select(ms.lead_id, *(type_coerce(c, NullType()) for c in cols)).where(
            ms.consideration_at < until, ms.awareness_at.is_not(None))).all():
        got = out[lid] = {}
        for name, raw in zip(MILESTONES, times, strict=True):
            if raw is None:
                break  # (closed downwards: no later one either)
            at = seen.get(raw) or seen.setdefault(raw, cast(datetime, to_utc(raw, dialect)))
            if at >= until:
                break
            got[name] = at
    return out


def _close(raw: Raw, created: dict[int, datetime]) -> dict[int, dict[str, datetime]]:
    """Close the milestones downwards: one reached at t means every earlier one was reached by t."""
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


def reached(conn: Connection, scope: Scope, seg: Any, *, from_rollup: bool) -> dict[int, dict[str, datetime]]:
    """Per lead with any milestone past awareness before the end of the period: when it reached each."""
    return _rollup_reached(conn, scope) if from_rollup else _close(*_scan_reached(conn, scope, seg))


def _json_text(conn: Connection, column: Any, key: str) -> Any:
    """`column ->> key` on either backend."""
    if conn.dialect.name == "postgresql":
        return column.op("->>")(key)
    return func.json_extract(column, f"$.{key}")


def _advanced_ids(until: datetime) -> Any:
    a, m, o = activity.c, mql.c, opportunity.c
    return union(select(a.lead_id).where(a.kind == "stage_change", a.at < until),
                 select(m.lead_id), select(o.lead_id).where(o.lead_id.is_not(None)))


def uses_rollups(scope: Scope, seg: Any) -> bool:
    """The rollups answer for every lead and whole UTC days (a segment's leads come from the log)."""
    until = scope.period.until.astimezone(UTC)
    return seg is None and until == until.replace(hour=0, minute=0, second=0, microsecond=0)


def _enrolled_where(scope: Scope, seg: Any) -> list[Any]:
    e = enrollment.c
    where = [e.entered_at < scope.period.until]  # (a lead enrolled before the end was created before it)
    if scope.sequence_id is not None:
        where.append(e.sequence_id == scope.sequence_id)
    if seg is not None:
        where.append(e.lead_id.in_(seg))
    return where


def awareness(conn: Connection, scope: Scope, seg: Any, *, from_rollup: bool) -> tuple[int, dict[int, int], int]:
    """Leads created before the end of the period; per sequence id, its leads enrolled before the end; the
    leads enrolled in any sequence (in the `--sequence` one) before the end."""
    until = scope.period.until
    if from_rollup:
        c = lead_cohort.c
        sums = {int(sid): int(n) for sid, n in conn.execute(
            select(c.sequence_id, func.sum(c.n)).where(c.day < f"{until.astimezone(UTC):%Y-%m-%d}")
            .group_by(c.sequence_id))}
        per_seq = {sid: n for sid, n in sums.items() if sid > 0 and n > 0 and scope.sequence_id in (None, sid)}
        nurtured = sums.get(-1, 0) if scope.sequence_id is None else per_seq.get(scope.sequence_id, 0)
        return sums.get(0, 0), per_seq, nurtured
    e, lc = enrollment.c, lead.c
    lead_where = [lc.created_at < until]
    if seg is not None:
        lead_where.append(lc.id.in_(seg))
    total = int(conn.execute(select(func.count()).select_from(lead).where(*lead_where)).scalar_one())
    enrolled_where = _enrolled_where(scope, seg)
    per_seq = {int(sid): int(n) for sid, n in conn.execute(
        select(e.sequence_id, func.count(distinct(e.lead_id))).where(*enrolled_where).group_by(e.sequence_id))}
    enrolled_leads = select(e.lead_id).where(*enrolled_where).group_by(e.lead_id).subquery()
    return total, per_seq, int(conn.execute(select(func.count()).select_from(enrolled_leads)).scalar_one())


def load(conn: Connection, scope: Scope) -> Report:
    p = scope.period
    seg = segment_leads(conn, scope)
    from_rollup = uses_rollups(scope, seg)
    got = reached(conn, scope, seg, from_rollup=from_rollup)
    e = enrollment.c
    names = dict(conn.execute(select(sequence.c.id, sequence.c.name)).all())
    # groups of the advanced leads
    groups: dict[int, set[str]] = defaultdict(set)
    if got:
        advanced: Any = select(lead_milestone.c.lead_id) if from_rollup else _advanced_ids(p.until)
        for lid, sid in conn.execute(select(e.lead_id, e.sequence_id).distinct()
                                     .where(*_enrolled_where(scope, seg), e.lead_id.in_(advanced))).all():
            groups[lid].add(names.get(sid, str(sid)))
    total, by_seq, nurtured_any = awareness(conn, scope, seg, from_rollup=from_rollup)
    if total == 0:
        return make_report(NAME, TITLE, scope, COLUMNS, [], empty="no leads existed before the end of the period")
    per_seq = {names.get(sid, str(sid)): n for sid, n in by_seq.items()}
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
    for lid, ms in got.items():
        steps: list[tuple[str, float | None]] = []  # (milestone, days from the previous one if moved in the period)
        prev = ms["awareness"]
        for name in MILESTONES[1:]:
            at = ms.get(name)
            if at is None:
                break  # (closed downwards: no later one either)
            steps.append((name, None if at < p.since else days(at - prev)))
            prev = at
        for g in lead_groups(lid):
            for name, took in steps:
                reached_before[(g, name)] += 1
                if took is None:
                    before_start[(g, name)] += 1
                else:
                    moved[(g, name)].append(took)
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
