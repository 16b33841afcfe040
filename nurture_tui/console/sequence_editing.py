"""The tree editor's calls into the store: load a sequence's draft as a `SequenceDraft` (with the stored
draft's checksum), the validation catalog, save the draft refusing when the stored draft changed since it
was loaded (a concurrent `nurture sequences apply`), the diff against the published version (structural,
and a line diff of the canonical YAML) with what
publishing would do to the leads in flight, publish (with or without migration), pause/resume, and the
simulator on the saved draft (one lead, a segment sample).

Reads open their own connection; writes check the role (`session.write("sequences")`) and go through
`sequences.service`, which audits. Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..errors import NurtureError
from ..sequences.codec import parse_data
from ..sequences.model import SequenceDef, compile_definition
from ..sequences.problems import ProblemsError
from ..sequences.service import (
    DefinitionDiff,
    PublishResult,
    checksum,
    diff_definitions,
    get_row,
    load_version,
    pause,
    publish_report,
    resume,
    save_draft,
    versions,
)
from ..sequences.simulate import LeadSimulation, SegmentSimulation, TimelineEvent, simulate_lead, simulate_segment
from ..sequences.validate import Catalog, default_rule_parser
from ..store.tables import segment, sequence, template
from .sequence_diff import YamlDiff
from .sequence_draft import SequenceDraft
from .sequence_live import leads_at_nodes
from .session import ConsoleSession

__all__ = ["Catalog", "EditorState", "LeadSimulation", "LoadedDraft", "PublishPreview", "SegmentSimulation",
           "SequenceEditing", "TimelineEvent"]

AREA = "sequences"


@dataclass(frozen=True)
class EditorState:
    """What the title shows: the stored status and published version, and the stored draft's checksum (the
    base a save checks against; None for a program not stored yet)."""

    name: str
    status: str  # draft / active / paused (or "new")
    version: int | None  # the current published version's number
    base: str | None  # checksum of the stored draft when loaded or last saved
    published_checksum: str | None


@dataclass(frozen=True)
class LoadedDraft:
    draft: SequenceDraft
    state: EditorState
    published: SequenceDef | None  # the current published version's definition


@dataclass(frozen=True)
class InFlight:
    """Leads of the sequence at a node now (all versions), and whether publishing with migration moves
    the waiting ones (the node exists in the draft with the same kind) or they stay pinned (why)."""

    node_id: str
    waiting: int
    active: int
    moves: bool
    why: str = ""


@dataclass(frozen=True)
class PublishPreview:
    diff: DefinitionDiff
    in_flight: list[InFlight]
    problems: list[str]  # what the stored draft fails on (publish would refuse)
    unchanged: bool  # the draft equals the current version
    lines: YamlDiff  # the canonical YAML of the published version against the draft's, line by line


class SequenceEditing:
    AREA = AREA

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    # -- reading --------------------------------------------------------------------------------------

    def catalog(self) -> Catalog:
        """Template and segment names in the store now (`service.store_catalog`'s checks), as a Catalog
        usable after the connection is closed (the UI validates on every edit)."""
        with self.session.read() as conn:
            templates = set(conn.execute(select(template.c.name)).scalars())
            segments = {str(n).lower() for n in conn.execute(select(segment.c.name)).scalars()}
        return Catalog(templates=templates, segment_exists=lambda name: name.lower() in segments,
                       parse_rule=default_rule_parser())

    def names(self) -> dict[str, list[str]]:
        """What the node forms' pickers offer: templates, segments and sequences by name."""
        with self.session.read() as conn:
            return {
                "templates": sorted(conn.execute(select(template.c.name)).scalars()),
                "segments": sorted(conn.execute(select(segment.c.name)).scalars()),
                "sequences": sorted(conn.execute(select(sequence.c.name)).scalars()),
            }

    def load(self, name: str | None) -> LoadedDraft:
        """The stored draft of `name` as an editable draft (None: a blank program, not stored yet)."""
        catalog = self.catalog()
        if name is None:
            draft = SequenceDraft.new("untitled", catalog)
            return LoadedDraft(draft, EditorState("untitled", "new", None, None, None), None)
        with self.session.read() as conn:
            row = get_row(conn, name)
            defn, problems = parse_data(row["draft"])
            if defn is None:
                raise ProblemsError(f"sequence {name}", problems)
            published, number, digest = self._published(conn, row)
        state = EditorState(name, str(row["status"]), number, checksum(row["draft"] or {}), digest)
        return LoadedDraft(SequenceDraft(defn, catalog), state, published)

    def state(self, name: str) -> EditorState:
        with self.session.read() as conn:
            row = get_row(conn, name)
            _published, number, digest = self._published(conn, row)
        return EditorState(name, str(row["status"]), number, checksum(row["draft"] or {}), digest)

    @staticmethod
    def _published(conn: Any, row: dict[str, Any]) -> tuple[SequenceDef | None, int | None, str | None]:
        vid = row["current_version_id"]
        if vid is None:
            return None, None, None
        info = next((v for v in versions(conn, row["name"]) if v.id == vid), None)
        return (load_version(conn, vid).definition, info.number if info else None,
                info.checksum if info else None)

    # -- saving ---------------------------------------------------------------------------------------

    def save(self, defn: SequenceDef, base: str | None, *, stored_name: str | None) -> EditorState:
        """Save the draft through `service.save_draft`, problems and all (a draft is work in progress; publish
        refuses it until the problems are fixed). Refused in one line when the stored draft is no longer the
        one loaded (`base`, e.g. after a CLI `apply`), when a new program's name is taken, or when the name
        was changed."""
        s = self.session
        if stored_name is not None and defn.name != stored_name:
            raise NurtureError(f"sequence {stored_name!r}: renaming is not supported here "
                               f"(duplicate it on the list instead)")
        with s.write(AREA) as conn:
            row = conn.execute(select(sequence.c.draft).where(sequence.c.name == defn.name)).first()
            if row is not None and base is None:
                raise NurtureError(f"sequence {defn.name!r} already exists: open it from the list, "
                                   "or pick another name")
            if row is not None and checksum(row.draft or {}) != base:
                raise NurtureError(f"sequence {defn.name!r} changed in the store since you opened it "
                                   f"(a `nurture sequences apply`?): not saved — reload it, or save under another name")
            save_draft(conn, defn, user=s.operator.username, now=s.now(), allow_problems=True)
            stored = get_row(conn, defn.name)
            _published, number, digest = self._published(conn, stored)
        return EditorState(defn.name, str(stored["status"]), number, checksum(stored["draft"] or {}), digest)

    # -- publishing -----------------------------------------------------------------------------------

    def preview(self, name: str) -> PublishPreview:
        """The stored draft against the current version: the diff, the leads in flight per node and
        whether migration would move them, and the problems that would block publishing."""
        from ..sequences.service import check_draft, draft_definition

        with self.session.read() as conn:
            row = get_row(conn, name)
            published, _number, digest = self._published(conn, row)
            draft = draft_definition(conn, name)
            problems = [p.format(f"sequence {name}") for p in check_draft(conn, name)]
            counts = leads_at_nodes(conn, int(row["id"]))
        try:
            nodes = compile_definition(draft).nodes
        except Exception:  # an invalid draft: nothing would move
            nodes = {}
        old_nodes = compile_definition(published).nodes if published is not None else {}
        in_flight = []
        for node_id in sorted(counts, key=lambda k: (k not in old_nodes, list(old_nodes).index(k)
                                                       if k in old_nodes else 0, k)):
            c = counts[node_id]
            new, old = nodes.get(node_id), old_nodes.get(node_id)
            if new is None:
                moves, why = False, "node removed"
            elif old is not None and old.kind != new.kind:
                moves, why = False, "node kind changed"
            else:
                moves, why = True, ""
            in_flight.append(InFlight(node_id, c.get("waiting", 0), c.get("active", 0), moves, why))
        return PublishPreview(diff_definitions(published, draft), in_flight, problems,
                              digest is not None and digest == checksum(draft.to_json()),
                              YamlDiff.of(published, draft))

    def publish(self, name: str, *, migrate: bool) -> PublishResult:
        s = self.session
        with s.write(AREA) as conn:
            return publish_report(conn, name, user=s.operator.username, now=s.now(), migrate=migrate)

    def pause(self, name: str) -> str:
        return self._status(pause, name)

    def resume(self, name: str) -> str:
        return self._status(resume, name)

    def _status(self, change: Callable[..., str], name: str) -> str:
        s = self.session
        with s.write(AREA) as conn:
            change(conn, name, user=s.operator.username, now=s.now())
            return str(get_row(conn, name)["status"])

    # -- testing before going live --------------------------------------------------------------------

    def simulate(self, name: str, email: str, outcomes: str | None = None) -> LeadSimulation:
        """One lead through the saved draft from now (outcomes: `id=yes,split-id=b,…` or in order)."""
        s = self.session
        with s.read() as conn:
            return simulate_lead(conn, name, email, settings=s.settings, start=s.now(), outcomes=outcomes,
                                 draft=True)

    def forecast(self, name: str, segment_name: str, n: int = 1000) -> SegmentSimulation:
        """Expected reach per node of the saved draft for a sample of a segment's members."""
        s = self.session
        with s.read() as conn:
            return simulate_segment(conn, name, segment_name, settings=s.settings, now=s.now(), n=n, draft=True)
