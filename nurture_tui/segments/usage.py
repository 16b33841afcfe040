"""Who uses a saved segment, and rewriting those references when the segment is renamed.

A segment is *used* by:
- another saved segment whose rule says `in_segment: NAME` (directly; the hot-segment rebuild follows
  the chain further, but only direct users hold the name);
- a sequence's **draft** (entry segment, entry rule, goal, `exit_when`, a branch's segment or rule);
- a sequence's **published** versions the engine can still run: the current version, and any older
  version that still has active or waiting enrollments (they run on their own version). Older versions
  nobody runs on are history, and are not users.

Score rules (filters: template, sequence, url, form), grade profiles (`when`/criteria on lead text and
number fields) and the reports hold no segment names, so they are never users. Sequence and campaign
membership conditions name sequences and campaigns, not segments.

Names match case-insensitively, as rules resolve them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, select

from ..store.tables import enrollment, segment, sequence, sequence_version

#: Enrollment statuses the engine still advances (a version with such enrollments is live).
LIVE_STATUSES = ("active", "waiting")


@dataclass(frozen=True)
class SequenceRef:
    """One place in one sequence definition that names the segment."""

    sequence: str
    version: int | None  # the published version number; None = the draft
    current: bool  # the sequence's current published version (False for the draft and older versions)
    place: str  # "entry", "entry rule", "goal", "exit_when[1]", "branch <node id>", "branch <node id> rule"
    node_id: str | None = None  # the branch step, for branch references

    @property
    def published(self) -> bool:
        return self.version is not None

    @property
    def label(self) -> str:
        """`draft` or `published v2`."""
        return "draft" if self.version is None else f"published v{self.version}"


@dataclass(frozen=True)
class SegmentUsers:
    """Everything that refers to the segment `segment` by name."""

    segment: str
    segments: tuple[str, ...] = ()  # saved segments whose rule has `in_segment: <segment>`
    sequences: tuple[SequenceRef, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.segments and not self.sequences

    @property
    def published(self) -> tuple[SequenceRef, ...]:
        """References in published versions (immutable: a rename cannot rewrite them)."""
        return tuple(r for r in self.sequences if r.published)

    @property
    def drafts(self) -> tuple[SequenceRef, ...]:
        return tuple(r for r in self.sequences if not r.published)

    def describe(self, refs: tuple[SequenceRef, ...] | None = None, *, with_segments: bool = True) -> str:
        """One line: `segment Y, segment Z, sequence welcome (published v2: entry; draft: entry, goal)`."""
        parts = [f"segment {name}" for name in self.segments] if with_segments else []
        by_sequence: dict[str, dict[str, list[str]]] = {}
        for ref in self.sequences if refs is None else refs:
            by_sequence.setdefault(ref.sequence, {}).setdefault(ref.label, []).append(ref.place)
        for name, labels in by_sequence.items():
            inner = "; ".join(f"{label}: {', '.join(places)}" for label, places in _ordered(labels))
            parts.append(f"sequence {name} ({inner})")
        return ", ".join(parts)


def _ordered(labels: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Published versions newest first, then the draft."""
    def key(item: tuple[str, list[str]]) -> tuple[int, int]:
        label = item[0]
        return (1, 0) if label == "draft" else (0, -int(label.rsplit("v", 1)[1]))
    return sorted(labels.items(), key=key)


# --------------------------------------------------------------------------------------- finding users


def rule_names_segment(data: Any, name: str) -> bool:
    """Whether rule data (YAML/JSON shape, any form `parse_rule` accepts) has `in_segment: <name>`."""
    lowered = name.strip().lower()
    return any(True for _ in _segment_conditions(data, lowered))


def _segment_conditions(data: Any, lowered: str) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _segment_conditions(item, lowered)
    elif isinstance(data, dict):
        ref = data.get("in_segment")
        if isinstance(ref, (str, int)) and not isinstance(ref, bool) and str(ref).strip().lower() == lowered:
            yield data
        for op in ("all", "any", "none"):
            if op in data:
                yield from _segment_conditions(data[op], lowered)


def _steps(steps: Any) -> Iterator[dict[str, Any]]:
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        yield step
        yield from _steps(step.get("yes"))
        yield from _steps(step.get("no"))
        split = step.get("split")
        if isinstance(split, dict):
            for arm in split.get("arms") or []:
                if isinstance(arm, dict):
                    yield from _steps(arm.get("steps"))


def _same(value: Any, lowered: str) -> bool:
    return isinstance(value, str) and value.strip().lower() == lowered


