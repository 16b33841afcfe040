"""Claim → execute → advance, one batch per transaction (docs/engine.md).

`run_batch` claims up to `limit` due enrollments, checks goal/exit rules, walks each one through as many
instantaneous nodes as it can (send, branch, split, action …) until it parks at a wait, a wait_for or a
deferred send, or leaves the sequence, then writes every effect — outbox rows, activity rows, score
changes, sf_outbox rows, webhook rows, node counters and the enrollment's new node/due_at — in the same
transaction. Nodes are executed a node at a time across the batch, so per-node lookups run once.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Connection, Engine, bindparam, update
from sqlalchemy.dialects.postgresql import JSONB

from ..activity import ActivityEvent
from ..config import Settings
from ..errors import NurtureError
from ..mail.compose import SendRequest, compose_outbox_rows
from ..scoring.service import apply_activities
from ..segments.materialize import refresh_for_leads
from ..store.engine import write_tx
from ..store.fastwrite import update_many
from ..store.tables import activity, adaptive_decision, enrollment, outbox
from .bulk import driver_cursor, insert_rows, insert_with_ids
from .claim import claim, paused_sequence_ids
from .context import Item, StepContext
from .enroll import recheck_segment_entry
from .executors import EXECUTORS
from .isolation import BrokenProgram, pause_broken, program
from .lifecycle import Live, goal_or_exit
from .plans import Plan, load_plan

MAX_BROKEN_RETRIES = 50  # programs paused for a broken reference before one batch gives up
MAX_ROUNDS = 64  # instantaneous nodes one enrollment may pass in one batch (loops need a wait)
_JSON_OR_NULL = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


@dataclass
class BatchResult:
    claimed: int = 0
    steps: int = 0
    sends: int = 0
    seconds: float = 0.0


def run_batch(engine: Engine, now: datetime, settings: Settings, limit: int) -> BatchResult:
    """One batch in one transaction. A program with a broken reference (engine/isolation.py) rolls the
    batch back, is paused with its error in a transaction of its own, and the batch runs again without it."""
    started = time.perf_counter()
    for _ in range(MAX_BROKEN_RETRIES):
        try:
            with write_tx(engine) as conn:
                result = process_due(conn, now, settings, limit)
            break
        except BrokenProgram as broken:
            with write_tx(engine) as conn:
                pause_broken(conn, broken.sequence_id, broken.name, broken.error, now)
    else:
        raise NurtureError(f"engine: {MAX_BROKEN_RETRIES} programs with broken references in one batch")
    result.seconds = time.perf_counter() - started
    return result


def run_due(
    engine: Engine, now_fn: Callable[[], datetime], settings: Settings, *, limit: int | None = None,
    max_batches: int | None = None, should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> int:
    """Run batches until nothing is due (or `max_batches`/`should_stop`); returns steps executed."""
    size = limit or settings.engine.batch_size
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        if should_stop is not None and should_stop():
            break
        res = run_batch(engine, now_fn(), settings, size)
        batches += 1
        total += res.steps
        if on_batch is not None and res.claimed:
            on_batch(res)
        if res.claimed < size:
            break
    return total


def process_due(conn: Connection, now: datetime, settings: Settings, limit: int) -> BatchResult:
    rows = claim(conn, now, limit, paused_sequence_ids(conn))
    if not rows:
        return BatchResult()
    ctx = StepContext(conn, now, settings)
    plans: dict[int, Plan] = {}
    items = []
    for r in rows:
        plan = plans.get(r.version_id)
        if plan is None:
            with program(r.sequence_id, f"#{r.sequence_id}"):
                plan = plans[r.version_id] = load_plan(conn, r.version_id)
        items.append(Item(r, plan))
    for it in items:
        if it.arrived and it.steps == 0 and it.node_id is not None:
            ctx.counters.bump(it.version_id, it.node_id, "entered")  # a new enrollment reaches its start
    _check_rules(ctx, items)
    pending = [it for it in items if not it.finished]
    for _ in range(MAX_ROUNDS):
        if not pending:
            break
        groups: dict[tuple[int, str], list[Item]] = defaultdict(list)
        for it in pending:
            groups[(it.version_id, it.node_id or "")].append(it)
        for (_v, node_id), group in groups.items():
            plan = group[0].plan
            node = plan.nodes.get(node_id)
            if node is None:  # a version without this node (should not happen: versions are immutable)
                for it in group:
                    ctx.end(it, "exited", f"unknown node {node_id!r}")
                continue
            with program(plan.sequence_id, plan.sequence_name):
                EXECUTORS[node.kind](ctx, plan, node, group)
        pending = [it for it in pending if not it.finished and it.arrived and it.status == "active"]
    _flush(ctx, items)
    return BatchResult(claimed=len(rows), steps=ctx.steps, sends=len(ctx.sends))


def _check_rules(ctx: StepContext, items: list[Item]) -> None:
    ruled = [it for it in items if it.plan.has_rules]
    if not ruled:
        return
    lives = [Live(it.id, it.lead_id, it.sequence_id, it.version_id, it.node_id, it.steps) for it in ruled]
    verdicts = goal_or_exit(ctx.conn, lives, ctx.now, isolate=False)
    for it in ruled:
        if it.id in verdicts:
            status, reason = verdicts[it.id]
            ctx.end(it, status, reason)


def _flush(ctx: StepContext, items: list[Item]) -> None:
    conn = ctx.conn
    now = ctx.now
    # The advance first: its rows are this batch's alone (claimed), while the outbox and activity inserts'
    # rollup triggers lock rows that every worker's batch updates, held until commit; the shorter that
    # stretch, the less parallel PostgreSQL workers wait on each other.
    changed = [it for it in items if it.changed]
    if changed and conn.dialect.name == "sqlite":
        update_many(conn, enrollment, [
            {"node_id": it.node_id, "status": it.status, "due_at": it.due_at, "wait_for": it.wait_for,
             "node_entered_at": it.node_entered_at, "steps": it.steps,
             "exited_at": ctx.now if it.finished else None, "exit_reason": it.reason, "id": it.id}
            for it in changed
        ])
    elif changed and conn.dialect.driver == "psycopg":
        _advance_pg(conn, ctx.now, changed)
    elif changed:
        conn.execute(_ADVANCE, [
            {"eid": it.id, "p_node": it.node_id, "p_status": it.status, "p_due": it.due_at, "p_wf": it.wait_for,
             "p_entered": it.node_entered_at, "p_steps": it.steps,
             "p_exited": ctx.now if it.finished else None, "p_reason": it.reason}
            for it in changed
        ])
    sent: list[ActivityEvent] = []
    if ctx.sends:
        requests = [
            SendRequest(lead_id=s.item.lead_id, template_name=s.template, category=s.category,
                        enrollment_id=s.item.id, sequence_id=s.item.sequence_id, node_id=s.node,
                        idempotency_key=s.key)
            for s in ctx.sends
        ]
        rows = compose_outbox_rows(conn, requests, ctx.settings, now)
        by_key = {s.key: s for s in ctx.sends}
        if rows:
            ids = insert_with_ids(conn, outbox, rows)
            for oid, row in zip(ids, rows, strict=True):
                if row["status"] != "queued":
                    continue  # recorded as failed (unknown template, bad address): nothing was sent
                s = by_key[row["idempotency_key"]]
                sent.append(ActivityEvent(row["lead_id"], "sent", now, s.item.sequence_id, s.item.version_id,
                                          s.node, row.get("template_id"), oid))
    if sent:
        ids = insert_with_ids(conn, activity, [a.row() for a in sent])
        # scoring records the activity ids (caps count each activity once)
        apply_activities(conn, [a.stored(aid, now) for a, aid in zip(sent, ids, strict=True)], now, ctx.settings)
    if ctx.activities:
        insert_rows(conn, activity, [a.row() for a in ctx.activities])
    if ctx.decisions:  # adaptive splits and optimal send times, with their explanation
        insert_rows(conn, adaptive_decision, ctx.decisions)
    ctx.counters.flush(conn)
    if ctx.touched_leads:  # actions changed these leads: segments and entry see it at once
        touched = sorted(ctx.touched_leads)
        refresh_for_leads(conn, touched, ctx.now)
        recheck_segment_entry(conn, touched, ctx.now)


# PostgreSQL: the whole batch's advance in one statement, each column as one array parameter (one round
# trip, one statement text, so psycopg prepares it on the server).
_PG_ADVANCE = (
    "UPDATE enrollment AS e SET node_id = u.node_id, status = u.status, due_at = u.due_at, "
    "wait_for = u.wait_for::jsonb, node_entered_at = u.entered, steps = u.steps, exited_at = u.exited, "
    "exit_reason = u.reason "
    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::timestamptz[], "
    "%s::integer[], %s::timestamptz[], %s::text[]) AS u(id, node_id, status, due_at, wait_for, entered, steps, "
    "exited, reason) WHERE e.id = u.id"
)


def _advance_pg(conn: Connection, now: datetime, changed: list[Item]) -> None:
    dumps = json.dumps
    params = (
        [it.id for it in changed], [it.node_id for it in changed], [it.status for it in changed],
        [it.due_at for it in changed], [None if it.wait_for is None else dumps(it.wait_for) for it in changed],
        [it.node_entered_at for it in changed], [it.steps for it in changed],
        [now if it.finished else None for it in changed], [it.reason for it in changed],
    )
    with driver_cursor(conn, _PG_ADVANCE) as cur:
        cur.execute(_PG_ADVANCE, params)


_ADVANCE = (
    update(enrollment)
    .where(enrollment.c.id == bindparam("eid"))
    .values(node_id=bindparam("p_node"), status=bindparam("p_status"), due_at=bindparam("p_due"),
            wait_for=bindparam("p_wf", type_=_JSON_OR_NULL), node_entered_at=bindparam("p_entered"),
            steps=bindparam("p_steps"), exited_at=bindparam("p_exited"), exit_reason=bindparam("p_reason"))
)
