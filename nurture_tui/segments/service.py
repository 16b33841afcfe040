"""Saved segments: create/update/delete with audit, cached counts, and the hot-segment switch.

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
from ..store.tables import segment, segment_member
from . import compiler
from . import materialize as hot
from .materialize import RefreshResult
from .rules import Rule, parse_rule, render
from .validate import check_references, reference_graph

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
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError("name", f"a segment name is 1–{MAX_NAME} characters, got {name!r}")
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


def delete_segment(conn: Connection, name: str, *, user: str, now: datetime) -> None:
    """Delete a segment that no other segment refers to (its membership rows go with it)."""
    info = get_segment(conn, name)
    users = sorted(other for other, refs in reference_graph(conn).items()
                   if other != info.name and any(r.lower() == info.name.lower() for r in refs))
    if users:
        raise ValidationError(f"segment {info.name!r}", f"still used by segment(s) {', '.join(users)}")
    conn.execute(delete(segment_member).where(segment_member.c.segment_id == info.id))
    conn.execute(delete(segment).where(segment.c.id == info.id))
    audit.record(conn, at=now, user=user, action="segment.delete", entity="segment", entity_id=info.id,
                 before=_snapshot(info), after=None)


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
