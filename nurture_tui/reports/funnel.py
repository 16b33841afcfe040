"""Sequence funnel: per published version and node, how many enrollments entered the node, wait at it now,
went yes / no (wait_for and branch nodes), exited at it and met the goal there; and per version, the goal
conversion of the enrollments that entered in the period.

Node figures come from the engine's per-node counters (`node_counter`, bumped in the same transaction as
each advance, so they are exact), and are totals since the version was published: they are not cut by the
period. The conversion line of each version is: enrollments entered in the period, of which goal met
(status goal), exited, finished (done), still in progress; goal conversion = goal / entered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, case, func, select

from ..store.tables import enrollment, node_counter
from .common import Report, Scope, make_report, rate, segment_leads
from .versions import versions

NAME = "funnel"
TITLE = "Sequence funnel by version"
COLUMNS = ["sequence", "version", "node", "kind", "entered", "waiting", "yes", "no", "exited", "goal",
           "goal_conversion"]
FIELDS = ("entered", "left", "yes", "no", "exited", "goal")


def load(conn: Connection, scope: Scope) -> Report:
    vers = versions(conn, scope)
    if not vers:
        return make_report(NAME, TITLE, scope, COLUMNS, [], empty="no published sequence versions"
                           + (f" of {scope.sequence_name!r}" if scope.sequence_name else ""))
    ids = [v.id for v in vers]
    nc = node_counter.c
    counts: dict[tuple[int, str], dict[str, int]] = {}
    for r in conn.execute(select(nc.version_id, nc.node_id, *[func.sum(nc[f]).label(f) for f in FIELDS])
                          .where(nc.version_id.in_(ids)).group_by(nc.version_id, nc.node_id)):
        counts[(int(r.version_id), r.node_id)] = {f: int(getattr(r, f) or 0) for f in FIELDS}
    e = enrollment.c
    where = [e.version_id.in_(ids), e.entered_at >= scope.period.since, e.entered_at < scope.period.until]
    seg = segment_leads(conn, scope)
    if seg is not None:
        where.append(e.lead_id.in_(seg))
    cohort: dict[int, dict[str, int]] = defaultdict(dict)
    for r in conn.execute(select(e.version_id, func.count().label("n"),
                                 func.sum(case((e.status == "goal", 1), else_=0)).label("goal"),
                                 func.sum(case((e.status == "exited", 1), else_=0)).label("exited"),
                                 func.sum(case((e.status == "done", 1), else_=0)).label("done"))
                          .where(*where).group_by(e.version_id)):
        cohort[int(r.version_id)] = {"n": int(r.n), "goal": int(r.goal or 0), "exited": int(r.exited or 0),
                                     "done": int(r.done or 0)}
    rows: list[dict[str, Any]] = []
    for v in vers:
        c = cohort.get(v.id, {"n": 0, "goal": 0, "exited": 0, "done": 0})
        rows.append({"sequence": v.sequence, "version": v.number, "node": "(entered in period)", "kind": "version",
                     "entered": c["n"], "waiting": c["n"] - c["goal"] - c["exited"] - c["done"], "yes": None,
                     "no": None, "exited": c["exited"], "goal": c["goal"],
                     "goal_conversion": rate(c["goal"], c["n"])})
        for node_id, node in v.compiled.nodes.items():
            k = counts.get((v.id, node_id), dict.fromkeys(FIELDS, 0))
            branching = node.kind in ("wait_for", "branch")
            rows.append({"sequence": v.sequence, "version": v.number, "node": node_id, "kind": node.kind,
                         "entered": k["entered"], "waiting": k["entered"] - k["left"],
                         "yes": k["yes"] if branching else None, "no": k["no"] if branching else None,
                         "exited": k["exited"], "goal": k["goal"], "goal_conversion": None})
    return make_report(NAME, TITLE, scope, COLUMNS, rows, notes=[
        "node rows: totals since the version was published (the engine's exact per-node counters)",
        "'(entered in period)' rows: enrollments that entered in the period; goal_conversion = goal / entered",
    ])
