"""Materialised ("hot") segments: membership kept in `segment_member`, so entry checks and counts of a
hot segment are an index lookup instead of a rule evaluation.

- `refresh_segment` recomputes one segment in two set statements (delete leavers, insert joiners).
- `refresh_for_leads` is the incremental path: the engine calls it with the leads whose fields or
  activity just changed; each hot segment re-evaluates only those leads (same compiled SQL, probe form).
- Membership that depends on time alone (relative windows, score decay) drifts without any lead
  changing; `refresh_all` (the scheduler's periodic sweep) recomputes every hot segment in dependency
  order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, literal, select, update

from ..batching import chunks
from ..store.tables import lead, segment, segment_member
from . import compiler
from .rules import parse_rule
from .validate import dependency_order, reference_graph

_CHUNK = 500


@dataclass(frozen=True)
class RefreshResult:
    segment: str
    added: int
    removed: int
    count: int | None = None  # total members after a full refresh


def _hot_segments(conn: Connection) -> list[tuple[int, str, dict[str, Any]]]:
    rows = conn.execute(select(segment.c.id, segment.c.name, segment.c.rule)
                        .where(segment.c.materialized.is_(True))).all()
    graph = reference_graph(conn)
    by_name = {r.name: (int(r.id), r.name, r.rule) for r in rows}
    return [by_name[n] for n in dependency_order(graph, list(by_name))]


def refresh_segment(conn: Connection, segment_id: int, rule_data: dict[str, Any], now: datetime,
                    *, half_life_days: float | None = None, name: str = "") -> RefreshResult:
    """Recompute one hot segment's membership from its rule (other hot segments it refers to are read
    from their own membership, so refresh those first — `refresh_all` does)."""
    clause = compiler.where_clause(conn, parse_rule(rule_data), now, half_life_days=half_life_days)
    sm = segment_member
    removed = conn.execute(delete(sm).where(sm.c.segment_id == segment_id,
                                            sm.c.lead_id.not_in(select(lead.c.id).where(clause)))).rowcount
    joiners = select(literal(segment_id), lead.c.id).where(
        clause, ~select(literal(1)).where(sm.c.segment_id == segment_id, sm.c.lead_id == lead.c.id).exists())
    added = conn.execute(insert(sm).from_select(["segment_id", "lead_id"], joiners)).rowcount
    total = int(conn.execute(select(func.count()).select_from(sm).where(sm.c.segment_id == segment_id))
                .scalar_one())
    conn.execute(update(segment).where(segment.c.id == segment_id)
                 .values(materialized_at=now, cached_count=total, counted_at=now))
    return RefreshResult(segment=name, added=max(added, 0), removed=max(removed, 0), count=total)


def refresh_all(conn: Connection, now: datetime, *, half_life_days: float | None = None,
                only: set[str] | None = None) -> list[RefreshResult]:
    """Full refresh of every hot segment (or those named in `only`), dependencies first."""
    return [refresh_segment(conn, sid, rule, now, half_life_days=half_life_days, name=name)
            for sid, name, rule in _hot_segments(conn) if only is None or name in only]


def dependents(conn: Connection, name: str) -> set[str]:
    """Saved segments that refer to `name`, directly or through other segments."""
    graph = reference_graph(conn)
    lowered = name.lower()
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for seg, refs in graph.items():
            if seg not in found and any(r.lower() == lowered or r in found for r in refs):
                found.add(seg)
                changed = True
    return found


def refresh_for_leads(conn: Connection, lead_ids: Iterable[int], now: datetime, *,
                      half_life_days: float | None = None) -> list[RefreshResult]:
    """Re-evaluate only `lead_ids` against every hot segment and fix their membership rows.
    Call it in the same transaction that changed the leads or recorded their activity."""
    ids = sorted({int(i) for i in lead_ids})
    results: list[RefreshResult] = []
    if not ids:
        return results
    sm = segment_member
    for sid, name, rule in _hot_segments(conn):
        matched = compiler.matching_ids(conn, parse_rule(rule), ids, now, half_life_days=half_life_days)
        current: set[int] = set()
        for chunk in chunks(ids, _CHUNK):
            current.update(int(r[0]) for r in conn.execute(
                select(sm.c.lead_id).where(sm.c.segment_id == sid, sm.c.lead_id.in_(chunk))))
        joiners = sorted(matched - current)
        leavers = sorted(current - matched)
        if joiners:
            conn.execute(insert(sm), [{"segment_id": sid, "lead_id": i} for i in joiners])
        for chunk in chunks(leavers, _CHUNK):
            conn.execute(delete(sm).where(sm.c.segment_id == sid, sm.c.lead_id.in_(chunk)))
        if joiners or leavers:
            conn.execute(update(segment).where(segment.c.id == sid, segment.c.cached_count.is_not(None))
                         .values(cached_count=segment.c.cached_count + len(joiners) - len(leavers), counted_at=now))
        results.append(RefreshResult(segment=name, added=len(joiners), removed=len(leavers)))
    return results
