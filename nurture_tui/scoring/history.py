"""A lead's score history, re-derived: rule grants from the `activity` log (caps and resets applied exactly
as incremental scoring applies them) merged with the adjustments and resets kept in `score_event`.

Rule-derived points are never stored per activity, so this is the one place that replays them; the
hand-off summary, `scoring explain` and the bulk rescore's verification read it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ..batching import chunks
from ..store.tables import activity, score_event
from .rules import CapCounts, RuleSet, grant, load_rules
from .scale import ScoreScale


def reset_times(conn: Connection, lead_ids: Iterable[int]) -> dict[int, datetime]:
    """The latest score reset per lead (start of its current scoring cycle), for leads that have one."""
    ids = sorted(set(lead_ids))
    out: dict[int, datetime] = {}
    for part in chunks(ids):
        q = (select(score_event.c.lead_id, func.max(score_event.c.at))
             .where(score_event.c.kind == "reset", score_event.c.lead_id.in_(part))
             .group_by(score_event.c.lead_id))
        out.update({int(lid): at for lid, at in conn.execute(q)})
    return out


@dataclass(frozen=True)
class ScoreChange:
    """One line of a lead's score history (points as earned, before decay)."""

    at: datetime
    points: float
    reason: str
    kind: str  # rule / adjust / reset
    rule_id: int | None = None
    activity_id: int | None = None


def history(conn: Connection, lead_id: int, rules: RuleSet | None = None) -> list[ScoreChange]:
    """The lead's score history, oldest first: rule grants re-derived from activities (caps and resets
    applied exactly as scoring does) merged with adjustments and resets."""
    return histories(conn, [lead_id], rules)[lead_id]


def histories(conn: Connection, lead_ids: Sequence[int], rules: RuleSet | None = None) -> dict[int, list[ScoreChange]]:
    """`history` for many leads with two queries per chunk of leads."""
    rules = rules or load_rules(conn)
    events: dict[int, list[Any]] = defaultdict(list)
    acts: dict[int, list[Any]] = defaultdict(list)
    for part in chunks(sorted(set(lead_ids))):
        for e in conn.execute(select(score_event).where(score_event.c.lead_id.in_(part))
                              .order_by(score_event.c.at, score_event.c.id)):
            events[e.lead_id].append(e)
        for a in conn.execute(select(activity).where(activity.c.lead_id.in_(part),
                                                     activity.c.kind.in_(sorted(rules.kinds)),
                                                     activity.c.bot == False)  # noqa: E712
                              .order_by(activity.c.at, activity.c.id)):
            acts[a.lead_id].append(a)
    return {lid: _derive(rules, acts[lid], events[lid]) for lid in lead_ids}


def _derive(rules: RuleSet, acts: list[Any], events: list[Any]) -> list[ScoreChange]:
    # At equal times activities sort first: an activity at the very instant of a reset belongs to the old cycle.
    timeline: list[tuple[datetime, int, Any]] = [(a.at, 0, a) for a in acts] + [(e.at, 1, e) for e in events]
    timeline.sort(key=lambda t: (t[0], t[1]))
    out: list[ScoreChange] = []
    counts: CapCounts = {}
    for at, is_event, row in timeline:
        if is_event:
            if row.kind == "reset":
                counts.clear()
            out.append(ScoreChange(at=at, points=float(row.points), reason=row.reason, kind=row.kind))
            continue
        for rule in rules.for_kind(row.kind):
            if not rule.matches(row):
                continue
            points = grant(rule, at, counts, rule.repeat_key(row.outbox_id, row.url))
            if points:
                out.append(ScoreChange(at=at, points=points, reason=rule.name, kind="rule", rule_id=rule.id,
                                       activity_id=row.id))
    return out


def recompute_stored(changes: Sequence[ScoreChange], sc: ScoreScale) -> float:
    """The stored score a history implies (used to verify the bulk rescore and by `scoring explain`)."""
    total = 0.0
    for ch in changes:
        if ch.kind == "reset":
            total = sc.to_stored(ch.points, ch.at)
        else:
            total += sc.to_stored(ch.points, ch.at)
    return total

