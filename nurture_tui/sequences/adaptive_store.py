"""What adaptive decisions read from the store: settled arm counts with the delayed-reward rule, each lead's
audience, and the hour histograms for send-time optimisation. Shared by the engine (which decides), the
simulator (which explains what the engine would do) and the live view / report. The one write is the
retention (`fold_old_decisions`, run by the maintenance job): closed split decisions older than the
retention are folded into per-day counts (`adaptive_daily`) that the counts go on reading.

Delayed reward, in SQL: a recorded split decision is a *success* when the metric (a non-machine `open`,
`click` or `goal` activity of the same sequence) happened at or after the decision and before its
`closes_at` (and not after `now`); a *failure* only when it is not a success and `closes_at` ≤ now; else it
is pending and counts as neither.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, case, delete, exists, func, insert, select, update

from ..store.tables import (
    activity,
    adaptive_daily,
    adaptive_decision,
    lead,
    segment,
    segment_member,
    sequence_version,
)
from . import timing
from .adaptive import (
    ALL,
    AdaptiveSettings,
    Allocation,
    ArmCounts,
    Daily,
    build_allocation,
    describe,
    settings_of,
    since_change,
)
from .model import SendWindow
from .send_time import HourHistogram, describe_histogram, histogram, pick_histogram

NONE = "(none)"  # the audience of a lead without a persona / stage / matching segment
HOURS_LOOKBACK = timedelta(days=180)  # engagement that shapes a lead's best hour
GROUP_SAMPLE = 20_000  # most recent events read for a persona's / segment's histogram

Counts = dict[str, dict[str, ArmCounts]]  # audience → arm → counts
Evidence = tuple[Counts, int | None]  # the counts, and the change day (date ordinal) they start at, if any


def arm_counts(conn: Connection, sequence_id: int, node_id: str, metric: str, now: datetime,
               lookback: timedelta | None = None, drift: bool = False) -> Counts:
    """Settled successes and failures per audience and arm of one adaptive split (with `drift`, only those
    of the decisions since the last detected change: `adaptive.since_change`)."""
    return arm_evidence(conn, sequence_id, node_id, metric, now, lookback, drift)[0]


def arm_evidence(conn: Connection, sequence_id: int, node_id: str, metric: str, now: datetime,
                 lookback: timedelta | None = None, drift: bool = False) -> Evidence:
    """`arm_counts`, with the detected change day the evidence restarted at (None: no restart)."""
    settled, closed = daily_counts(conn, sequence_id, node_id, metric, now, lookback)
    return since_change(settled, closed, drift)


def daily_counts(conn: Connection, sequence_id: int, node_id: str, metric: str, now: datetime,
                 lookback: timedelta | None = None) -> tuple[Daily, Daily]:
    """Per audience, arm and UTC decision day (as a date ordinal): the settled counts (a success once it
    happened, a failure once the window closed) and the closed ones (window closed, success or not)."""
    d = adaptive_decision
    hit = _success(metric, now)
    conds: list[ColumnElement[bool]] = [d.c.sequence_id == sequence_id, d.c.node_id == node_id,
                                        d.c.kind == "split"]
    if lookback is not None:
        conds.append(d.c.decided_at >= now - lookback)
    day = _decision_day(conn)
    is_closed = d.c.closes_at <= now
    stmt = (select(d.c.audience, d.c.arm, day, func.sum(case((hit, 1), else_=0)),
                   func.sum(case((and_(~hit, is_closed), 1), else_=0)),
                   func.sum(case((and_(hit, is_closed), 1), else_=0)))
            .where(*conds).group_by(d.c.audience, d.c.arm, day))
    settled: dict[str, dict[str, dict[int, ArmCounts]]] = defaultdict(lambda: defaultdict(dict))
    closed: dict[str, dict[str, dict[int, ArmCounts]]] = defaultdict(lambda: defaultdict(dict))
    for audience, arm, on, s, f, s_closed in conn.execute(stmt):
        ordinal = date.fromisoformat(str(on)).toordinal()
        settled[audience or ALL][arm][ordinal] = ArmCounts(float(s or 0), float(f or 0))
        closed[audience or ALL][arm][ordinal] = ArmCounts(float(s_closed or 0), float(f or 0))
    folded = adaptive_daily.c  # decisions past the retention: closed, so settled and closed alike
    old = select(folded.audience, folded.arm, folded.day, folded.successes, folded.failures).where(
        folded.sequence_id == sequence_id, folded.node_id == node_id, folded.metric == metric)
    if lookback is not None:
        old = old.where(folded.day >= (now - lookback).date().isoformat())
    for audience, arm, on, s, f in conn.execute(old):
        ordinal = date.fromisoformat(on).toordinal()
        for per_day in (settled, closed):
            per_day[audience][arm][ordinal] = per_day[audience][arm].get(ordinal, ArmCounts()) + ArmCounts(s, f)
    return settled, closed


def _success(metric: str, now: datetime) -> ColumnElement[bool]:
    """The delayed-reward rule's success probe for a decision row: a non-machine `metric` activity of the
    same sequence inside its reward window, by `now`."""
    d, a = adaptive_decision, activity
    return exists().where(
        a.c.lead_id == d.c.lead_id, a.c.kind == metric, a.c.at >= d.c.decided_at, a.c.at < d.c.closes_at,
        a.c.at <= now, a.c.bot.is_(False), a.c.sequence_id == d.c.sequence_id,
    )


def _decision_day(conn: Connection) -> ColumnElement[Any]:
    """A decision's UTC day (`date(decided_at)`)."""
    d = adaptive_decision
    return (func.date(d.c.decided_at) if conn.dialect.name == "sqlite"  # naive-UTC text
            else func.date(func.timezone("UTC", d.c.decided_at)))


