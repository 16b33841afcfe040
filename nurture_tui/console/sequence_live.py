"""Live per-node counters for the sequence editor's tree: here (at the node now) / entered / yes / no /
exited / goal, as the engine keeps them (`engine.node_stats`, bumped in the advance transaction), for the
published program — summed over the current version and every older version that still has leads pinned
to it, or for one version. Reads only; nothing here imports Textual."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..engine.node_stats import NodeCounts, node_counts
from ..sequences.service import get_row, versions
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

    @property
    def scope(self) -> str:
        if not self.versions:
            return "not published"
        if self.version is not None:
            return f"v{self.version}"
        return "v" + "+v".join(str(v) for v in self.versions)


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
            counts = node_counts(conn, [v.id for v in chosen]) if chosen else {}
        return LiveCounts(numbers, version if version in numbers else None, counts)