def definition_places(definition: Any, name: str) -> list[tuple[str, str | None]]:
    """(place, node id) for every reference to segment `name` in a sequence definition (stored JSON)."""
    if not isinstance(definition, dict):
        return []
    lowered = name.strip().lower()
    places: list[tuple[str, str | None]] = []
    entry = definition.get("entry")
    if isinstance(entry, dict):
        if _same(entry.get("segment"), lowered):
            places.append(("entry", None))
        if rule_names_segment(entry.get("rule"), name):
            places.append(("entry rule", None))
    if rule_names_segment(definition.get("goal"), name):
        places.append(("goal", None))
    for i, rule in enumerate(definition.get("exit_when") or []):
        if rule_names_segment(rule, name):
            places.append((f"exit_when[{i}]", None))
    for step in _steps(definition.get("steps")):
        branch = step.get("branch")
        if not isinstance(branch, dict):
            continue
        node = str(step.get("id"))
        if _same(branch.get("segment"), lowered):
            places.append((f"branch {node}", node))
        if rule_names_segment(branch.get("rule"), name):
            places.append((f"branch {node} rule", node))
    return places


def segment_users(conn: Connection, name: str) -> SegmentUsers:
    """Everything that names the segment `name` (see the module docstring for what counts). The name is
    taken as given (no existence check), so this also answers "would a segment called X be used?"."""
    name = name.strip()
    lowered = name.lower()
    segments = sorted(
        (row.name for row in conn.execute(select(segment.c.name, segment.c.rule))
         if row.name.lower() != lowered and rule_names_segment(row.rule, name)),
        key=str.lower,
    )
    refs: list[SequenceRef] = []
    seqs = conn.execute(select(sequence.c.id, sequence.c.name, sequence.c.draft, sequence.c.current_version_id)
                        .order_by(sequence.c.name)).all()
    current = {row.current_version_id for row in seqs if row.current_version_id is not None}
    names = {row.id: row.name for row in seqs}
    published: dict[int, list[SequenceRef]] = {}
    sv = sequence_version.c
    for v in conn.execute(select(sv.id, sv.sequence_id, sv.number, sv.definition)
                          .order_by(sv.sequence_id, sv.number.desc())):
        places = definition_places(v.definition, name)
        if not places or v.sequence_id not in names:
            continue
        if v.id not in current and not _has_live_enrollments(conn, int(v.id)):
            continue  # history: nothing runs on this version any more
        published.setdefault(int(v.sequence_id), []).extend(
            SequenceRef(names[v.sequence_id], int(v.number), v.id in current, place, node)
            for place, node in places)
    for row in seqs:
        refs.extend(published.get(int(row.id), []))
        refs.extend(SequenceRef(row.name, None, False, place, node)
                    for place, node in definition_places(row.draft, name))
    return SegmentUsers(segment=name, segments=tuple(segments), sequences=tuple(refs))


def _has_live_enrollments(conn: Connection, version_id: int) -> bool:
    e = enrollment.c
    return bool(conn.execute(select(exists().where(e.version_id == version_id,
                                                   e.status.in_(LIVE_STATUSES)))).scalar())


# ---------------------------------------------------------------------------------------------- rewrite


def rename_in_rule(data: Any, old: str, new: str) -> Any:
    """A copy of rule data with every `in_segment: <old>` (any case) naming `new`; the rest untouched."""
    out = copy.deepcopy(data)
    for cond in _segment_conditions(out, old.strip().lower()):
        cond["in_segment"] = new
    return out


def rename_in_definition(definition: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """A copy of a stored sequence definition with every reference to segment `old` naming `new`."""
    out = copy.deepcopy(definition)
    lowered = old.strip().lower()
    entry = out.get("entry")
    if isinstance(entry, dict):
        if _same(entry.get("segment"), lowered):
            entry["segment"] = new
        if entry.get("rule") is not None:
            entry["rule"] = rename_in_rule(entry["rule"], old, new)
    if out.get("goal") is not None:
        out["goal"] = rename_in_rule(out["goal"], old, new)
    if isinstance(out.get("exit_when"), list):
        out["exit_when"] = [rename_in_rule(rule, old, new) for rule in out["exit_when"]]
    for step in _steps(out.get("steps")):
        branch = step.get("branch")
        if isinstance(branch, dict):
            if _same(branch.get("segment"), lowered):
                branch["segment"] = new
            if branch.get("rule") is not None:
                branch["rule"] = rename_in_rule(branch["rule"], old, new)
    return out
