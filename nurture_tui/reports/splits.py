"""Split tests: per `split` node, its arms compared on open, click and goal.

Each arm's cohort is the leads that entered it in the period: their first message from a send step inside
the arm was sent in the period (the arm is drawn per lead deterministically, so a lead is only ever in one arm
of a split, and counted once, in the period it entered). Per arm: n (leads), opened (of them, those who opened
any of the arm's messages, bots excluded, whenever), clicked (likewise), goal (those whose enrollment in that
version met the goal). Two arms are compared with a pooled two-proportion z-test, more arms with Pearson's
chi-squared test (k−1 degrees of freedom); both two-sided, significant at p < 0.05. Adaptive splits
(docs/adaptive.md) also get a summary line per audience: the traffic share each arm gets now and its posterior
mean with the 95 % interval.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, select

from ..store.tables import activity, enrollment, lead_send, send_cohort
from .adaptive import allocation_lines
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


Arms = list[tuple[str, int, list[str]]]


def _days(scope: Scope) -> tuple[str, str]:
    return f"{scope.period.since:%Y-%m-%d}", f"{scope.period.until:%Y-%m-%d}"


def _from_cells(conn: Connection, v: VersionInfo, arms: Arms, scope: Scope) -> dict[str, dict[str, int]]:
    """Arms of one send step each: their cohorts are sums of `send_cohort` cells over the period's days."""
    c = send_cohort.c
    since, until = _days(scope)
    arm_of = {nodes[0]: name for name, _w, nodes in arms if nodes}
    rows = conn.execute(select(c.node_id, func.sum(c.n), func.sum(c.opened), func.sum(c.clicked), func.sum(c.goal))
                        .where(c.version_id == v.id, c.node_id.in_(list(arm_of)), c.day >= since, c.day < until)
                        .group_by(c.node_id))
    return {arm_of[node]: dict(zip(("n", *(m for m, _ in METRICS)), map(int, vals), strict=True))
            for node, *vals in rows}


def _per_lead(v: VersionInfo, arms: Arms, seg: Any, scan: bool) -> Any:
    """Per (arm, lead) sent from the arm's send steps: the time (day, from the rollup) of its first message from
    the arm, and whether it opened / clicked any of them and met the version's goal. From `lead_send` (exact:
    kept by triggers, see store/rollups.py) or, with `scan`, from the log itself (what it must always equal)."""
    send_nodes = [n for _name, _w, nodes in arms for n in nodes]
    e = enrollment.c
    if not scan:
        s = lead_send.c
        arm_of = case(*[(s.node_id.in_(nodes), name) for name, _w, nodes in arms if nodes])
        where = [s.version_id == v.id, s.node_id.in_(send_nodes)]
        if seg is not None:
            where.append(s.lead_id.in_(seg))
        return (select(arm_of.label("arm"), s.lead_id, func.min(s.first_day).label("first"),
                       func.max(s.opened).label("opened"), func.max(s.clicked).label("clicked"),
                       func.max(s.goal).label("goal"))
                .where(*where).group_by(arm_of, s.lead_id).subquery())
    a = activity.c
    arm_of = case(*[(a.node_id.in_(nodes), name) for name, _w, nodes in arms if nodes])
    o2 = activity.alias("o2")

    def flag(cond: Any) -> Any:
        return func.max(case((cond, 1), else_=0))

    opened = has(o2.c.outbox_id == a.outbox_id, o2.c.kind == "open", o2.c.bot.is_(False))
    clicked = has(o2.c.outbox_id == a.outbox_id, o2.c.kind == "click", o2.c.bot.is_(False))
    goal = has(e.lead_id == a.lead_id, e.version_id == v.id, e.status == "goal")
    where = [a.version_id == v.id, a.kind == "sent", a.node_id.in_(send_nodes)]
    if seg is not None:
        where.append(a.lead_id.in_(seg))
    return (select(arm_of.label("arm"), a.lead_id, func.min(a.at).label("first"), flag(opened).label("opened"),
                   flag(clicked).label("clicked"), flag(goal).label("goal"))
            .where(*where).group_by(arm_of, a.lead_id).subquery())


