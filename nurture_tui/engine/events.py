"""The front door for engagement coming in: tracking web app, events API, mail dispatch and unsubscribes,
the Salesforce pull, bulk lead actions, the demo simulator.

`record_events(conn, events, now, settings)` runs inside the caller's transaction and:
1. inserts one `activity` row per event (bot-flagged rows are stored but trigger and score nothing);
2. scores the rest (`scoring.service.apply_activities`: points, MQL, MQA);
3. refreshes materialised segments for the affected leads;
4. wakes matching `wait_for` enrollments: `up_to` → due now with outcome yes, `exactly` → outcome yes
   recorded for the end of the window. Only events at or after the moment the lead reached the node count;
5. checks goal and exit rules of the affected leads' running enrollments;
6. re-checks entry: event-entry sequences whose event matches, and segment-entry sequences for these leads.

It sits on top of the engine's entry and lifecycle modules and of scoring and segments; none of them
imports it, so the areas that feed it events depend on it and not the other way round.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, literal_column, select, update

from ..activity import ActivityEvent
from ..batching import chunks
from ..config import Settings
from ..errors import ValidationError
from ..scoring.service import apply_activities
from ..segments.materialize import refresh_for_leads
from ..store.engine import write_tx
from ..store.models import ACTIVITY_KINDS
from ..store.tables import activity, activity_pending, enrollment
from .bulk import insert_rows, insert_with_ids
from .enroll import enroll_from_events, recheck_segment_entry
from .lifecycle import Live, finish, goal_or_exit
from .matching import TemplateNames, event_matches
from .node_stats import CounterBatch
from .plans import Plan, load_plan

#: Kinds that count as engagement (update lead.last_activity_at).
ENGAGEMENT_KINDS = frozenset(
    {"open", "click", "form", "page_view", "reply", "meeting", "campaign_response", "opportunity"}
)


def record_events(conn: Connection, events: Sequence[ActivityEvent], now: datetime, settings: Settings, *,
                  defer_effects: bool = False) -> list[int]:
    """Record engagement events; returns the new activity ids in input order. With `defer_effects` only
    step 1 runs: the non-bot rows are listed in `activity_pending` and `apply_pending` applies steps 2–6 in a
    later transaction (the PostgreSQL tracking writer: a hit is answered once its row is committed)."""
    if not events:
        return []
    rows = [_row(e, now, f"events[{i}]") for i, e in enumerate(events)]
    ids = insert_with_ids(conn, activity, rows)
    live = [e.stored(aid, row["at"]) for aid, row, e in zip(ids, rows, events, strict=True) if not e.bot]
    if not live:
        return ids
    if defer_effects:
        insert_rows(conn, activity_pending, [{"activity_id": a.id} for a in live])
    else:
        apply_events(conn, live, now, settings)
    return ids


#: One applier of pending effects at a time across processes: a PostgreSQL advisory lock on (this key, the
#: workspace's schema), so workspaces sharing a database don't wait for each other.
_APPLIER_LOCK = 0x6E757274
_APPLIER_KEY: tuple[Any, Any] = (literal_column(str(_APPLIER_LOCK)), func.hashtext(func.current_schema()))


def apply_pending(conn: Connection, now: datetime, settings: Settings, limit: int = 2000, *,
                  wait: bool = False, upto: int | None = None) -> int:
    """Apply the effects of up to `limit` pending activities (oldest first) and unlist them, in the caller's
    transaction; returns how many. On PostgreSQL another process applying at the moment makes this a no-op
    (0), or with `wait` waits for it to finish, so effects are applied in one order, as if recorded one batch
    after another. `upto`: only activities with ids up to this one."""
    if conn.dialect.name == "postgresql":
        if wait:
            conn.execute(select(func.pg_advisory_xact_lock(*_APPLIER_KEY)))
        elif not conn.execute(select(func.pg_try_advisory_xact_lock(*_APPLIER_KEY))).scalar_one():
            return 0
    a = activity.c
    q = (select(a.id, a.lead_id, a.kind, a.at, a.sequence_id, a.version_id, a.node_id, a.template_id, a.outbox_id,
                a.url, a.bot, a.meta)
         .join(activity_pending, activity_pending.c.activity_id == a.id).order_by(a.id).limit(limit))
    if upto is not None:
        q = q.where(activity_pending.c.activity_id <= upto)
    rows = conn.execute(q).all()
    if not rows:
        return 0
    live = [ActivityEvent(r.lead_id, r.kind, r.at, r.sequence_id, r.version_id, r.node_id, r.template_id,
                          r.outbox_id, r.url, r.bot, r.meta or {}, None, r.id) for r in rows]
    apply_events(conn, live, now, settings)
    for part in chunks([r.id for r in rows]):
        conn.execute(delete(activity_pending).where(activity_pending.c.activity_id.in_(part)))
    return len(rows)


def apply_all_pending(engine: Engine, now_fn: Callable[[], datetime], settings: Settings,
                      limit: int = 2000, *, grace: float = 0.0) -> int:
    """Apply the effects of every activity pending now, each batch in its own transaction (waiting for an
    applier at work). The scheduler calls it before each run, so a click answered before the tick has woken
    its `wait_for` and met its goals by the time the run claims. With `grace`, first give the tracking
    writer's own applier (another process: `nurture daemon --http`'s writer process) up to that many
    seconds to do it — mere polling, so the effects' Python work stays off this process. Activities pending
    later are left to that applier (or the next run). Nothing pending costs one read."""
    def pending_ids() -> tuple[int | None, int | None]:
        with engine.connect() as conn:
            row = conn.execute(select(func.min(activity_pending.c.activity_id),
                                      func.max(activity_pending.c.activity_id))).one()
        return row[0], row[1]

    _, upto = pending_ids()
    if upto is None:
        return 0
    deadline = time.monotonic() + grace  # clock-ok: a real-time wait for another process
    while grace and time.monotonic() < deadline:  # clock-ok
        time.sleep(0.02)
        oldest, _ = pending_ids()
        if oldest is None or oldest > upto:
            return 0
    total = 0
    while True:
        with write_tx(engine) as conn:
            n = apply_pending(conn, now_fn(), settings, limit, wait=True, upto=upto)
        total += n
        if n < limit:
            return total


def unlist_oldest_pending(conn: Connection) -> int | None:
    """Give up on the oldest pending activity's effects (it failed alone); returns its id (None: none)."""
    aid = conn.execute(select(func.min(activity_pending.c.activity_id))).scalar()
    if aid is not None:
        conn.execute(delete(activity_pending).where(activity_pending.c.activity_id == aid))
    return None if aid is None else int(aid)


