"""The engine side of adaptive splits and optimal send times (docs/adaptive.md).

Only nodes that ask for it come here, so plain splits and sends keep their hot path. Per node and batch
the evidence is read once (settled arm counts, audiences, hour histograms), every lead is decided with the
pure functions of sequences/adaptive.py and sequences/send_time.py, and each decision is recorded with
its explanation (an adaptive_decision row, written with the batch's other effects).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from ..sequences import timing
from ..sequences.adaptive import AdaptiveSettings, decide, settings_of
from ..sequences.adaptive_store import Evidence, arm_evidence, decision_row, evidence, sto_histograms
from ..sequences.model import Node
from ..sequences.send_time import HourHistogram, best_time
from .context import Item, StepContext
from .plans import Plan


def split_settings(plan: Plan, node: Node) -> AdaptiveSettings:
    """Parsed once per plan (versions are immutable)."""
    settings = plan.adaptive.get(node.id)
    if settings is None:
        assert node.step.split is not None
        settings = plan.adaptive[node.id] = settings_of(node.step.split)
    return settings


#: How long (engine time) a split's settled counts are reused across batches: one aggregate over its
#: decisions per minute, not per batch (evidence settles over days; each decision records what it used).
COUNTS_TTL = timedelta(minutes=1)
_counts: dict[tuple[str, int, str], tuple[datetime, Evidence]] = {}
_lock = threading.Lock()


def settled_counts(ctx: StepContext, plan: Plan, node: Node, settings: AdaptiveSettings) -> Evidence:
    key = (ctx.conn.engine.url.render_as_string(hide_password=True), plan.sequence_id, node.id)
    hit = _counts.get(key)
    if hit is not None and hit[0] <= ctx.now < hit[0] + COUNTS_TTL:
        return hit[1]
    counts = arm_evidence(ctx.conn, plan.sequence_id, node.id, settings.metric, ctx.now, settings.lookback,
                          settings.drift)
    with _lock:
        _counts[key] = (ctx.now, counts)
    return counts


def clear_cache() -> None:
    with _lock:
        _counts.clear()
        _groups.clear()


def adaptive_split(ctx: StepContext, plan: Plan, node: Node, items: list[Item]) -> None:
    settings = split_settings(plan, node)
    firsts = {name: first for name, _w, first in node.arms}
    audience, allocs = evidence(ctx.conn, plan.sequence_id, node.id, list(firsts), settings,
                                sorted({it.lead_id for it in items}), ctx.now,
                                settled_counts(ctx, plan, node, settings))
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
    """Per lead the histogram STO uses (sequences/adaptive_store.sto_histograms)."""
    defn = plan.definition
    window = defn.send_window
    ids = sorted({it.lead_id for it in items if not sto_done(it)})
    if not ids:
        return {}
    rows = ctx.leads(ids)

    def tz_of(lid: int) -> Any:
        row = rows.get(lid)
        return timing.lead_timezone(row, ctx.account_of(row), window)

    entry_segment = defn.entry.segment if defn.entry.type == "segment" else None
    return sto_histograms(ctx.conn, ids, tz_of, window, entry_segment, ctx.now, _group_cache(ctx))


_groups: dict[str, tuple[datetime, dict[tuple[str, str | None], HourHistogram | None]]] = {}


def _group_cache(ctx: StepContext) -> dict[tuple[str, str | None], HourHistogram | None]:
    """The persona / segment hour histograms of this database, reused for COUNTS_TTL of engine time (each is
    a scan of up to 20,000 recent events; a batch of optimal sends needs one per persona)."""
    key = ctx.conn.engine.url.render_as_string(hide_password=True)
    hit = _groups.get(key)
    if hit is None or not hit[0] <= ctx.now < hit[0] + COUNTS_TTL:
        hit = (ctx.now, {})
        with _lock:
            _groups[key] = hit
    return hit[1]


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
