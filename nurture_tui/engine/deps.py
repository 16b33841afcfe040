"""The engine's calls into other areas, in one place (agreed interfaces, imported lazily).

Segments, sequences, mail, scoring and Salesforce each own their logic; the engine only calls it inside
its own transactions. Optional collaborators (materialised-segment refresh) are looked up once and
skipped when that area does not provide them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

_MISSING = object()
_cache: dict[str, Any] = {}


def _lookup(module: str, attr: str) -> Any:
    key = f"{module}:{attr}"
    found = _cache.get(key, _MISSING)
    if found is _MISSING:
        try:
            found = getattr(importlib.import_module(f"nurture_tui.{module}"), attr)
        except (ImportError, AttributeError):
            found = None
        _cache[key] = found
    return found


def optional(module: str, attr: str) -> Callable[..., Any] | None:
    """An optional collaborator, or None when its area doesn't provide it."""
    fn: Callable[..., Any] | None = _lookup(module, attr)
    return fn


def required(module: str, attr: str) -> Callable[..., Any]:
    fn = _lookup(module, attr)
    if fn is None:
        _cache.pop(f"{module}:{attr}", None)  # look again next time (the area may land later)
        raise RuntimeError(f"nurture_tui.{module}.{attr} is not available")
    return fn


# -- segments ----------------------------------------------------------------------------------------

def parse_rule(data: Any, where: str) -> Any:
    return required("segments.rules", "parse_rule")(data, where=where)


def matching_ids(conn: Connection, rule: Any, lead_ids: list[int], now: datetime) -> set[int]:
    if not lead_ids:
        return set()
    return set(required("segments.compiler", "matching_ids")(conn, rule, lead_ids, now))


def members(conn: Connection, rule: Any, now: datetime) -> Any:
    return required("segments.compiler", "members")(conn, rule, now)


def refresh_segments_for_leads(conn: Connection, lead_ids: list[int], now: datetime) -> None:
    fn = optional("segments.materialize", "refresh_for_leads")
    if fn is not None and lead_ids:
        fn(conn, lead_ids, now)


# -- scoring -----------------------------------------------------------------------------------------

def apply_activities(conn: Connection, activities: list[dict[str, Any]], now: datetime, settings: Any) -> Any:
    fn = optional("scoring.service", "apply_activities")
    if fn is None or not activities:
        return []
    return fn(conn, activities, now, settings)


def adjust_score(conn: Connection, lead_id: int, points: float, reason: str, now: datetime, settings: Any) -> Any:
    return required("scoring.service", "adjust_score")(conn, lead_id, points, reason, now, settings)


def regrade(conn: Connection, lead_ids: list[int], now: datetime, settings: Any) -> None:
    fn = optional("scoring.grading", "regrade")
    if fn is not None and lead_ids and settings is not None:
        fn(conn, lead_ids, now, settings)


def where_clause(conn: Connection, rule: Any, now: datetime) -> Any:
    return required("segments.compiler", "where_clause")(conn, rule, now)


# -- mail --------------------------------------------------------------------------------------------

def suppressed_ids(conn: Connection, lead_ids: list[int], category: str) -> set[int]:
    fn = optional("mail.suppression", "suppressed_ids")
    if fn is None or not lead_ids:
        return set()
    return set(fn(conn, lead_ids, category))


def compose_outbox_rows(conn: Connection, sends: list[Any], settings: Any, now: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = required("mail.compose", "compose_outbox_rows")(conn, sends, settings, now)
    return rows


def send_request(**values: Any) -> Any:
    return required("mail.compose", "SendRequest")(**values)