def adaptive_splits(conn: Connection) -> dict[tuple[int, str], AdaptiveSettings]:
    """Every adaptive split node of every published version, by (sequence id, step id): its settings (the
    newest version's when several versions have the node). A definition that no longer parses is skipped."""
    from .model import SequenceDef, iter_steps

    v = sequence_version.c
    out: dict[tuple[int, str], AdaptiveSettings] = {}
    for sequence_id, definition in conn.execute(select(v.sequence_id, v.definition).order_by(v.number)):
        try:
            steps = iter_steps(SequenceDef.model_validate(definition).steps)
        except ValueError:
            continue
        for step in steps:
            if step.split is not None and step.split.adaptive:
                out[(int(sequence_id), step.id)] = settings_of(step.split)
    return out


def fold_old_decisions(conn: Connection, sequence_id: int, node_id: str, metric: str, before: datetime,
                       now: datetime, limit: int) -> int:
    """Up to `limit` of one split node's oldest decisions made before `before` whose reward window has
    closed by `now`: added to `adaptive_daily` as per-day successes and failures (what `daily_counts` read
    from them), then deleted. Returns how many were folded."""
    d, f = adaptive_decision, adaptive_daily
    ids = [int(i) for i in conn.execute(
        select(d.c.id).where(d.c.sequence_id == sequence_id, d.c.node_id == node_id, d.c.kind == "split",
                             d.c.decided_at < before, d.c.closes_at <= now)
        .order_by(d.c.decided_at, d.c.id).limit(limit)).scalars()]
    if not ids:
        return 0
    hit = _success(metric, now)
    day = _decision_day(conn)  # one expression (and bind parameter) in the select and the grouping
    counts = conn.execute(
        select(d.c.audience, d.c.arm, day, func.sum(case((hit, 1), else_=0)), func.sum(case((hit, 0), else_=1)))
        .where(d.c.id.in_(ids)).group_by(d.c.audience, d.c.arm, day)).all()
    for audience, arm, on, s, fails in counts:
        key = {"sequence_id": sequence_id, "node_id": node_id, "metric": metric, "audience": audience or ALL,
               "arm": arm or "", "day": str(on)}
        where = [f.c[k] == v for k, v in key.items()]
        changed = conn.execute(update(f).where(*where).values(successes=f.c.successes + int(s),
                                                              failures=f.c.failures + int(fails))).rowcount
        if not changed:
            conn.execute(insert(f).values(**key, successes=int(s), failures=int(fails)))
    conn.execute(delete(d).where(d.c.id.in_(ids)))
    return len(ids)


