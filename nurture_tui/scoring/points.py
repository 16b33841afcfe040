"""Points on the lead score column: what a batch of activities earns (rules, caps against history, resets),
adding it, manual resets, and reading live scores back.

Scores live on the workspace score scale (`scale.py`): a grant of `p` points at time `t` adds `p / f(t)`
to `lead.score`, and everyone reads `score × f(now)`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, exists, func, insert, select, update

from ..activity import ActivityEvent
from ..batching import chunks
from ..config import ScoringSettings, Settings
from ..errors import NotFoundError
from ..store.inlist import in_values
from ..store.tables import activity, activity_pending, lead, score_event
from .history import reset_times
from .rules import UNIX_EPOCH, CompiledRule, RuleSet, granted
from .scale import ScoreScale, scale


def _prior_counts(conn: Connection, rule: CompiledRule, lead_ids: set[int], since: datetime | None,
                  exclude_ids: set[int], resets: Mapping[int, datetime],
                  repeats: set[tuple[int, int, int, str]]) -> dict[tuple[int, int], int]:
    """How many earlier activities of each lead matched a capped `rule`, per cap bucket. For a `distinct`
    rule a repeat of one (message, URL) in a bucket counts once; the (lead, bucket, repeat key) seen are
    added to `repeats`. Activities whose effects are still pending (`activity_pending`: committed by the
    tracking writer, scored in a later batch) have not been scored yet, so they are not earlier ones."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    cols = [activity.c.id, activity.c.lead_id, activity.c.at]
    if rule.distinct:
        cols += [activity.c.outbox_id, activity.c.url]
    for part in chunks(sorted(lead_ids)):
        # The SQL filter is the whole match, so (id, lead_id, at) is all we need: index-only for plain kinds.
        q = select(*cols).where(rule.sql_filter(kind_index=False), activity.c.lead_id.in_(part),
                                ~exists().where(activity_pending.c.activity_id == activity.c.id))
        if since is not None:
            q = q.where(activity.c.at >= since)
        for row in conn.execute(q):
            if row.id in exclude_ids:
                continue
            reset = resets.get(row.lead_id)
            if reset is not None and row.at <= reset:
                continue
            bucket = rule.bucket(row.at)
            repeat = rule.repeat_key(row.outbox_id, row.url) if rule.distinct else None
            if repeat is not None:
                seen = (row.lead_id, bucket, *repeat)
                if seen in repeats:
                    continue
                repeats.add(seen)
            counts[(row.lead_id, bucket)] += 1
    return counts


