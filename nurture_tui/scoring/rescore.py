"""Rescore history after a rule change: every lead's score recomputed from the activity log, the
current rule set, its adjustments and its last reset — in SQL.

Phase 1 (worker threads, one read transaction per lead-id range, no write lock): each active rule becomes
one `SELECT` over `activity` (its Core filter); capped and one-time rules number their matches per (lead,
cap bucket) with `row_number()` and grant `min(|points|, cap − (n−1)·|points|)`, exactly what the
incremental path does. Each grant is weighted by the decay scale (`2^((at − epoch)/half-life)`), grants and
adjustments are summed per lead, and only leads whose total differs from their stored score in the same
snapshot come back. Leads with a score reset (recycled MQLs, few) are derived instead by the per-lead
history code (`service.histories`), which applies cycles exactly; keeping resets out of the SQL keeps every
rule's query a plain index scan.

Phase 2 (this thread, short write transactions, `progress(done, total)` after each range): `score =
total + (score − old)`, so whatever was scored while phase 1 ran is kept. The phases overlap (range n+1
is computed while range n is written), and scoring of new activity, sends and the TUI carry on during a
rescore.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
    update,
)

from ..clock import Clock
from ..config import ScoringSettings, Settings
from ..store import meta
from ..store.engine import write_tx
from ..store.tables import activity, lead, score_event
from . import accounts, mql
from .history import histories, recompute_stored
from .rules import UNIX_EPOCH, CompiledRule, RuleSet, load_rules
from .scale import ScoreScale, scale, scoring_settings

Progress = Callable[[int, int], None]
RANGE = 250_000  # leads per phase-1 query
APPLY_CHUNK = 20_000  # changed leads per phase-2 write transaction
_LN2 = math.log(2.0)


@dataclass
class RescoreResult:
    leads: int = 0
    changed: int = 0
    seconds: float = 0.0
    qualified: list[int] = field(default_factory=list)


def _unix_seconds(col: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return cast(func.strftime("%s", col), Integer)  # whole seconds, like the Python bucket arithmetic
    return func.extract("epoch", col)


def weight(col: Any, sc: ScoreScale, dialect: str) -> Any:
    """1 / f(col) in SQL: what one live point earned at `col` adds to the stored column."""
    if sc.half_life_days <= 0:
        return literal(1.0)
    epoch_unix = (sc.epoch - UNIX_EPOCH).total_seconds()
    if dialect == "sqlite":
        days = func.julianday(col) - (epoch_unix / 86400.0 + 2440587.5)
    else:
        days = (func.extract("epoch", col) - epoch_unix) / 86400.0
    return func.exp(days * (_LN2 / sc.half_life_days))


def _bucket(rule: CompiledRule, dialect: str) -> Any:
    if rule.window_s is None:
        return literal(0)
    return func.floor(_unix_seconds(activity.c.at, dialect) / float(rule.window_s))


def _in_range(col: Any, lo: int | None, hi: int | None) -> Any:
    """`col BETWEEN lo AND hi`, written `col + 0` so the planner never prefers a lead-id index: a lead range
    holds every kind of activity, while the kind-first index holds just the rows the rule can match."""
    return true() if lo is None or hi is None else (col + 0).between(lo, hi)


def _rule_grants(rule: CompiledRule, lo: int | None, hi: int | None, sc: ScoreScale, dialect: str) -> Any:
    where = and_(rule.sql_filter(), _in_range(activity.c.lead_id, lo, hi))
    w = weight(activity.c.at, sc, dialect)
    if rule.cap is None:
        return select(activity.c.lead_id, (literal(rule.points) * w).label("amt")).where(where)
    if rule.distinct:
        # repeats of one (message, URL) in a bucket count once: keep the first of each, then rank those
        first = func.row_number().over(
            partition_by=[activity.c.lead_id, _bucket(rule, dialect), func.coalesce(activity.c.outbox_id, 0),
                          func.coalesce(activity.c.url, ""),
                          # naming neither a message nor a URL: never a repeat (CompiledRule.repeat_key)
                          case((and_(activity.c.outbox_id.is_(None), func.coalesce(activity.c.url, "") == ""),
                                activity.c.id), else_=0)],
            order_by=[activity.c.at, activity.c.id])
        firsts = select(activity.c.lead_id, activity.c.at, activity.c.id, _bucket(rule, dialect).label("b"),
                        first.label("rn1")).where(where).subquery(f"f{rule.id}")
        rn_d = func.row_number().over(partition_by=[firsts.c.lead_id, firsts.c.b], order_by=[firsts.c.at, firsts.c.id])
        ranked = (select(firsts.c.lead_id, rn_d.label("rn"), weight(firsts.c.at, sc, dialect).label("w"))
                  .where(firsts.c.rn1 == 1).subquery(f"r{rule.id}"))
    else:
        rn = func.row_number().over(partition_by=[activity.c.lead_id, _bucket(rule, dialect)],
                                    order_by=[activity.c.at, activity.c.id])
        ranked = select(activity.c.lead_id, rn.label("rn"), w.label("w")).where(where).subquery(f"r{rule.id}")
    step = abs(rule.points)
    left = literal(rule.cap) - (ranked.c.rn - 1) * step
    g = case((left >= step, step), (left <= 0, 0.0), else_=left)
    sign = 1.0 if rule.points >= 0 else -1.0
    return select(ranked.c.lead_id, (g * sign * ranked.c.w).label("amt"))


def totals_select(rules: RuleSet, lo: int | None, hi: int | None, sc: ScoreScale, dialect: str) -> Any:
    """(lead_id, stored total) for every lead (in [lo, hi] if given) with rule grants or adjustments,
    *ignoring resets*: leads with a reset are recomputed exactly in Python (`compute_changes`)."""
    parts: list[Any] = [_rule_grants(r, lo, hi, sc, dialect) for r in rules.rules]
    parts.append(select(score_event.c.lead_id, (score_event.c.points * weight(score_event.c.at, sc, dialect))
                        .label("amt"))
                 .where(score_event.c.kind == "adjust", _in_range(score_event.c.lead_id, lo, hi)))
    u = union_all(*parts).subquery("grants")
    return select(u.c.lead_id, cast(func.sum(u.c.amt), Float).label("total")).group_by(u.c.lead_id)


@dataclass(frozen=True)
class RangeChanges:
    """Phase 1 output for one lead-id range: (lead_id, stored score in the snapshot, recomputed total) for
    the leads whose total differs, and the newest score_event id the snapshot saw."""

    lo: int
    hi: int
    rows: list[tuple[int, float, float]]
    last_event_id: int
    leads: int


def compute_changes(engine: Engine, rules: RuleSet, sc: ScoreScale, lo: int, hi: int) -> RangeChanges:
    """Phase 1 for [lo, hi] in its own read transaction (no write lock; safe to run in a worker thread)."""
    with engine.connect() as conn, conn.begin():
        g = totals_select(rules, lo, hi, sc, conn.dialect.name).subquery("g")
        total = func.coalesce(g.c.total, 0.0)
        q = (select(lead.c.id, lead.c.score, total).select_from(lead.outerjoin(g, g.c.lead_id == lead.c.id))
             .where(lead.c.id.between(lo, hi), func.abs(total - lead.c.score) > 1e-9 * (1 + func.abs(total)))
             .order_by(lead.c.id))
        rows = {int(i): (int(i), float(o), float(t)) for i, o, t in conn.execute(q)}
        # Leads with a score reset (recycled MQLs; few) are derived exactly by the per-lead history code.
        reset_ids = [int(r[0]) for r in conn.execute(
            select(score_event.c.lead_id).where(score_event.c.kind == "reset", score_event.c.lead_id.between(lo, hi))
            .distinct())]
        if reset_ids:
            stored = dict(conn.execute(select(lead.c.id, lead.c.score).where(lead.c.id.in_(reset_ids))).all())
            for lid, changes in histories(conn, reset_ids, rules).items():
                old, new = float(stored[lid]), recompute_stored(changes, sc)
                rows.pop(lid, None)
                if abs(new - old) > 1e-9 * (1 + abs(new)):
                    rows[lid] = (lid, old, new)
        last = int(conn.execute(select(func.coalesce(func.max(score_event.c.id), 0))).scalar_one())
        n = int(conn.execute(select(func.count()).where(lead.c.id.between(lo, hi))).scalar_one())
    return RangeChanges(lo, hi, [rows[k] for k in sorted(rows)], last, n)


def apply_changes(conn: Connection, rows: list[tuple[int, float, float]], last_event_id: int) -> int:
    """Phase 2: `score = total + (score − old)`, so points scored since the snapshot (new activity,
    adjustments) stay on top of the recomputed total. A lead reset since the snapshot keeps its score
    (a reset sets an absolute value)."""
    if not rows:
        return 0
    reset_since = (select(score_event.c.id).where(score_event.c.lead_id == lead.c.id, score_event.c.kind == "reset",
                                                  score_event.c.id > last_event_id).exists())
    stmt = (update(lead).where(lead.c.id == bindparam("lid"), ~reset_since)
            .values(score=bindparam("total", type_=Float) + (lead.c.score - bindparam("old", type_=Float))))
    return int(conn.execute(stmt, [{"lid": i, "old": o, "total": t} for i, o, t in rows]).rowcount)


def rescore_all(engine: Engine, settings: Settings | ScoringSettings, clock: Clock,
                progress: Progress | None = None, *, range_size: int = RANGE, workers: int = 2) -> RescoreResult:
    """Rescore every lead: worker threads compute ranges of leads (read transactions, writers keep going),
    while this thread applies each finished range in short write transactions of `APPLY_CHUNK` leads with
    progress; finally account scores are refreshed and leads now over the MQL threshold qualify."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    s = scoring_settings(settings)
    started = time.perf_counter()
    with write_tx(engine) as conn:
        rules = load_rules(conn)  # seeds the defaults and the score epoch on first use
        sc = scale(conn, clock.now(), s)
        lo_id, hi_id, total = conn.execute(select(func.min(lead.c.id), func.max(lead.c.id), func.count())).one()
    result = RescoreResult(leads=int(total or 0))
    if progress:
        progress(0, result.leads)
    ranges = [(lo, lo + range_size - 1) for lo in range(int(lo_id), int(hi_id) + 1, range_size)] if total else []
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="nurture-rescore") as pool:
        futures = [pool.submit(compute_changes, engine, rules, sc, lo, hi) for lo, hi in ranges]
        for fut in futures:
            part = fut.result()
            for i in range(0, len(part.rows), APPLY_CHUNK):
                with write_tx(engine) as conn:
                    result.changed += apply_changes(conn, part.rows[i : i + APPLY_CHUNK], part.last_event_id)
            done += part.leads
            if progress:
                progress(done, result.leads)
    with write_tx(engine) as conn:
        now = clock.now()
        accounts.refresh(conn, None, now, s)
        result.qualified = mql.check_all(conn, now, s)
        meta.put(conn, "score_rescored_at", now.isoformat())
    result.seconds = time.perf_counter() - started
    return result