def overall(counts: Counts) -> dict[str, ArmCounts]:
    total: dict[str, ArmCounts] = defaultdict(ArmCounts)
    for per_arm in counts.values():
        for arm, c in per_arm.items():
            total[arm] = total[arm] + c
    return dict(total)


def allocations(names: list[str], counts: Counts, settings: AdaptiveSettings,
                wanted: Iterable[str], restart: int | None = None) -> dict[str, Allocation]:
    """The allocation of each wanted audience (pooled toward everyone's when the split learns per audience).
    `restart`: the change day the counts start at (drift), carried into each explanation."""
    everyone = overall(counts)
    out = {}
    for audience in wanted:
        if settings.audience == ALL:
            out[audience] = build_allocation(names, everyone, None, settings, ALL, restart)
        else:
            out[audience] = build_allocation(names, everyone, counts.get(audience, {}), settings, audience,
                                             restart)
    return out


def evidence(conn: Connection, sequence_id: int, node_id: str, names: list[str], settings: AdaptiveSettings,
             lead_ids: list[int], now: datetime, counts: Evidence | None = None,
             ) -> tuple[dict[int, str], dict[str, Allocation]]:
    """Everything a split decision needs for these leads: each lead's audience and each audience's
    allocation (read once per node and batch by the engine, once per step by the simulator). `counts`: the
    settled counts and their restart day (`arm_evidence`) when the caller already has them."""
    audience = audiences(conn, settings.audience, settings.segments, lead_ids)
    if counts is None:
        counts = arm_evidence(conn, sequence_id, node_id, settings.metric, now, settings.lookback, settings.drift)
    settled, restart = counts
    return audience, allocations(names, settled, settings, set(audience.values()), restart)


def audiences(conn: Connection, key: str, segments: Iterable[str], lead_ids: list[int]) -> dict[int, str]:
    """Each lead's audience value: `all`, its persona / stage, or the first listed segment it is in."""
    if key == ALL or not lead_ids:
        return dict.fromkeys(lead_ids, ALL)
    if key in ("persona", "stage"):
        col = lead.c[key]
        rows = conn.execute(select(lead.c.id, col).where(lead.c.id.in_(lead_ids)))
        return {lid: (value or NONE) for lid, value in rows}
    order = list(segments)
    found: dict[int, set[str]] = defaultdict(set)
    rows = conn.execute(select(segment_member.c.lead_id, segment.c.name)
                        .join(segment, segment.c.id == segment_member.c.segment_id)
                        .where(segment_member.c.lead_id.in_(lead_ids), segment.c.name.in_(order)))
    for lid, name in rows:
        found[lid].add(name)
    return {lid: next((s for s in order if s in found.get(lid, ())), NONE) for lid in lead_ids}


