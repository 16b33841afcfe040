"""One executor per node kind. Each takes every item of the batch sitting at one node, so lookups
(segment rules, suppression, caps, lead rows) run once per node per batch, not once per lead.

An executor decides, for each item, one of: `ctx.go(it, next)` (node done, move on), `ctx.park(it,
due_at, wait_for)` (hold here until due_at or an event) or `ctx.end(it, status, reason)` (leave).
Items that are parked and come due again have `it.arrived == False`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ..errors import NurtureError
from ..mail.suppression import suppressed_ids
from ..segments.compiler import matching_ids
from ..sequences import timing
from ..sequences.model import Node, choose_arm, parse_duration
from ..store.tables import outbox, template
from . import actions, adaptive_nodes
from .context import Item, SendRequestLite, StepContext
from .plans import Plan, branch_rule

Executor = Callable[[StepContext, Plan, Node, list[Item]], None]


def _tz(ctx: StepContext, plan: Plan, it: Item) -> Any:
    lead_row = ctx.leads([it.lead_id]).get(it.lead_id)
    return timing.lead_timezone(lead_row, ctx.account_of(lead_row), plan.definition.send_window)


# -- send --------------------------------------------------------------------------------------------

def _template_category(ctx: StepContext, name: str) -> str:
    cache = ctx.template_categories
    if name not in cache:
        cat = ctx.conn.execute(select(template.c.category).where(template.c.name == name)).scalar_one_or_none()
        cache[name] = cat or "marketing"
    return cache[name]


def _recent_sends(ctx: StepContext, lead_ids: list[int]) -> dict[int, list[datetime]]:
    """Send times per lead over the last week, across sequences (queued this batch included)."""
    since = ctx.now - timedelta(days=7)
    out: dict[int, list[datetime]] = defaultdict(list)
    rows = ctx.conn.execute(
        select(outbox.c.lead_id, outbox.c.created_at)
        .where(outbox.c.lead_id.in_(lead_ids), outbox.c.created_at > since)
    )
    for lid, at in rows:
        out[lid].append(at)
    wanted = set(lead_ids)
    for req in ctx.sends:  # sends queued earlier in this batch count too
        if req.item.lead_id in wanted:
            out[req.item.lead_id].append(ctx.now)
    return out


def send(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    spec = node.step.send
    assert spec is not None
    defn = plan.definition
    category = spec.category or defn.category or _template_category(ctx, spec.template)
    lead_ids = [it.lead_id for it in items]
    suppressed = suppressed_ids(ctx.conn, lead_ids, category, ctx.settings.compliance.required())
    window, caps = defn.send_window, defn.caps
    timed = window is not None or (caps is not None and (caps.per_day or caps.per_week))
    recent = _recent_sends(ctx, lead_ids) if caps is not None and (caps.per_day or caps.per_week) else {}
    if timed:
        ctx.leads(lead_ids)
    optimal = spec.send_time == "optimal"
    hours = adaptive_nodes.histograms(ctx, plan, [it for it in items if it.lead_id not in suppressed]) \
        if optimal else {}
    for it in items:
        if it.lead_id in suppressed:
            if defn.suppressed == "exit":
                ctx.end(it, "exited", "suppressed")
            else:
                ctx.go(it, node.next)
            continue
        if timed:
            lead_row = ctx.leads([it.lead_id]).get(it.lead_id)
            acct = ctx.account_of(lead_row)
            tz = timing.lead_timezone(lead_row, acct, window)
            country = timing.lead_country(lead_row, acct, window)
            slot = timing.next_allowed_send(window, caps, tz, country, ctx.now, recent.get(it.lead_id, ()))
            if slot is None:  # outside the window with policy `skip`
                ctx.go(it, node.next)
                continue
            if slot > ctx.now:
                reason = "window" if timing.next_send_time(window, tz, country, ctx.now) != ctx.now else "cap"
                # an optimal time already chosen stays chosen: the send goes at the next allowed slot
                ctx.park(it, slot, {"deferred": reason,
                                    **({adaptive_nodes.STO_DONE: True} if adaptive_nodes.sto_done(it) else {})})
                continue
        if optimal and not adaptive_nodes.sto_done(it):
            at = adaptive_nodes.optimal_time(ctx, plan, node, it, hours[it.lead_id], recent.get(it.lead_id, []))
            if at > ctx.now:
                ctx.park(it, at, {"deferred": "optimal", adaptive_nodes.STO_DONE: True})
                continue
        if timed:
            recent.setdefault(it.lead_id, []).append(ctx.now)
        ctx.sends.append(SendRequestLite(it, node.id, spec.template, category, f"e{it.id}:{node.id}:{it.steps}"))
        ctx.go(it, node.next)


# -- wait / wait_for ---------------------------------------------------------------------------------

def wait(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    spec = node.step.wait
    assert spec is not None
    fixed = parse_duration(spec.duration) if spec.duration is not None else None
    for it in items:
        if not it.arrived:
            ctx.go(it, node.next)
            continue
        until = ctx.now + fixed if fixed is not None else timing.wait_until(spec, _tz(ctx, plan, it), ctx.now)
        if until <= ctx.now:
            ctx.go(it, node.next)
        else:
            ctx.park(it, until)


def wait_for(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    spec = node.step.wait_for
    assert spec is not None
    window = parse_duration(spec.window) if spec.window else None
    for it in items:
        if it.arrived:
            deadline = ctx.now + window if window is not None else None
            ctx.park(it, deadline, {
                "events": [m.kind for m in spec.events], "mode": spec.mode, "since": ctx.now.isoformat(),
                "deadline": deadline.isoformat() if deadline else None, "outcome": None,
            })
            continue
        outcome = "yes" if isinstance(it.wait_for, dict) and it.wait_for.get("outcome") == "yes" else "no"
        ctx.counters.bump(it.version_id, node.id, outcome)
        ctx.go(it, node.yes if outcome == "yes" else node.no)


# -- branch / split / exit ---------------------------------------------------------------------------

def branch(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    rule = branch_rule(ctx.conn, plan, node)
    hits = matching_ids(ctx.conn, rule, sorted({it.lead_id for it in items}), ctx.now)
    for it in items:
        outcome = "yes" if it.lead_id in hits else "no"
        ctx.counters.bump(it.version_id, node.id, outcome)
        ctx.go(it, node.yes if outcome == "yes" else node.no)


def split_arm(lead_id: int, node: Node) -> tuple[str, str | None]:
    """The arm a lead takes (drawn exactly as the simulator draws it) and the arm's first node id."""
    name = choose_arm(node, lead_id)
    first = next(f for arm, _w, f in node.arms if arm == name)
    return name, first


def split(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    if node.step.split is not None and node.step.split.adaptive:
        adaptive_nodes.adaptive_split(ctx, plan, node, items)
        return
    for it in items:
        _name, first = split_arm(it.lead_id, node)
        ctx.go(it, first)


def exit_(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    spec = node.step.exit
    reason = spec.reason if spec else "exit step"
    for it in items:
        ctx.end(it, "exited", reason)


def action(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    spec = node.step.action
    assert spec is not None
    for it in items:
        if spec.type in actions.CHANGES_LEAD:
            ctx.touched_leads.add(it.lead_id)
        try:
            actions.run(ctx, plan, node, spec, it)
        except NurtureError as exc:  # a bad setting (unknown user, …) stops this lead, not the batch
            ctx.end(it, "exited", f"error: {exc}"[:200])
            continue
        ctx.go(it, node.next)


EXECUTORS: dict[str, Executor] = {
    "send": send, "wait": wait, "wait_for": wait_for, "branch": branch, "split": split,
    "action": action, "exit": exit_,
}
