"""Adaptive decisions explained (docs/adaptive.md): per decision in the period, what was chosen and why — the
arm with every arm's posterior mean and 95 % interval at decision time, or the send time with the hour
histogram it was chosen from — and, per adaptive split, the allocation it would make now.

`load` is `nurture report adaptive` and the Reports screen's adaptive tab: one `now` row per adaptive split
and audience (the current allocation), then the period's most recent decisions. `decisions` is the
per-decision list of `nurture sequences decisions`; `allocation_lines` is what the split report's summary
and the sequence editor's live view show for adaptive splits.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ..sequences.adaptive import Allocation, build_allocation, settings_of
from ..sequences.adaptive_store import allocations, arm_evidence, explain, overall
from ..sequences.model import CompiledSequence, format_duration
from ..store.tables import adaptive_decision, lead, sequence
from .common import Report, Scope, make_report, segment_leads
from .versions import versions

NAME = "adaptive"
TITLE = "Adaptive decisions"
COLUMNS = ["decided_at", "sequence", "node", "kind", "lead", "choice", "audience", "how", "why"]
#: `nurture report adaptive`: `level` is `now` (an adaptive split's allocation now, one row per audience) or
#: `decision` (one recorded decision); `evidence` is every arm's posterior mean [95 %] (and, for `now`, its
#: traffic share) or the send time's hour histogram; `restart` the change day the evidence restarted at.
REPORT_COLUMNS = ["level", "decided_at", "sequence", "node", "kind", "lead", "audience", "choice", "how",
                  "restart", "evidence", "why"]
LIMIT = 500  # most recent decisions listed


def decisions(conn: Connection, scope: Scope, limit: int = LIMIT, *, with_detail: bool = False) -> Report:
    """The period's most recent decisions with their explanation (`with_detail`: each row also carries the
    recorded `detail` JSON, for `load`)."""
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
                     "how": how, "why": explain(dict(r)), **({"detail": detail} if with_detail else {})})
    return make_report(NAME, TITLE, scope, COLUMNS, rows, notes=[
        "split: posterior Beta(1 + successes, 1 + failures) per arm (pooled toward everyone's per audience); "
        "mean [95 % interval]; a failure counts only once its reward window has closed",
        "send_time: the local hour with the most opens/clicks (the lead's own, else its persona's or segment's), "
        "inside the window and caps, at most 24 h after the plain schedule",
    ], empty="no adaptive decision in the period")


def load(conn: Connection, scope: Scope, limit: int = LIMIT) -> Report:
    """The adaptive report: every adaptive split's allocation now (of each sequence's newest version), then the
    period's most recent `limit` decisions, newest first, each with the evidence it was made on."""
    rows: list[dict[str, Any]] = []
    newest = {v.sequence_id: v for v in versions(conn, scope)}  # by number: the last one wins
    for v in sorted(newest.values(), key=lambda v: v.sequence):
        for node_id, allocs in current_allocations(conn, v.sequence_id, v.compiled, scope.now).items():
            for alloc in allocs:
                rows.append({
                    "level": "now", "decided_at": _minute(scope.now), "sequence": f"{v.sequence} v{v.number}",
                    "node": node_id, "kind": "split", "lead": "", "audience": alloc.audience,
                    "choice": alloc.winner or "", "how": "winner" if alloc.winner else "allocation",
                    "restart": _day(alloc.restart), "evidence": _arms_now(alloc),
                    "why": allocation_line(alloc)})
    listed = decisions(conn, scope, limit, with_detail=True)
    for r in listed.rows:
        detail = r.pop("detail")
        rows.append({**r, "level": "decision", "decided_at": _minute(r["decided_at"]),
                     "restart": detail.get("restart") or "",
                     "evidence": _evidence(r["kind"], detail)})
    d = adaptive_decision.c
    count = select(d.kind, func.count()).where(d.decided_at >= scope.period.since, d.decided_at < scope.period.until)
    if scope.sequence_id is not None:
        count = count.where(d.sequence_id == scope.sequence_id)
    seg = segment_leads(conn, scope)
    if seg is not None:
        count = count.where(d.lead_id.in_(seg))
    totals: dict[str, int] = {k: int(n) for k, n in conn.execute(count.group_by(d.kind))}
    n = sum(totals.values())
    summary = [f"decisions in the period: {n:,} (split {totals.get('split', 0):,}, "
               f"send time {totals.get('send_time', 0):,})"
               + (f"; the most recent {limit:,} are listed" if n > limit else "")] if rows else []
    return make_report(NAME, TITLE, scope, REPORT_COLUMNS, rows, summary=summary, notes=[
        "now: each adaptive split's allocation from the data stored now, per audience: traffic share "
        "(the exploration floor plus the rest by P(best)) and posterior mean [95 % interval] per arm",
        "decision: split — the arm and every arm's posterior mean [95 % interval] at decision time (Beta(1 + "
        "successes, 1 + failures), pooled toward everyone's per audience; a failure counts only once its "
        "reward window has closed); send_time — the local hour chosen and the hour histogram it used",
        "restart: the day a change of the rates was detected; the evidence counted from that day on",
    ], empty="no adaptive split and no adaptive decision in the period")


def _minute(at: datetime) -> str:
    """A decision time in the report: UTC to the minute."""
    return (at if at.tzinfo is None else at.astimezone(UTC)).strftime("%Y-%m-%d %H:%M")


def _day(ordinal: int | None) -> str:
    return date.fromordinal(ordinal).isoformat() if ordinal is not None else ""


def _arms_now(alloc: Allocation) -> str:
    return " · ".join(f"{a.name} {a.share:.0%} ({a.posterior.mean:.1%} [{lo:.1%}–{hi:.1%}])"
                      for a in alloc.arms for lo, hi in [a.posterior.interval()])


def _evidence(kind: str, detail: dict[str, Any]) -> str:
    """A decision's evidence in one cell: per arm mean [95 %] n, or the hour histogram and its source."""
    if kind == "split":
        return " · ".join(f"{name} {v['mean']:.1%} [{v['lo']:.1%}–{v['hi']:.1%}] n={v['s'] + v['f']:g}"
                          for name, v in (detail.get("arms") or {}).items())
    hours = detail.get("hours") or []
    counts = " ".join(f"{h:02d}h×{c:g}" for h, c in enumerate(hours) if c)
    return f"{detail.get('source', '')}: {counts or 'no opens or clicks'}"


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
        counts, restart = arm_evidence(conn, sequence_id, node_id, settings.metric, now, settings.lookback,
                                       settings.drift)
        wanted = ["all", *sorted(a for a in counts if a != "all")]
        allocs = allocations(names, counts, settings, wanted, restart)
        allocs["all"] = build_allocation(names, overall(counts), None, settings, restart=restart)  # unpooled
        out[node_id] = [allocs[a] for a in wanted]
    return out


def allocation_line(alloc: Allocation) -> str:
    """`all: a 12% (3.1% [2.5–3.8%]) · b 85% (…)`, plus the winner when one is declared."""
    arms = " · ".join(f"{a.name} {a.share:.0%} ({a.posterior.mean:.1%} [{lo:.1%}–{hi:.1%}])"
                      for a in alloc.arms for lo, hi in [a.posterior.interval()])
    restart = (f" — evidence restarted at the rate change detected on {_day(alloc.restart)}"
               if alloc.restart is not None else "")
    return f"{alloc.audience}: {arms}" + (f" — winner {alloc.winner}" if alloc.winner else "") + restart


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
