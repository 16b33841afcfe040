"""Saved segments: create/update/rename/duplicate/delete with audit, cached counts, and the hot-segment switch.

Every write goes through here so validation (shape, references, cycles) and the audit log are never
skipped. Callers own the transaction (`with write_tx(engine) as conn:`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from ..errors import NotFoundError, ValidationError
from ..store import audit
from ..store.tables import segment, segment_member, sequence
from . import compiler
from . import materialize as hot
from .materialize import RefreshResult
from .rules import Rule, parse_rule, render
from .usage import SegmentUsers, rename_in_definition, rename_in_rule, segment_users
from .validate import check_references

__all__ = ["MAX_NAME", "RenameResult", "SegmentInfo", "SegmentUsers", "delete_segment", "duplicate_segment",
           "find_segment", "get_segment", "list_segments", "refresh_count", "refresh_for_leads", "refresh_materialized",
           "rename_segment", "save_segment", "segment_users"]

MAX_NAME = 120


@dataclass(frozen=True)
class SegmentInfo:
    """A saved segment as the UI and CLI see it."""

    id: int
    name: str
    description: str
    rule: Rule
    rendering: str
    materialized: bool
    cached_count: int | None
    counted_at: datetime | None
    materialized_at: datetime | None
    created_by: str | None
    updated_at: datetime | None


def _info(row: Any) -> SegmentInfo:
    rule = parse_rule(row.rule, f"segment {row.name!r}: rule")
    return SegmentInfo(id=int(row.id), name=row.name, description=row.description or "", rule=rule,
                       rendering=render(rule), materialized=bool(row.materialized), cached_count=row.cached_count,
                       counted_at=row.counted_at, materialized_at=row.materialized_at, created_by=row.created_by,
                       updated_at=row.updated_at)


def find_segment(conn: Connection, name: str) -> SegmentInfo | None:
    """By exact name, else case-insensitively."""
    rows = conn.execute(select(segment).where(func.lower(segment.c.name) == name.strip().lower())).all()
    exact = [r for r in rows if r.name == name.strip()]
    return _info((exact or rows)[0]) if rows else None


def get_segment(conn: Connection, name: str) -> SegmentInfo:
    found = find_segment(conn, name)
    if found is None:
        raise NotFoundError(f"segment {name!r}: no such segment (see `nurture segments list`)")
    return found


def list_segments(conn: Connection) -> list[SegmentInfo]:
    return [_info(r) for r in conn.execute(select(segment).order_by(func.lower(segment.c.name)))]


def _snapshot(info: SegmentInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"name": info.name, "description": info.description, "rule": info.rule.to_data(),
            "materialized": info.materialized}


def save_segment(
    conn: Connection,
    name: str,
    rule: Rule | dict[str, Any],
    *,
    user: str,
    now: datetime,
    description: str | None = None,
    materialize: bool | None = None,
    half_life_days: float | None = None,
) -> SegmentInfo:
    """Create or replace the segment `name`. Validates the rule (shape, references, cycles), records an
    audit entry, refreshes the cached count, and (re)builds membership when the segment is hot.
    `description`/`materialize` left as None keep the current values."""
    name = _valid_name(name, "name")
    parsed = parse_rule(rule)
    existing = find_segment(conn, name)
    if existing is not None:
        name = existing.name
    check_references(conn, parsed, segment_name=name)
    rule_data = parsed.to_data()
    values: dict[str, Any] = {
        "rule": rule_data,
        "description": description if description is not None else (existing.description if existing else ""),
        "materialized": materialize if materialize is not None else (existing.materialized if existing else False),
        "updated_at": now,
    }
    if existing is None:
        seg_id = conn.execute(insert(segment).values(name=name, created_by=user, created_at=now, **values)
                              .returning(segment.c.id)).scalar_one()
    else:
        seg_id = existing.id
        conn.execute(update(segment).where(segment.c.id == seg_id).values(**values))
        if existing.materialized and not values["materialized"]:
            conn.execute(delete(segment_member).where(segment_member.c.segment_id == seg_id))
            conn.execute(update(segment).where(segment.c.id == seg_id).values(materialized_at=None))
    if values["materialized"]:
        hot.refresh_segment(conn, int(seg_id), rule_data, now, half_life_days=half_life_days, name=name)
    else:
        refresh_count(conn, name, now, half_life_days=half_life_days)
    stale = hot.dependents(conn, name)
    if stale:  # hot segments built on this one change with it
        hot.refresh_all(conn, now, half_life_days=half_life_days, only=stale)
    saved = get_segment(conn, name)
    audit.record(conn, at=now, user=user, action="segment.update" if existing else "segment.create",
                 entity="segment", entity_id=saved.id, before=_snapshot(existing), after=_snapshot(saved))
    return saved


def _valid_name(name: str, where: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError(where, f"a segment name is 1–{MAX_NAME} characters, got {name!r}")
    return name


def _free_name(conn: Connection, name: str, where: str, *, renaming: SegmentInfo | None = None) -> str:
    """A valid name no other segment has (names are unique case-insensitively)."""
    name = _valid_name(name, where)
    clash = find_segment(conn, name)
    if clash is not None and (renaming is None or clash.id != renaming.id):
        raise ValidationError(where, f"a segment named {clash.name!r} already exists")
    return name


def _hold_sequences(conn: Connection) -> None:
    """On PostgreSQL, lock the sequence rows for the rest of the transaction: `publish` locks its row too,
    so a publish cannot slip a new reference to the segment in between our check and our commit."""
    if conn.dialect.name != "sqlite":
        conn.execute(select(sequence.c.id).with_for_update()).all()


def delete_segment(conn: Connection, name: str, *, user: str, now: datetime) -> None:
    """Delete a segment nothing uses (see `segment_users`: other segments, sequence drafts, published
    versions the engine can still run); its membership rows go with it. Refused with the list of users."""
    info = get_segment(conn, name)
    _hold_sequences(conn)
    users = segment_users(conn, info.name)
    if not users.empty:
        raise ValidationError(f"segment {info.name!r}", f"still used by {users.describe()}")
    conn.execute(delete(segment_member).where(segment_member.c.segment_id == info.id))
    conn.execute(delete(segment).where(segment.c.id == info.id))
    audit.record(conn, at=now, user=user, action="segment.delete", entity="segment", entity_id=info.id,
                 before=_snapshot(info), after=None)


@dataclass(frozen=True)
class RenameResult:
    old: str
    new: str
    segments: tuple[str, ...]  # saved segments whose rule now names `new`
    sequences: tuple[str, ...]  # sequences whose draft now names `new`


def rename_segment(conn: Connection, old: str, new: str, *, user: str, now: datetime) -> RenameResult:
    """Rename a saved segment and every reference that can follow it, in the caller's transaction: other
    segments' rules and sequence drafts are rewritten (each audited, plus one `segment.rename` entry).

    Refused while a published sequence version the engine can still run names the segment: published
    versions are immutable and resolve segments by name, so renaming under them would break them. Publish
    a draft that no longer uses it first (older versions stop counting once their enrollments finish).
    A case-only rename (`hot leads` → `Hot leads`) is allowed; a name another segment has is not."""
    info = get_segment(conn, old)
    new = _free_name(conn, new, "new name", renaming=info)
    if new == info.name:
        raise ValidationError("new name", f"segment {info.name!r} already has that name")
    _hold_sequences(conn)
    users = segment_users(conn, info.name)
    if users.published:
        raise ValidationError(f"segment {info.name!r}", "cannot rename: published sequence versions use it ("
                              f"{users.describe(users.published, with_segments=False)}); publish drafts that no "
                              "longer use it first")
    conn.execute(update(segment).where(segment.c.id == info.id).values(name=new, updated_at=now))
    for other in users.segments:
        row = conn.execute(select(segment.c.id, segment.c.rule).where(segment.c.name == other)).one()
        rule = rename_in_rule(row.rule, info.name, new)
        conn.execute(update(segment).where(segment.c.id == row.id).values(rule=rule, updated_at=now))
        audit.record(conn, at=now, user=user, action="segment.update", entity="segment", entity_id=row.id,
                     before={"name": other, "rule": row.rule}, after={"name": other, "rule": rule,
                                                                      "renamed_segment": [info.name, new]})
    drafts = tuple(dict.fromkeys(ref.sequence for ref in users.drafts))
    for seq_name in drafts:
        row = conn.execute(select(sequence.c.id, sequence.c.draft).where(sequence.c.name == seq_name)).one()
        draft = rename_in_definition(row.draft, info.name, new)
        conn.execute(update(sequence).where(sequence.c.id == row.id).values(draft=draft, updated_at=now))
        audit.record(conn, at=now, user=user, action="segment.rename", entity="sequence", entity_id=row.id,
                     before={"segment": info.name}, after={"segment": new, "draft": True})
    audit.record(conn, at=now, user=user, action="segment.rename", entity="segment", entity_id=info.id,
                 before={"name": info.name}, after={"name": new, "segments": list(users.segments),
                                                    "sequences": list(drafts)})
    return RenameResult(old=info.name, new=new, segments=users.segments, sequences=drafts)


def duplicate_segment(conn: Connection, name: str, new_name: str, *, user: str, now: datetime,
                      half_life_days: float | None = None) -> SegmentInfo:
    """A new segment `new_name` with the rule, description and hot switch of `name` (audited as a create;
    the copy is counted, and built when hot)."""
    info = get_segment(conn, name)
    new_name = _free_name(conn, new_name, "new name")
    return save_segment(conn, new_name, info.rule, user=user, now=now, description=info.description,
                        materialize=info.materialized, half_life_days=half_life_days)


def refresh_count(conn: Connection, name: str, now: datetime, *, half_life_days: float | None = None) -> int:
    """Recount a saved segment and cache the figure with its time."""
    info = get_segment(conn, name)
    total = compiler.count(conn, {"in_segment": info.name}, now, half_life_days=half_life_days)
    conn.execute(update(segment).where(segment.c.id == info.id).values(cached_count=total, counted_at=now))
    return total


def refresh_for_leads(conn: Connection, lead_ids: Iterable[int], now: datetime, *,
                      half_life_days: float | None = None) -> list[RefreshResult]:
    """Incremental hot-segment refresh; the engine calls this when leads or their activity change."""
    return hot.refresh_for_leads(conn, lead_ids, now, half_life_days=half_life_days)


def refresh_materialized(
    conn: Connection, now: datetime, *, half_life_days: float | None = None
) -> list[RefreshResult]:
    """Full refresh of every hot segment (periodic sweep: time-relative rules drift with the clock)."""
    return hot.refresh_all(conn, now, half_life_days=half_life_days)
