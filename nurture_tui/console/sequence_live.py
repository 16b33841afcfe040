"""Live per-node counters for the sequence editor's tree: here / entered / yes / no / exited / goal for the
published program — summed over the current version and every older version that still has leads pinned
to it, or for one version. Entered, yes, no, exited and goal are the engine's cumulative counters
(`engine.node_stats`, bumped in the advance transaction); "here" is counted from the enrollments themselves
(`leads_at_nodes`, also what the publish preview shows in flight), so it follows a migration, which moves
enrollments between versions without touching the counters. Adaptive splits also show the allocation they make
now (reports/adaptive.py). Reads only; nothing here imports Textual."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, func, select

from ..engine.node_stats import NodeCounts, node_counts
from ..reports.adaptive import allocation_line, current_allocations
from ..sequences.service import get_row, load_version, versions
from ..store.tables import enrollment
from .session import ConsoleSession

__all__ = ["LiveCounts", "NodeCounts", "SequenceLive"]

#: Enrollment states that keep a lead pinned to its version.
IN_FLIGHT = ("waiting", "active")


@dataclass(frozen=True)
class LiveCounts:
    """`versions`: the numbers that count (the current version and those with leads pinned to them),
    oldest first; `version`: the one shown, or None for their sum; `counts` by node id."""

    versions: list[int]
    version: int | None
    counts: dict[str, NodeCounts]
    #: adaptive split id → its allocation now, per audience: traffic share, posterior mean [95 %] per arm
    allocations: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        if not self.versions:
            return "not published"
        if self.version is not None:
            return f"v{self.version}"
        return "v" + "+v".join(str(v) for v in self.versions)


def leads_at_nodes(conn: Connection, sequence_id: int,
                   version_ids: Collection[int] | None = None) -> dict[str, dict[str, int]]:
    """Enrollments in flight per node id and status (waiting / active), over all versions or those given."""
    stmt = (select(enrollment.c.node_id, enrollment.c.status, func.count())
            .where(enrollment.c.sequence_id == sequence_id, enrollment.c.status.in_(IN_FLIGHT))
            .group_by(enrollment.c.node_id, enrollment.c.status))
    if version_ids is not None:
        stmt = stmt.where(enrollment.c.version_id.in_(list(version_ids)))
    counts: dict[str, dict[str, int]] = {}
    for node_id, status, n in conn.execute(stmt):
        counts.setdefault(node_id or "", {})[status] = int(n)
    return counts


class SequenceLive:
    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def counts(self, name: str, version: int | None = None) -> LiveCounts:
        """The counters of `name` (`version`: that version's only; None: summed over the live versions).
        A version that is not live any more falls back to the sum."""
        with self.session.read() as conn:
            row = get_row(conn, name)
            pinned = set(conn.execute(
                select(enrollment.c.version_id).distinct()
                .where(enrollment.c.sequence_id == row["id"], enrollment.c.status.in_(IN_FLIGHT))).scalars())
            live = [v for v in versions(conn, name) if v.current or v.id in pinned]
            numbers = [v.number for v in live]
            chosen = [v for v in live if v.number == version] or live
            ids = [v.id for v in chosen]
            counts = node_counts(conn, ids) if ids else {}
            here = leads_at_nodes(conn, int(row["id"]), ids) if ids else {}
            current = next((v for v in live if v.current), None)
            allocations = {} if current is None else {
                node_id: " | ".join(allocation_line(a) for a in allocs)
                for node_id, allocs in current_allocations(conn, int(row["id"]), load_version(conn, current.id),
                                                           self.session.now()).items()}
        for node_id in set(counts) | set(here):
            at = sum(here.get(node_id, {}).values())
            counts[node_id] = replace(counts.get(node_id, NodeCounts()), waiting=at)
        return LiveCounts(numbers, version if version in numbers else None, counts, allocations)