def apply_events(conn: Connection, live: list[ActivityEvent], now: datetime, settings: Settings) -> None:
    """Steps 2–6 for recorded, non-bot events (each carrying its activity id and time)."""
    apply_activities(conn, live, now, settings, touch=_latest_engagement(live))
    lead_ids = sorted({a.lead_id for a in live})
    refresh_for_leads(conn, lead_ids, now)
    counters = CounterBatch()
    acts: list[ActivityEvent] = []
    wake_waiting(conn, live, now)
    _check_rules(conn, lead_ids, now, counters, acts)
    enroll_from_events(conn, live, now)
    recheck_segment_entry(conn, lead_ids, now)
    insert_rows(conn, activity, [a.row() for a in acts])
    counters.flush(conn)


def _row(event: ActivityEvent, now: datetime, where: str) -> dict[str, Any]:
    """The event's `activity` row, refusing what the table must not hold."""
    if event.kind not in ACTIVITY_KINDS:
        raise ValidationError(f"{where}.kind", f"unknown activity kind {event.kind!r}")
    if not isinstance(event.lead_id, int):
        raise ValidationError(f"{where}.lead_id", "a lead id (integer) is required")
    row = event.row()
    at = event.at or now
    if at.tzinfo is None:
        raise ValidationError(f"{where}.at", "timestamp must be timezone-aware")
    row["at"] = at
    row["bot"] = bool(event.bot)
    row["meta"] = event.meta or {}
    return row


