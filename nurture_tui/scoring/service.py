"""Behaviour scoring: incremental scoring of activity batches, manual adjustments, resets, history.

Scores live on the workspace score scale (`decay.py`): a grant of `p` points at time `t` adds
`p / f(t)` to `lead.score`, and everyone reads `score × f(now)`. Rule-derived points are not stored
per activity: they are a pure function of the `activity` log and the rule set, so a rule change
rescores history (`rescore.py`) without rewriting any history table. `score_event` keeps only what
rules cannot re-derive: adjustments and resets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from ..config import ScoringSettings, Settings
from ..errors import NotFoundError, ValidationError
from ..store.tables import activity, lead, score_event
from .decay import ScoreScale, load_scale
from .rules import UNIX_EPOCH, CompiledRule, RuleSet, load_rules

#: Chunk size for `IN (…)` lists (SQLite allows 32k variables; keep statements small).
CHUNK = 2000


def scoring_settings(settings: Settings | ScoringSettings) -> ScoringSettings:
    return settings if isinstance(settings, ScoringSettings) else settings.scoring


def scale(conn: Connection, now: datetime, settings: Settings | ScoringSettings) -> ScoreScale:
    return load_scale(conn, scoring_settings(settings).half_life_days, now)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def inserted_id(result: Any) -> int:
    """The primary key of a single-row Core insert."""
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def granted(rule: CompiledRule, index: int) -> float:
    """Points the `index`-th (0-based) match of `rule` in one lead's cap bucket earns."""
    if rule.cap is None:
        return rule.points
    step = abs(rule.points)
    return math.copysign(max(0.0, min(step, rule.cap - index * step)), rule.points)


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


def _prior_counts(conn: Connection, rule: CompiledRule, lead_ids: set[int], since: datetime | None,
                  exclude_ids: set[int], resets: Mapping[int, datetime]) -> dict[tuple[int, int], int]:
    """How many earlier activities of each lead matched a capped `rule`, per cap bucket."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for part in chunks(sorted(lead_ids)):
        # The SQL filter is the whole match, so (id, lead_id, at) is all we need: index-only for plain kinds.
        q = select(activity.c.id, activity.c.lead_id, activity.c.at).where(rule.sql_filter(kind_index=False),
                                                                           activity.c.lead_id.in_(part))
        if since is not None:
            q = q.where(activity.c.at >= since)
        for row in conn.execute(q):
            if row.id in exclude_ids:
                continue
            reset = resets.get(row.lead_id)
            if reset is not None and row.at <= reset:
                continue
            counts[(row.lead_id, rule.bucket(row.at))] += 1
    return counts


def _bucket_start(rule: CompiledRule, bucket: int) -> datetime | None:
    if rule.window_s is None:
        return None
    return UNIX_EPOCH + timedelta(seconds=bucket * rule.window_s)


def score_batch(conn: Connection, rules: RuleSet, acts: Sequence[Mapping[str, Any]],
                sc: ScoreScale) -> dict[int, float]:
    """Stored-scale score deltas per lead for a batch of activities (caps honoured against history)."""
    matched: list[tuple[Mapping[str, Any], CompiledRule]] = []
    for act in acts:
        if act.get("bot"):
            continue
        for rule in rules.for_kind(act["kind"]):
            if rule.matches(act):
                matched.append((act, rule))
    if not matched:
        return {}
    resets = reset_times(conn, {int(a["lead_id"]) for a, _ in matched})
    matched = [(a, r) for a, r in matched if (t := resets.get(int(a["lead_id"]))) is None or a["at"] > t]
    batch_ids = {int(a["id"]) for a, _ in matched if a.get("id") is not None}
    capped: dict[int, tuple[CompiledRule, set[int], int]] = {}
    for act, rule in matched:
        if rule.capped:
            b = rule.bucket(act["at"])
            entry = capped.get(rule.id)
            if entry is None:
                capped[rule.id] = (rule, {int(act["lead_id"])}, b)
            else:
                entry[1].add(int(act["lead_id"]))
                capped[rule.id] = (rule, entry[1], min(entry[2], b))
    seen: dict[tuple[int, int, int], int] = {}
    for rule, leads, first_bucket in capped.values():
        prior = _prior_counts(conn, rule, leads, _bucket_start(rule, first_bucket), batch_ids, resets)
        for (lid, b), n in prior.items():
            seen[(lid, rule.id, b)] = n
    deltas: dict[int, float] = defaultdict(float)
    matched.sort(key=lambda m: (m[0]["at"], m[0].get("id") or 0))
    for act, rule in matched:
        lid = int(act["lead_id"])
        if rule.capped:
            key = (lid, rule.id, rule.bucket(act["at"]))
            index = seen.get(key, 0)
            seen[key] = index + 1
            points = granted(rule, index)
        else:
            points = rule.points
        if points:
            deltas[lid] += sc.to_stored(points, act["at"])
    return deltas


def add_stored(conn: Connection, deltas: Mapping[int, float]) -> None:
    """`lead.score += delta` for many leads (one executemany)."""
    if not deltas:
        return
    stmt = (update(lead).where(lead.c.id == bindparam("lid"))
            .values(score=lead.c.score + bindparam("delta")))
    conn.execute(stmt, [{"lid": k, "delta": deltas[k]} for k in sorted(deltas)])  # id order: page locality


def apply_activities(conn: Connection, activities: Sequence[Mapping[str, Any]], now: datetime,
                     settings: Settings | ScoringSettings) -> list[int]:
    """Score a batch of activity dicts (`id`, `lead_id`, `kind`, `at`, optional `template_id`,
    `sequence_id`, `url`, `meta`, `bot`) already inserted into `activity` by the caller's transaction.
    Returns the ids of leads whose MQL state changed (newly qualified)."""
    if not activities:
        return []
    rules = load_rules(conn)
    kinds = rules.kinds
    acts = [a for a in activities if a["kind"] in kinds and not a.get("bot")]
    if not acts:
        return []
    deltas = score_batch(conn, rules, acts, scale(conn, now, settings))
    add_stored(conn, deltas)
    from . import accounts, mql

    changed = mql.check(conn, list(deltas), now, settings)
    accounts.refresh_for_leads(conn, list(deltas), now, settings)
    return changed


def _require_lead(conn: Connection, lead_id: int) -> float:
    stored = conn.execute(select(lead.c.score).where(lead.c.id == lead_id)).scalar_one_or_none()
    if stored is None:
        raise NotFoundError(f"lead {lead_id}: no such lead")
    return float(stored)


def live_score(conn: Connection, lead_id: int, now: datetime, settings: Settings | ScoringSettings) -> float:
    """The decayed score of one lead now."""
    return scale(conn, now, settings).live(_require_lead(conn, lead_id), now)


def live_scores(conn: Connection, lead_ids: Sequence[int], now: datetime,
                settings: Settings | ScoringSettings) -> dict[int, float]:
    """Decayed scores of many leads now (for pushes, exports and reports)."""
    sc = scale(conn, now, settings)
    out: dict[int, float] = {}
    for part in chunks(sorted(set(lead_ids))):
        rows = conn.execute(select(lead.c.id, lead.c.score).where(lead.c.id.in_(part)))
        out.update({int(i): sc.live(float(v), now) for i, v in rows})
    return out


def adjust_score(conn: Connection, lead_id: int, points: float, reason: str, now: datetime,
                 settings: Settings | ScoringSettings) -> list[int]:
    """Add `points` (negative allowed) now, kept in the lead's score history; returns MQL-changed ids."""
    if not math.isfinite(points):
        raise ValidationError("points", "must be a finite number")
    _require_lead(conn, lead_id)
    add_stored(conn, {lead_id: scale(conn, now, settings).to_stored(points, now)})
    conn.execute(insert(score_event).values(lead_id=lead_id, at=now, kind="adjust", points=points,
                                            reason=(reason or "adjusted")[:200]))
    from . import accounts, mql

    changed = mql.check(conn, [lead_id], now, settings)
    accounts.refresh_for_leads(conn, [lead_id], now, settings)
    return changed


