"""The engine side of adaptive splits and optimal send times (docs/adaptive.md).

Only nodes that ask for it come here, so plain splits and sends keep their hot path. Per node and batch
the evidence is read once (settled arm counts, audiences, hour histograms), every lead is decided with the
pure functions of sequences/adaptive.py and sequences/send_time.py, and each decision is recorded with
its explanation (an adaptive_decision row, written with the batch's other effects).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..sequences import timing
from ..sequences.adaptive import AdaptiveSettings, decide, settings_of
from ..sequences.adaptive_store import (
    allocations,
    arm_counts,
    audiences,
    decision_row,
    group_histogram,
    lead_histograms,
    lead_personas,
)
from ..sequences.model import Node
from ..sequences.send_time import HourHistogram, best_time, pick_histogram
from .context import Item, StepContext
from .plans import Plan


def split_settings(plan: Plan, node: Node) -> AdaptiveSettings:
    """Parsed once per plan (versions are immutable)."""
    settings = plan.adaptive.get(node.id)
    if settings is None:
        assert node.step.split is not None
        settings = plan.adaptive[node.id] = settings_of(node.step.split)
    return settings


def adaptive_split(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    settings = split_settings(plan, node)
    names = [name for name, _w, _f in node.arms]
    firsts = {name: first for name, _w, first in node.arms}
    audience = audiences(ctx.conn, settings.audience, settings.segments, sorted({it.lead_id for it in items}))
    counts = arm_counts(ctx.conn, plan.sequence_id, node.id, settings.metric, ctx.now, settings.lookback)
    allocs = allocations(names, counts, settings, set(audience.values()))
    closes = ctx.now + settings.window
    for it in items:
        group = audience[it.lead_id]
        alloc = allocs[group]
        arm, how = decide(alloc, settings.seed, node.id, it.lead_id)
        detail = {**alloc.to_json(), "how": how, "metric": settings.metric}
        ctx.decisions.append(decision_row("split", plan.sequence_id, plan.version_id, node.id, it.id, it.lead_id,
                                          ctx.now, detail, arm=arm, audience=group, closes_at=closes))
        ctx.go(it, firsts[arm])


# -- send_time: optimal ------------------------------------------------------------------------------

STO_DONE = "sto"  # key in a parked send's wait_for: the optimal time was chosen, send when due


def sto_done(it: Item) -> bool:
    return isinstance(it.wait_for, dict) and bool(it.wait_for.get(STO_DONE))


def histograms(ctx: StepContext, plan: Plan, items: list[Item]) -> dict[int, HourHistogram]:
    """Per lead the histogram STO uses: its own, else its persona's, else the entry segment's."""
    defn = plan.definition
    window = defn.send_window
    ids = sorted({it.lead_id for it in items if not sto_done(it)})
    if not ids:
        return {}
    rows = ctx.leads(ids)

    def tz_of(lid: int) -> Any:
        row = rows.get(lid)
        return timing.lead_timezone(row, ctx.account_of(row), window)

    own = lead_histograms(ctx.conn, ids, tz_of, ctx.now)
    personas = lead_personas(ctx.conn, ids)
    cache = ctx.sto_groups
    entry_segment = defn.entry.segment if defn.entry.type == "segment" else None
    if ("segment", entry_segment) not in cache:
        cache[("segment", entry_segment)] = group_histogram(ctx.conn, segment_name=entry_segment, window=window,
                                                            now=ctx.now)
    out = {}
    for lid in ids:
        persona = personas.get(lid)
        if ("persona", persona) not in cache:
            cache[("persona", persona)] = group_histogram(ctx.conn, persona=persona, window=window, now=ctx.now)
        out[lid] = pick_histogram(own[lid], [cache[("persona", persona)], cache[("segment", entry_segment)]])
    return out


def optimal_time(ctx: StepContext, plan: Plan, node: Node, it: Item, hist: HourHistogram,
                 sent: list[datetime]) -> datetime:
    """When to send (≥ now, inside the window and caps, ≤ 24 h later than now = the plain slot); the
    decision is recorded with the histogram it used."""
    defn = plan.definition
    row = ctx.leads([it.lead_id]).get(it.lead_id)
    acct = ctx.account_of(row)
    tz = timing.lead_timezone(row, acct, defn.send_window)
    country = timing.lead_country(row, acct, defn.send_window)
    at = best_time(hist, ctx.now, tz, defn.send_window, defn.caps, country, sent)
    detail = {**hist.to_json(), "tz": str(tz), "plain": ctx.now.isoformat(), "chosen": at.isoformat(),
              "local_hour": at.astimezone(tz).hour}
    ctx.decisions.append(decision_row("send_time", plan.sequence_id, plan.version_id, node.id, it.id, it.lead_id,
                                      ctx.now, detail, send_at=at))
    return at
