"""Adaptive decisions explained (docs/adaptive.md): per decision in the period, what was chosen and why — the
arm with every arm's posterior mean and 95 % interval at decision time, or the send time with the hour
histogram it was chosen from — and, per adaptive split, the allocation it would make now.

`decisions` is the per-decision report (`nurture sequences decisions`); `allocation_lines` is what the
split report's summary and the sequence editor's live view show for adaptive splits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ..sequences.adaptive import Allocation, build_allocation, settings_of
from ..sequences.adaptive_store import allocations, arm_counts, explain, overall
from ..sequences.model import CompiledSequence, format_duration
from ..store.tables import adaptive_decision, lead, sequence
from .common import Report, Scope, make_report, segment_leads

NAME = "adaptive"
TITLE = "Adaptive decisions"
COLUMNS = ["decided_at", "sequence", "node", "kind", "lead", "choice", "audience", "how", "why"]
LIMIT = 500  # most recent decisions listed


def decisions(conn: Connection, scope: Scope, limit: int = LIMIT) -> Report:
    d = adaptive_decision.c
    stmt = (select(adaptive_decision, sequence.c.name.label("sequence_name"), lead.c.email)
            .join(sequence, sequence.c.id == d.sequence_id).join(lead, lead.c.id == d.lead_id)
            .where(d.decided_at >= scope.period.since, d.decided_at < scope.period.until)
            .order_by(d.decided_at.desc(), d.id.desc()).limit(limit))
    if scope.sequence_id is not None:
        stmt = stmt.where(d.sequence_id == scope.sequence_id)
    seg = segment_leads(conn, scope)
    if seg is not None:
        stmt = stmt.where(d.lead_id.in_(seg))
    rows = []
    for r in conn.execute(stmt).mappings():
        detail = r["detail"] or {}
        if r["kind"] == "split":
            choice, how = r["arm"], detail.get("how", "")
        else:
            choice, how = f"{detail.get('local_hour', '?')}:00 {detail.get('tz', '')}".strip(), detail.get("source", "")
        rows.append({"decided_at": r["decided_at"], "sequence": r["sequence_name"], "node": r["node_id"],
                     "kind": r["kind"], "lead": r["email"], "choice": choice, "audience": r["audience"] or "",
                     "how": how, "why": explain(dict(r))})
    return make_report(NAME, TITLE, scope, COLUMNS, rows, notes=[
        "split: posterior Beta(1 + successes, 1 + failures) per arm (pooled toward everyone's per audience); "
        "mean [95 % interval]; a failure counts only once its reward window has closed",
        "send_time: the local hour with the most opens/clicks (the lead's own, else its persona's or segment's), "
        "inside the window and caps, at most 24 h after the plain schedule",
    ], empty="no adaptive decision in the period")


def current_allocations(conn: Connection, sequence_id: int, compiled: CompiledSequence, now: Any,
                        ) -> dict[str, list[Allocation]]:
    """Per adaptive split node: the allocation of every audience seen so far (everyone first)."""
    out: dict[str, list[Allocation]] = {}
    for node_id, node in compiled.nodes.items():
        spec = node.step.split
        if spec is None or not spec.adaptive:
            continue
        settings = settings_of(spec)
        names = [name for name, _w, _f in node.arms]
        counts = arm_counts(conn, sequence_id, node_id, settings.metric, now, settings.lookback, settings.drift)
        wanted = ["all", *sorted(a for a in counts if a != "all")]
        allocs = allocations(names, counts, settings, wanted)
        allocs["all"] = build_allocation(names, overall(counts), None, settings)  # everyone, unpooled
        out[node_id] = [allocs[a] for a in wanted]
    return out


def allocation_line(alloc: Allocation) -> str:
    """`all: a 12% (3.1% [2.5–3.8%]) · b 85% (…)`, plus the winner when one is declared."""
    arms = " · ".join(f"{a.name} {a.share:.0%} ({a.posterior.mean:.1%} [{lo:.1%}–{hi:.1%}])"
                      for a in alloc.arms for lo, hi in [a.posterior.interval()])
    return f"{alloc.audience}: {arms}" + (f" — winner {alloc.winner}" if alloc.winner else "")


def allocation_lines(conn: Connection, sequence_id: int, label: str, compiled: CompiledSequence, now: Any,
                     ) -> list[str]:
    """One summary line per adaptive split and audience: traffic share now and posterior mean [95 %]."""
    lines = []
    for node_id, allocs in current_allocations(conn, sequence_id, compiled, now).items():
        spec = compiled.nodes[node_id].step.split
        assert spec is not None
        s = settings_of(spec)
        head = f"{label} split {node_id} (adaptive: {s.metric} within {format_duration(s.window)})"
        lines += [f"{head}, {allocation_line(a)}" for a in allocs]
    return lines