def _from_leads(conn: Connection, v: VersionInfo, arms: Arms, scope: Scope, seg: Any, scan: bool
                ) -> dict[str, dict[str, int]]:
    per_lead = _per_lead(v, arms, seg, scan)
    since, until = (scope.period.since, scope.period.until) if scan else _days(scope)
    rows = conn.execute(select(per_lead.c.arm, func.count(), *[func.sum(per_lead.c[m]) for m, _ in METRICS])
                        .where(per_lead.c.first >= since, per_lead.c.first < until).group_by(per_lead.c.arm))
    return {arm: dict(zip(("n", *(m for m, _ in METRICS)), map(int, vals), strict=True)) for arm, *vals in rows}


def arm_rows(conn: Connection, scope: Scope, *, scan: bool = False) -> list[list[dict[str, Any]]]:
    """Each split's arms (one list per split): n = the leads that entered the arm in the period (were first
    sent a message from a send step inside it), and of them those that opened / clicked any of the arm's
    messages and met the version's goal. Arms of one send step each (the usual A/B test) read day cells; an
    arm with several send steps (or a segment) groups per lead to count each lead once."""
    seg = segment_leads(conn, scope)
    out: list[list[dict[str, Any]]] = []
    for v in versions(conn, scope):
        for split_id, node in v.compiled.nodes.items():
            if node.kind != "split":
                continue
            arms = _arm_nodes(v, split_id)
            if not any(nodes for _name, _w, nodes in arms):
                continue
            cells = not scan and seg is None and all(len(nodes) <= 1 for _name, _w, nodes in arms)
            stats = _from_cells(conn, v, arms, scope) if cells else _from_leads(conn, v, arms, scope, seg, scan)
            arm_stats: list[dict[str, Any]] = []
            for name, weight, _nodes in arms:
                got = stats.get(name, {})
                n = got.get("n", 0)
                vals = {m: got.get(m, 0) for m, _ in METRICS}
                arm_stats.append({"sequence": v.sequence, "version": v.number, "split": split_id, "arm": name,
                                  "weight": weight, "n": n, **vals,
                                  **{f"{lbl}_rate": rate(vals[m], n) for m, lbl in METRICS}})
            if any(r["n"] for r in arm_stats):
                out.append(arm_stats)
    return out


ADAPTIVE_NOTES = ["adaptive splits (weight 0): the summary shows each audience's traffic share now and every arm's "
                  "posterior mean [95 % interval]; `nurture sequences decisions` lists each decision with why"]


def _adaptive_lines(conn: Connection, scope: Scope) -> list[str]:
    """The current allocation of every adaptive split (learning spans versions: the newest version's nodes)."""
    lines: list[str] = []
    seen: set[int] = set()
    for v in sorted(versions(conn, scope), key=lambda v: -v.number):
        if v.sequence_id not in seen:
            seen.add(v.sequence_id)
            lines += allocation_lines(conn, v.sequence_id, f"{v.sequence} v{v.number}", v.compiled, scope.now)
    return lines


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
    adaptive = _adaptive_lines(conn, scope)
    summary += adaptive
    return make_report(NAME, TITLE, scope, COLUMNS, rows, summary=summary, notes=[*ADAPTIVE_NOTES[:len(adaptive[:1])],
        "n = leads that entered the arm in the period (their first message from a step inside it); opened, "
        "clicked, goal = of those leads, whenever; rates are % of n",
        "two arms: pooled two-proportion z-test; more: Pearson chi-squared (k-1 df); significant at p < 0.05",
    ], empty="no split arm sent anything in the period" + (f" in {scope.sequence_name!r}" if scope.sequence_name
                                                         else ""))
