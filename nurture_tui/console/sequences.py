"""Sequences: the list, and the published version's tree with live per-node counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.node_stats import NodeCounts, node_counts
from ..errors import ValidationError
from ..sequences.library import samples
from ..sequences.model import Step
from ..sequences.service import (
    ApplyResult,
    SequenceSummary,
    apply_file,
    apply_file_as,
    delete_sequence,
    duplicate_sequence,
    export,
    get_row,
    list_sequences,
    load_version,
    versions,
)
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

    # -- the list's actions --------------------------------------------------------------------------

    def samples(self) -> list[tuple[str, str]]:
        """(path, label) of the sample programs a new sequence can start from."""
        return [(str(p), p.stem) for p in samples()]

    def new_from_sample(self, path: str, name: str) -> ApplyResult:
        """A new sequence `name` whose draft is the sample program at `path` (with its templates)."""
        s = self.session
        with s.write(self.AREA) as conn:
            return apply_file_as(conn, path, name, user=s.operator.username, now=s.now())

    def import_file(self, path: str) -> ApplyResult:
        """Create or update a sequence's draft (and its templates) from a YAML file; problems are one
        `ProblemsError` naming each file line."""
        s = self.session
        with s.write(self.AREA) as conn:
            return apply_file(conn, Path(path).expanduser(), user=s.operator.username, now=s.now())

    def export_to(self, name: str, path: str, *, overwrite: bool = False) -> Path:
        """Write the sequence's draft as YAML (what `nurture sequences export` writes) to `path`."""
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / f"{name}.yaml"
        if target.exists() and not overwrite:
            raise ValidationError(str(target), "exists already (export again to overwrite it)")
        with self.session.read() as conn:
            text = export(conn, name)
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ValidationError(str(target), f"cannot write: {exc.strerror or exc}") from None
        return target

    def duplicate(self, name: str, new_name: str) -> ApplyResult:
        s = self.session
        with s.write(self.AREA) as conn:
            return duplicate_sequence(conn, name, new_name, user=s.operator.username, now=s.now())

    def delete(self, name: str) -> None:
        s = self.session
        with s.write(self.AREA) as conn:
            delete_sequence(conn, name, user=s.operator.username, now=s.now())
