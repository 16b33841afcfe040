"""Split tests: per `split` node, its arms compared on open, click and goal.

A lead is in arm X of a split when it was sent a message from a send step inside arm X in the period (the
arm is drawn per lead deterministically, so a lead is only ever in one arm of a split). Per arm: n (leads),
opened (leads who opened one of those messages, bots excluded), clicked (likewise), goal (leads whose
enrollment in that version met the goal). Two arms are compared with a pooled two-proportion z-test, more
arms with Pearson's chi-squared test (k−1 degrees of freedom); both two-sided, significant at p < 0.05.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, select

from ..store.tables import activity, enrollment, lead_send_stat
from .common import Report, Scope, has, make_report, rate, segment_leads
from .stats import TestResult, chi_squared, two_proportion_z
from .versions import VersionInfo, versions

NAME = "splits"
TITLE = "Split tests"
COLUMNS = ["sequence", "version", "split", "arm", "weight", "n", "opened", "open_rate", "clicked", "click_rate",
           "goal", "goal_rate", "p_open", "p_click", "p_goal"]
METRICS = (("opened", "open"), ("clicked", "click"), ("goal", "goal"))
ALPHA = 0.05


def _arm_nodes(v: VersionInfo, split_id: str) -> list[tuple[str, int, list[str]]]:
    node = v.compiled.nodes[split_id]
    out = []
    for j, (name, weight, _first) in enumerate(node.arms):
        prefix = f"{node.path}.split.arms[{j}]."
        out.append((name, weight, [n.id for n in v.compiled.nodes.values()
                                   if n.path.startswith(prefix) and n.kind == "send"]))
    return out


def test(successes: list[int], totals: list[int]) -> TestResult:
    if len(totals) == 2:
        return two_proportion_z(successes[0], totals[0], successes[1], totals[1])
    return chi_squared(successes, totals)


def verdict(label: str, metric: str, arms: list[dict[str, Any]], result: TestResult) -> str:
    """E.g. "welcome v2 split ab, goal: arm B leads by 2.1 pts, p = 0.03, n = 4,210 (significant)"."""
    n = sum(a["n"] for a in arms)
    rates = sorted(((a[f"{metric}_rate"] or 0.0, a["arm"]) for a in arms if a["n"]), reverse=True)
    if len(rates) < 2:
        return f"{label}, {metric}: fewer than two arms with leads (n = {n:,}); nothing to compare"
    (best, leader), (second, _) = rates[0], rates[1]
    if result.p_value is None:
        return f"{label}, {metric}: no difference to test (every arm {best:.1f} %, n = {n:,})"
    p = result.p_value
    ptxt = "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"
    if p < ALPHA:
        return (f"{label}, {metric}: arm {leader} leads by {best - second:.1f} pts, {ptxt}, n = {n:,} "
                f"({result.method}; significant)")
    return (f"{label}, {metric}: no significant difference (arm {leader} ahead by {best - second:.1f} pts, "
            f"{ptxt}, n = {n:,}, {result.method})")


def _per_lead(v: VersionInfo, arms: list[tuple[str, int, list[str]]], scope: Scope, seg: Any, scan: bool) -> Any:
    """Per (arm, lead) sent a message from the arm's send steps in the period: whether one of those messages
    was opened / clicked. From the `lead_send_stat` rollup (exact: kept by triggers, see store/rollups.py) or,
    with `scan`, from the activity log itself (what the rollup must always equal)."""
    send_nodes = [n for _name, _w, nodes in arms for n in nodes]
    if not scan:
        s = lead_send_stat.c
        arm_of = case(*[(s.node_id.in_(nodes), name) for name, _w, nodes in arms if nodes])
        where = [s.version_id == v.id, s.node_id.in_(send_nodes), s.day >= f"{scope.period.since:%Y-%m-%d}",
                 s.day < f"{scope.period.until:%Y-%m-%d}"]
        if seg is not None:
            where.append(s.lead_id.in_(seg))
        return (select(arm_of.label("arm"), s.lead_id, func.max(case((s.opened > 0, 1), else_=0)).label("opened"),
                       func.max(case((s.clicked > 0, 1), else_=0)).label("clicked"))
                .where(*where).group_by(arm_of, s.lead_id).subquery())
    a = activity.c
    arm_of = case(*[(a.node_id.in_(nodes), name) for name, _w, nodes in arms if nodes])
    o2 = activity.alias("o2")
    opened = has(o2.c.outbox_id == a.outbox_id, o2.c.kind == "open", o2.c.bot.is_(False))
    clicked = has(o2.c.outbox_id == a.outbox_id, o2.c.kind == "click", o2.c.bot.is_(False))
    where = [a.version_id == v.id, a.kind == "sent", a.node_id.in_(send_nodes),
             a.at >= scope.period.since, a.at < scope.period.until]
    if seg is not None:
        where.append(a.lead_id.in_(seg))
    return (select(arm_of.label("arm"), a.lead_id, func.max(case((opened, 1), else_=0)).label("opened"),
                   func.max(case((clicked, 1), else_=0)).label("clicked"))
            .where(*where).group_by(arm_of, a.lead_id).subquery())


def arm_rows(conn: Connection, scope: Scope, *, scan: bool = False) -> list[list[dict[str, Any]]]:
    """Each split's arms in the period (n, opened, clicked, goal and their rates), one list per split."""
    e = enrollment.c
    seg = segment_leads(conn, scope)
    out: list[list[dict[str, Any]]] = []
    for v in versions(conn, scope):
        for split_id, node in v.compiled.nodes.items():
            if node.kind != "split":
                continue
            arms = _arm_nodes(v, split_id)
            if not any(nodes for _name, _w, nodes in arms):
                continue
            per_lead = _per_lead(v, arms, scope, seg, scan)
            goal = has(e.lead_id == per_lead.c.lead_id, e.version_id == v.id, e.status == "goal")
            stats = {r.arm: r for r in conn.execute(
                select(per_lead.c.arm, func.count().label("n"), func.sum(per_lead.c.opened).label("opened"),
                       func.sum(per_lead.c.clicked).label("clicked"),
                       func.sum(case((goal, 1), else_=0)).label("goal")).group_by(per_lead.c.arm))}
            cells: list[dict[str, Any]] = []
            for name, weight, _nodes in arms:
                got = stats.get(name)
                n = int(got.n) if got is not None else 0
                vals = {m: int(getattr(got, m) or 0) if got is not None else 0 for m, _ in METRICS}
                cells.append({"sequence": v.sequence, "version": v.number, "split": split_id, "arm": name,
                                 "weight": weight, "n": n, **vals,
                                 **{f"{lbl}_rate": rate(vals[m], n) for m, lbl in METRICS}})
            if any(r["n"] for r in cells):
                out.append(cells)
    return out


def load(conn: Connection, scope: Scope) -> Report:
    rows: list[dict[str, Any]] = []
    summary: list[str] = []
    for arms in arm_rows(conn, scope):
        first = arms[0]
        label = f"{first['sequence']} v{first['version']} split {first['split']}"
        for m, lbl in METRICS:
            res = test([r[m] for r in arms], [r["n"] for r in arms])
            for r in arms:
                r[f"p_{lbl}"] = None if res.p_value is None else round(res.p_value, 4)
            summary.append(verdict(label, lbl, arms, res))
        rows += arms
    return make_report(NAME, TITLE, scope, COLUMNS, rows, summary=summary, notes=[
        "n = leads sent a message from a step inside the arm in the period; rates are % of n",
        "two arms: pooled two-proportion z-test; more: Pearson chi-squared (k-1 df); significant at p < 0.05",
    ], empty="no split arm sent anything in the period" + (f" in {scope.sequence_name!r}" if scope.sequence_name
                                                         else ""))