def _prior_counts_grouped(conn: Connection, rule: CompiledRule, lead_ids: set[int], bucket: int,
                          exclude_ids: set[int], repeats: set[tuple[int, int, int, str]]) -> dict[tuple[int, int], int]:
    """`_prior_counts` for leads without a score reset in the window and a batch inside one cap bucket:
    the database groups the earlier matches (per lead, or per lead and repeat key for a `distinct` rule)
    instead of sending every one — a lead clicking the same mail again and again costs one row, not one
    per click. Same counts and repeat keys as the row by row reading."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    start = _bucket_start(rule, bucket)
    keys = [activity.c.lead_id, activity.c.outbox_id, activity.c.url] if rule.distinct else [activity.c.lead_id]
    q = (select(*keys, func.count().label("n"))
         .where(rule.sql_filter(kind_index=False), in_values(conn, activity.c.lead_id, sorted(lead_ids)),
                ~exists().where(activity_pending.c.activity_id == activity.c.id))
         .group_by(*keys))
    if exclude_ids:
        q = q.where(~in_values(conn, activity.c.id, sorted(exclude_ids)))
    if start is not None and rule.window_s is not None:
        q = q.where(activity.c.at >= start, activity.c.at < start + timedelta(seconds=rule.window_s))
    for row in conn.execute(q):
        repeat = rule.repeat_key(row.outbox_id, row.url) if rule.distinct else None
        if repeat is None:
            counts[(row.lead_id, bucket)] += row.n
            continue
        seen = (row.lead_id, bucket, *repeat)
        if seen not in repeats:  # NULL and "" URLs are one repeat key: counted once
            repeats.add(seen)
            counts[(row.lead_id, bucket)] += 1
    return counts


def _bucket_start(rule: CompiledRule, bucket: int) -> datetime | None:
    if rule.window_s is None:
        return None
    return UNIX_EPOCH + timedelta(seconds=bucket * rule.window_s)


def score_batch(conn: Connection, rules: RuleSet, acts: Sequence[ActivityEvent],
                sc: ScoreScale) -> dict[int, float]:
    """Stored-scale score deltas per lead for a batch of recorded activities (caps honoured against history)."""
    matched: list[tuple[int, datetime, int, CompiledRule, tuple[int, str] | None]] = []  # lead, at, id, rule, repeat
    for act in acts:
        if act.bot or act.at is None:
            continue
        for rule in rules.for_kind(act.kind):
            if rule.matches(act):
                matched.append((act.lead_id, act.at, act.id or 0, rule, rule.repeat_key(act.outbox_id, act.url)))
    if not matched:
        return {}
    resets = reset_times(conn, {m[0] for m in matched})
    matched = [m for m in matched if (t := resets.get(m[0])) is None or m[1] > t]
    batch_ids = {m[2] for m in matched if m[2]}
    capped: dict[int, tuple[CompiledRule, set[int], int, int]] = {}  # rule, leads, first and last bucket
    for lid, at, _, rule, _ in matched:
        if rule.capped:
            b = rule.bucket(at)
            entry = capped.get(rule.id)
            if entry is None:
                capped[rule.id] = (rule, {lid}, b, b)
            else:
                entry[1].add(lid)
                capped[rule.id] = (rule, entry[1], min(entry[2], b), max(entry[3], b))
    seen: dict[tuple[int, int, int], int] = {}
    repeats: dict[int, set[tuple[int, int, int, str]]] = {}
    for rule, leads, first_bucket, last_bucket in capped.values():
        repeats[rule.id] = set()
        since = _bucket_start(rule, first_bucket)
        # leads whose score was reset inside the window count only what came after their reset: row by row
        reset_in = {lid for lid in leads if (t := resets.get(lid)) is not None and (since is None or t >= since)}
        grouped = leads - reset_in if first_bucket == last_bucket else set()
        prior = _prior_counts_grouped(conn, rule, grouped, first_bucket, batch_ids, repeats[rule.id]) \
            if grouped else {}
        if leads - grouped:
            prior.update(_prior_counts(conn, rule, leads - grouped, since, batch_ids, resets, repeats[rule.id]))
        for (lid, b), n in prior.items():
            seen[(lid, rule.id, b)] = n
    deltas: dict[int, float] = defaultdict(float)
    matched.sort(key=lambda m: (m[1], m[2]))
    for lid, at, _, rule, repeat in matched:
        if rule.capped:
            if rule.distinct and repeat is not None:
                again = (lid, rule.bucket(at), *repeat)
                if again in repeats[rule.id]:
                    continue  # a repeat of one message/URL in this window: nothing, and not counted
                repeats[rule.id].add(again)
            key = (lid, rule.id, rule.bucket(at))
            index = seen.get(key, 0)
            seen[key] = index + 1
            points = granted(rule, index)
        else:
            points = rule.points
        if points:
            deltas[lid] += sc.to_stored(points, at)
    return deltas


def add_stored(conn: Connection, deltas: Mapping[int, float], touch: Mapping[int, datetime] | None = None) -> None:
    """`lead.score += delta` for many leads (one executemany); with `touch`, the same statement also moves
    those leads' `last_activity_at` forward to the given time (one UPDATE of each lead row, not two)."""
    if not touch:
        if deltas:
            stmt = (update(lead).where(lead.c.id == bindparam("lid"))
                    .values(score=lead.c.score + bindparam("delta")))
            conn.execute(stmt, [{"lid": k, "delta": deltas[k]} for k in sorted(deltas)])  # id order: locality
        return
    later = (func.max(lead.c.last_activity_at, bindparam("at")) if conn.dialect.name == "sqlite"
             else func.greatest(lead.c.last_activity_at, bindparam("at")))
    stmt = (update(lead).where(lead.c.id == bindparam("lid"))
            .values(score=lead.c.score + bindparam("delta"),
                    # no `at` (a lead with points only) keeps its time; SQLite's max() is NULL with a NULL
                    last_activity_at=func.coalesce(later, lead.c.last_activity_at, bindparam("at"))))
    conn.execute(stmt, [{"lid": k, "delta": deltas.get(k, 0.0), "at": touch.get(k)}
                        for k in sorted(set(deltas) | set(touch))])


def require_lead(conn: Connection, lead_id: int) -> float:
    stored = conn.execute(select(lead.c.score).where(lead.c.id == lead_id)).scalar_one_or_none()
    if stored is None:
        raise NotFoundError(f"lead {lead_id}: no such lead")
    return float(stored)


def live_score(conn: Connection, lead_id: int, now: datetime, settings: Settings | ScoringSettings) -> float:
    """The decayed score of one lead now."""
    return scale(conn, now, settings).live(require_lead(conn, lead_id), now)


def live_scores(conn: Connection, lead_ids: Sequence[int], now: datetime,
                settings: Settings | ScoringSettings) -> dict[int, float]:
    """Decayed scores of many leads now (for pushes, exports and reports)."""
    sc = scale(conn, now, settings)
    out: dict[int, float] = {}
    for part in chunks(sorted(set(lead_ids))):
        rows = conn.execute(select(lead.c.id, lead.c.score).where(lead.c.id.in_(part)))
        out.update({int(i): sc.live(float(v), now) for i, v in rows})
    return out


def reset_score(conn: Connection, lead_id: int, value: float, reason: str, now: datetime,
                settings: Settings | ScoringSettings) -> None:
    """Set the live score to `value` now and start a new scoring cycle (caps and one-time rules restart)."""
    sc = scale(conn, now, settings)
    conn.execute(update(lead).where(lead.c.id == lead_id).values(score=sc.to_stored(value, now)))
    conn.execute(insert(score_event).values(lead_id=lead_id, at=now, kind="reset", points=value,
                                            reason=(reason or "reset")[:200]))


def resolve_lead(conn: Connection, ref: str | int) -> int:
    """A lead by id or e-mail address (CLI arguments)."""
    text = str(ref).strip()
    q = select(lead.c.id).where(lead.c.id == int(text)) if text.isdigit() else \
        select(lead.c.id).where(lead.c.email == text.lower())
    found = conn.execute(q).scalar()
    if found is None:
        raise NotFoundError(f"lead {text}: no such lead")
    return int(found)