def _latest_engagement(live: list[ActivityEvent]) -> dict[int, datetime]:
    """Each lead's latest engagement in the batch: its new `last_activity_at` (moved forward only)."""
    latest: dict[int, datetime] = {}
    for a in live:
        lid, at = a.lead_id, a.at
        if at is not None and a.kind in ENGAGEMENT_KINDS and (lid not in latest or at > latest[lid]):
            latest[lid] = at
    return latest


# -- wait_for wake -----------------------------------------------------------------------------------

def wake_waiting(conn: Connection, live: list[ActivityEvent], now: datetime) -> int:
    """Set matching `wait_for` outcomes; returns how many enrollments were woken."""
    by_lead: dict[int, list[ActivityEvent]] = defaultdict(list)
    for a in live:
        by_lead[a.lead_id].append(a)
    e = enrollment.c
    waiting = conn.execute(
        select(e.id, e.lead_id, e.version_id, e.sequence_id, e.node_id, e.steps, e.wait_for, e.node_entered_at)
        .where(e.lead_id.in_(list(by_lead)), e.status == "waiting", e.wait_for.is_not(None))
    ).all()
    names = TemplateNames(conn)
    params = []
    for row in waiting:
        wf = row.wait_for
        if not isinstance(wf, dict) or wf.get("outcome") == "yes" or "events" not in wf:
            continue
        plan = load_plan(conn, row.version_id)
        node = plan.nodes.get(row.node_id or "")
        if node is None or node.step.wait_for is None:
            continue
        matches = node.step.wait_for.events
        since = row.node_entered_at
        hit = next((a for a in by_lead[row.lead_id]
                    if (since is None or (a.at is not None and a.at >= since))
                    and any(event_matches(m, a, row.sequence_id, names) for m in matches)), None)
        if hit is None:
            continue
        new_wf = {**wf, "outcome": "yes", "activity_id": hit.id}
        up_to = node.step.wait_for.mode == "up_to" or node.step.wait_for.window is None
        params.append({"eid": row.id, "p_steps": row.steps, "p_wf": new_wf, "p_up_to": up_to})
    woken = [p for p in params if p["p_up_to"]]
    exactly = [p for p in params if not p["p_up_to"]]
    guard = (e.id == bindparam("eid")) & (e.steps == bindparam("p_steps")) & (e.status == "waiting")
    if woken:
        conn.execute(update(enrollment).where(guard).values(wait_for=bindparam("p_wf"), due_at=now),
                     [{k: v for k, v in p.items() if k != "p_up_to"} for p in woken])
    if exactly:
        conn.execute(update(enrollment).where(guard).values(wait_for=bindparam("p_wf")),
                     [{k: v for k, v in p.items() if k != "p_up_to"} for p in exactly])
    return len(params)


# -- goal / exit on events ---------------------------------------------------------------------------

def check_rules_for_leads(conn: Connection, lead_ids: list[int], now: datetime) -> int:
    """Goal and exit rules of these leads' live enrollments, now (after a change to the leads' data:
    engine/recheck.py); finishes the enrollments that meet one. Returns how many finished."""
    if not lead_ids:
        return 0
    counters = CounterBatch()
    acts: list[ActivityEvent] = []
    finished = _check_rules(conn, lead_ids, now, counters, acts)
    insert_rows(conn, activity, [a.row() for a in acts])
    counters.flush(conn)
    return finished


def _check_rules(
    conn: Connection, lead_ids: list[int], now: datetime, counters: CounterBatch, acts: list[ActivityEvent]
) -> int:
    e = enrollment.c
    rows = conn.execute(
        select(e.id, e.lead_id, e.sequence_id, e.version_id, e.node_id, e.steps)
        .where(e.lead_id.in_(lead_ids), e.status.in_(("active", "waiting")))
    ).all()
    items = [Live(r.id, r.lead_id, r.sequence_id, r.version_id, r.node_id, r.steps) for r in rows]
    items = [it for it in items if _plan_has_rules(conn, it.version_id)]
    if not items:
        return 0
    verdicts = goal_or_exit(conn, items, now)
    done = [(it, *verdicts[it.id]) for it in items if it.id in verdicts]
    if done:
        finish(conn, done, now, counters, acts)
    return len(done)


def _plan_has_rules(conn: Connection, version_id: int) -> bool:
    plan: Plan = load_plan(conn, version_id)
    return plan.has_rules
