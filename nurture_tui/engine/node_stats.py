"""Per-node counters (entered, at the node now, yes, no, exited, goal) for the TUI and reports.

Counts are accumulated in memory for a batch and written with one upsert per touched node inside the
advance transaction, so they are exactly as consistent as the enrollments themselves. Reading is a
primary-key range scan summed over shards.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..store.tables import node_counter

FIELDS = ("entered", "left", "yes", "no", "exited", "goal")
_IDX = {name: i for i, name in enumerate(FIELDS)}
PG_SHARDS = 8


@dataclass(frozen=True)
class NodeCounts:
    entered: int = 0
    waiting: int = 0  # currently at the node (entered - left)
    yes: int = 0
    no: int = 0
    exited: int = 0
    goal: int = 0


class CounterBatch:
    def __init__(self) -> None:
        self._d: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * len(FIELDS))

    def bump(self, version_id: int, node_id: str, name: str, n: int = 1) -> None:
        self._d[(version_id, node_id)][_IDX[name]] += n

    def move(self, version_id: int, from_node: str | None, to_node: str | None) -> None:
        """An enrollment left `from_node` and arrived at `to_node` (either may be None)."""
        if from_node is not None:
            self._d[(version_id, from_node)][_IDX["left"]] += 1
        if to_node is not None:
            self._d[(version_id, to_node)][_IDX["entered"]] += 1

    def __bool__(self) -> bool:
        return bool(self._d)

    def flush(self, conn: Connection) -> None:
        if not self._d:
            return
        pg = conn.dialect.name == "postgresql"
        shard = random.randrange(PG_SHARDS) if pg else 0
        rows = [
            {"version_id": v, "node_id": n, "shard": shard, **dict(zip(FIELDS, counts, strict=True))}
            for (v, n), counts in sorted(self._d.items())  # fixed order: no deadlocks between workers
        ]
        ins = postgresql.insert(node_counter) if pg else sqlite.insert(node_counter)
        stmt = ins.on_conflict_do_update(
            index_elements=["version_id", "node_id", "shard"],
            set_={f: node_counter.c[f] + ins.excluded[f] for f in FIELDS},
        )
        conn.execute(stmt, rows)
        self._d.clear()


def node_counts(conn: Connection, version_ids: list[int]) -> dict[str, NodeCounts]:
    """Counts per node id, summed over the given versions (one sequence's versions share node ids)."""
    sums = [func.sum(node_counter.c[f]).label(f) for f in FIELDS]
    rows = conn.execute(
        select(node_counter.c.node_id, *sums)
        .where(node_counter.c.version_id.in_(version_ids))
        .group_by(node_counter.c.node_id)
    ).all()
    return {
        r.node_id: NodeCounts(
            entered=int(r.entered), waiting=int(r.entered - r.left), yes=int(r.yes), no=int(r.no),
            exited=int(r.exited), goal=int(r.goal),
        )
        for r in rows
    }
