"""Sequences: the list, and the published version's tree with live per-node counts."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.node_stats import NodeCounts, node_counts
from ..sequences.model import Step
from ..sequences.service import SequenceSummary, get_row, list_sequences, load_version, versions
from .session import ConsoleSession

__all__ = ["SequenceSummary", "SequencesConsole", "VersionView"]


@dataclass(frozen=True)
class VersionView:
    """The published version of one sequence, with per-node counts (None: not published yet)."""

    name: str
    version: int | None
    steps: list[Step]
    counts: dict[str, NodeCounts]


class SequencesConsole:
    AREA = "sequences"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def all(self) -> list[SequenceSummary]:
        with self.session.read() as conn:
            return list_sequences(conn)

    def published(self, name: str) -> VersionView:
        with self.session.read() as conn:
            version_id = get_row(conn, name).get("current_version_id")
            if not version_id:
                return VersionView(name, None, [], {})
            compiled = load_version(conn, version_id)
            counts = node_counts(conn, [version_id])
            number = next((v.number for v in versions(conn, name) if v.id == version_id), None)
        return VersionView(name, number, list(compiled.definition.steps), counts)