def decision_row(kind: str, sequence_id: int, version_id: int, node_id: str, enrollment_id: int | None,
                 lead_id: int, now: datetime, detail: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One adaptive_decision row (the engine inserts these with the batch's other effects)."""
    return {"kind": kind, "sequence_id": sequence_id, "version_id": version_id, "node_id": node_id,
            "enrollment_id": enrollment_id, "lead_id": lead_id, "decided_at": now,
            "arm": extra.get("arm"), "audience": extra.get("audience"), "closes_at": extra.get("closes_at"),
            "send_at": extra.get("send_at"), "detail": detail}


# ---------------------------------------------------------------------------------------------------
# Send-time optimisation: hour histograms

_ENGAGED = ("open", "click")


def lead_histograms(conn: Connection, lead_ids: list[int], tz_of: Callable[[int], ZoneInfo],
                    now: datetime) -> dict[int, HourHistogram]:
    """Each lead's own opens and clicks (machine opens excluded) by local hour."""
    hours: dict[int, list[int]] = defaultdict(list)
    if lead_ids:
        rows = conn.execute(select(activity.c.lead_id, activity.c.at).where(
            activity.c.lead_id.in_(lead_ids), activity.c.kind.in_(_ENGAGED), activity.c.bot.is_(False),
            activity.c.at > now - HOURS_LOOKBACK, activity.c.at <= now))
        for lid, at in rows:
            hours[lid].append(at.astimezone(tz_of(lid)).hour)
    return {lid: histogram(hours.get(lid, ()), "lead") for lid in lead_ids}


def group_histogram(conn: Connection, *, persona: str | None = None, segment_name: str | None = None,
                    window: SendWindow | None, now: datetime) -> HourHistogram | None:
    """The opens and clicks of a persona's (or a segment's) leads by each lead's local hour, over the most
    recent GROUP_SAMPLE events (the lead's own time zone, else the window's default)."""
    if persona is None and segment_name is None:
        return None
    stmt = (select(activity.c.at, lead.c.timezone).join(lead, lead.c.id == activity.c.lead_id)
            .where(activity.c.kind.in_(_ENGAGED), activity.c.bot.is_(False),
                   activity.c.at > now - HOURS_LOOKBACK, activity.c.at <= now)
            .order_by(activity.c.at.desc()).limit(GROUP_SAMPLE))
    if persona is not None:
        stmt = stmt.where(lead.c.persona == persona)
        source = f"persona:{persona}"
    else:
        stmt = stmt.where(activity.c.lead_id.in_(
            select(segment_member.c.lead_id).join(segment, segment.c.id == segment_member.c.segment_id)
            .where(segment.c.name == segment_name)))
        source = f"segment:{segment_name}"
    default = window.default_timezone if window else None
    hours = []
    for at, tzname in conn.execute(stmt):
        tz = timing.zone(tzname) or timing.zone(default) or ZoneInfo("UTC")
        hours.append(at.astimezone(tz).hour)
    return histogram(hours, source)


def sto_histograms(conn: Connection, lead_ids: list[int], tz_of: Callable[[int], ZoneInfo], window: SendWindow | None,
                   entry_segment: str | None, now: datetime,
                   cache: dict[tuple[str, str | None], HourHistogram | None]) -> dict[int, HourHistogram]:
    """Per lead the histogram STO uses: its own, else its persona's, else the entry segment's, else none
    (`cache` keeps the group histograms for the caller's batch)."""
    own = lead_histograms(conn, lead_ids, tz_of, now)
    personas = lead_personas(conn, lead_ids)
    if ("segment", entry_segment) not in cache:
        cache[("segment", entry_segment)] = group_histogram(conn, segment_name=entry_segment, window=window, now=now)
    out = {}
    for lid in lead_ids:
        persona = personas.get(lid)
        if ("persona", persona) not in cache:
            cache[("persona", persona)] = group_histogram(conn, persona=persona, window=window, now=now)
        out[lid] = pick_histogram(own[lid], [cache[("persona", persona)], cache[("segment", entry_segment)]])
    return out


def lead_personas(conn: Connection, lead_ids: list[int]) -> Mapping[int, str | None]:
    return {lid: p for lid, p in conn.execute(select(lead.c.id, lead.c.persona).where(lead.c.id.in_(lead_ids)))}


# ---------------------------------------------------------------------------------------------------
# Reading decisions back (timeline, report, live view)

def lead_decisions(conn: Connection, lead_id: int, limit: int = 50) -> list[dict[str, Any]]:
    d = adaptive_decision
    rows = conn.execute(select(d).where(d.c.lead_id == lead_id).order_by(d.c.decided_at.desc(), d.c.id.desc())
                        .limit(limit)).mappings()
    return [dict(r) for r in rows]


def explain(row: Mapping[str, Any]) -> str:
    """One line saying why a recorded decision was made (timeline, report, simulator)."""
    detail = row.get("detail") or {}
    if row.get("kind") == "send_time":
        chosen = detail.get("chosen", "")
        when = chosen[11:16] if isinstance(chosen, str) else ""
        moved = "at once (plain schedule)" if detail.get("chosen") == detail.get("plain") else \
            f"at {detail.get('local_hour')}:00 {detail.get('tz', '')} (UTC {when})"
        return f"{row.get('node_id')}: optimal send time {moved} — {describe_histogram(detail)}"
    return f"{row.get('node_id')}: arm {row.get('arm')} — {describe(detail)}"