class RescoreJob:
    """A rescore running in a background thread (the CLI waits on it; the TUI polls `progress`)."""

    def __init__(self, engine: Engine, settings: Settings | ScoringSettings, clock: Clock,
                 on_progress: Progress | None = None) -> None:
        self.progress: tuple[int, int] = (0, 0)
        self.result: RescoreResult | None = None
        self.error: BaseException | None = None
        self._on_progress = on_progress
        self._thread = threading.Thread(target=self._run, args=(engine, settings, clock), name="nurture-rescore",
                                        daemon=True)

    def start(self) -> RescoreJob:
        self._thread.start()
        return self

    def _report(self, done: int, total: int) -> None:
        self.progress = (done, total)
        if self._on_progress:
            self._on_progress(done, total)

    def _run(self, engine: Engine, settings: Settings | ScoringSettings, clock: Clock) -> None:
        try:
            self.result = rescore_all(engine, settings, clock, self._report)
        except BaseException as exc:  # surfaced to the caller through wait()
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and (self.result is not None or self.error is not None)

    def wait(self, timeout: float | None = None) -> RescoreResult:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise TimeoutError("rescore still running")
        return self.result


def start_background(engine: Engine, settings: Settings | ScoringSettings, clock: Clock,
                     on_progress: Progress | None = None) -> RescoreJob:
    return RescoreJob(engine, settings, clock, on_progress).start()
