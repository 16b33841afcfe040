"""Shared pieces of an enrollment's life outside the step executors: goal/exit checks, finishing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, null, update

from ..activity import ActivityEvent
from ..segments.compiler import matching_ids
from ..store.tables import enrollment
from .isolation import BrokenProgram, pause_broken, program
from .node_stats import CounterBatch
from .plans import load_plan


@dataclass
class Live:
    """An enrollment in flight, as the engine sees it."""

    id: int
    lead_id: int
    sequence_id: int
    version_id: int
    node_id: str | None
    steps: int


def goal_or_exit(conn: Connection, items: list[Live], now: datetime, *,
                 isolate: bool = True) -> dict[int, tuple[str, str]]:
    """Enrollments whose lead now meets the sequence goal (→ 'goal') or an exit rule (→ 'exited').

    A program whose goal or exit rule names something that is gone (engine/isolation.py): with `isolate`
    it is paused in this transaction and its enrollments get no verdict; without, `BrokenProgram` is
    raised (a batch rolls back and runs again without that program)."""
    by_version: dict[int, list[Live]] = defaultdict(list)
    for it in items:
        by_version[it.version_id].append(it)
    out: dict[int, tuple[str, str]] = {}
    for version_id, group in by_version.items():
        plan = load_plan(conn, version_id)
        if not plan.has_rules:
            continue
        lead_ids = sorted({it.lead_id for it in group})
        hits: dict[int, tuple[str, str]] = {}
        try:
            with program(plan.sequence_id, plan.sequence_name):
                for i, rule in reversed(list(enumerate(plan.exits))):
                    for lid in matching_ids(conn, rule, lead_ids, now):
                        hits[lid] = ("exited", f"exit_when[{i}]")
                if plan.goal is not None:
                    for lid in matching_ids(conn, plan.goal, lead_ids, now):
                        hits[lid] = ("goal", "goal met")  # a goal wins over an exit rule
        except BrokenProgram as broken:
            if not isolate:
                raise
            pause_broken(conn, broken.sequence_id, broken.name, broken.error, now)
            continue
        for it in group:
            if it.lead_id in hits:
                out[it.id] = hits[it.lead_id]
    return out


def finish(
    conn: Connection,
    finished: list[tuple[Live, str, str]],
    now: datetime,
    counters: CounterBatch,
    activities: list[ActivityEvent],
) -> None:
    """End enrollments outside a batch (an event met a goal or exit rule): status, counters, activity.
    The update is guarded by `steps`, so an enrollment a worker advanced meanwhile is left alone."""
    params = []
    for it, status, reason in finished:
        if it.node_id is not None:
            counters.bump(it.version_id, it.node_id, "left")
            if status in ("exited", "goal"):
                counters.bump(it.version_id, it.node_id, status)
        if status in ("exited", "goal"):
            activities.append(ActivityEvent(
                it.lead_id, status, now, sequence_id=it.sequence_id, version_id=it.version_id,
                node_id=it.node_id, meta={"reason": reason},
            ))
        params.append({"eid": it.id, "p_status": status, "p_reason": reason, "p_now": now,
                       "p_steps": it.steps})
    if params:
        write_finished(conn, params)


def write_finished(conn: Connection, params: list[dict[str, Any]]) -> None:
    stmt = (
        update(enrollment)
        .where(enrollment.c.id == bindparam("eid"), enrollment.c.steps == bindparam("p_steps"))
        .values(status=bindparam("p_status"), exit_reason=bindparam("p_reason"),
                exited_at=bindparam("p_now"), due_at=None, wait_for=null())
    )
    conn.execute(stmt, params)