def reset_score(conn: Connection, lead_id: int, value: float, reason: str, now: datetime,
                settings: Settings | ScoringSettings) -> None:
    """Set the live score to `value` now and start a new scoring cycle (caps and one-time rules restart)."""
    sc = scale(conn, now, settings)
    conn.execute(update(lead).where(lead.c.id == lead_id).values(score=sc.to_stored(value, now)))
    conn.execute(insert(score_event).values(lead_id=lead_id, at=now, kind="reset", points=value,
                                            reason=(reason or "reset")[:200]))


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
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for at, is_event, row in timeline:
        if is_event:
            if row.kind == "reset":
                counts.clear()
            out.append(ScoreChange(at=at, points=float(row.points), reason=row.reason, kind=row.kind))
            continue
        m = row._mapping
        for rule in rules.for_kind(row.kind):
            if not rule.matches(m):
                continue
            points = rule.points
            if rule.capped:
                key = (rule.id, rule.bucket(at))
                points = granted(rule, counts[key])
                counts[key] += 1
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


def resolve_lead(conn: Connection, ref: str | int) -> int:
    """A lead by id or e-mail address (CLI arguments)."""
    text = str(ref).strip()
    q = select(lead.c.id).where(lead.c.id == int(text)) if text.isdigit() else \
        select(lead.c.id).where(lead.c.email == text.lower())
    found = conn.execute(q).scalar()
    if found is None:
        raise NotFoundError(f"lead {text}: no such lead")
    return int(found)


#: Rebase the score scale once the decay factor leaves this range (≈ 150 half-lives from the epoch),
#: long before stored values could overflow a double.
REBASE_BELOW = 2.0**-150


def scheduler_hook(ws: Any) -> dict[str, Any]:
    """The hourly "decay" job of the scheduler. Decay itself needs no work (see `decay.py`); this job
    refreshes the scores of accounts outside the ABM list (named accounts are refreshed with every scoring
    batch) and keeps the score scale's epoch within floating-point comfort by rebasing it (one table
    rewrite, needed after decades of half-lives)."""
    from ..store.engine import write_tx
    from . import accounts
    from .decay import rebase

    now = ws.clock.now()
    rebased = False
    with write_tx(ws.engine) as conn:
        sc = scale(conn, now, ws.settings)
        if sc.half_life_days > 0 and sc.factor(now) < REBASE_BELOW:
            sc = rebase(conn, sc, now)
            rebased = True
    with write_tx(ws.engine) as conn:
        mqas = accounts.refresh(conn, None, now, ws.settings)
    return {"rebased": rebased, "epoch": sc.epoch.isoformat(), "new_mqas": len(mqas)}
