"""The published versions a report looks at, with their compiled node maps (shared by funnel and splits)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from ..sequences.model import CompiledSequence, SequenceDef, compile_definition
from ..store.tables import sequence, sequence_version
from .common import Scope


@dataclass(frozen=True)
class VersionInfo:
    id: int
    sequence_id: int
    sequence: str
    number: int
    compiled: CompiledSequence


def versions(conn: Connection, scope: Scope) -> list[VersionInfo]:
    """Every published version (of the `--sequence` one, if given), by sequence name and version number.
    A definition that no longer compiles is left out (it could not have run)."""
    v, s = sequence_version.c, sequence.c
    stmt = (select(v.id, v.sequence_id, s.name, v.number, v.definition)
            .select_from(sequence_version.join(sequence, s.id == v.sequence_id)).order_by(s.name, v.number))
    if scope.sequence_id is not None:
        stmt = stmt.where(v.sequence_id == scope.sequence_id)
    out = []
    for r in conn.execute(stmt):
        try:
            compiled = compile_definition(SequenceDef.model_validate(r.definition))
        except ValueError:
            continue
        out.append(VersionInfo(int(r.id), int(r.sequence_id), r.name, int(r.number), compiled))
    return out
