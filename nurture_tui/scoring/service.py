"""Scoring's front: the operations other areas call, each running the whole chain in the caller's
transaction — points on the lead (`points.py`), then the MQL threshold (`mql.py`), then the named accounts'
scores and MQAs (`accounts.py`) — plus the hourly decay job.

This module sits on top of the scoring modules and nothing in scoring imports it, so the chain has one
direction. The read helpers other areas already use from here (live scores, history, lead lookup) are
re-exported from the modules that own them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from ..activity import ActivityEvent
from ..config import ScoringSettings, Settings
from ..errors import ValidationError
from ..store.engine import write_tx
from ..store.tables import score_event
from ..workspace import Workspace
from . import accounts, mql
from .history import ScoreChange, histories, history, recompute_stored, reset_times
from .points import add_stored, live_score, live_scores, require_lead, reset_score, resolve_lead, score_batch
from .rules import granted, load_rules
from .scale import rebase, scale, scoring_settings

__all__ = [
    "REBASE_BELOW", "ScoreChange", "add_stored", "adjust_score", "apply_activities", "decay_job", "granted",
    "histories", "history", "live_score", "live_scores", "recompute_stored", "reset_score", "reset_times",
    "resolve_lead", "scale", "score_batch", "scoring_settings",
]


def apply_activities(conn: Connection, activities: Sequence[ActivityEvent], now: datetime,
                     settings: Settings | ScoringSettings,
                     touch: Mapping[int, datetime] | None = None) -> list[int]:
    """Score a batch of activities already inserted into `activity` by the caller's transaction (so each
    carries its `id` and `at`). Returns the ids of leads whose MQL state changed (newly qualified).
    `touch`: leads' new last-activity times, written by the same UPDATE as the points."""
    if not activities:
        add_stored(conn, {}, touch)
        return []
    rules = load_rules(conn)
    kinds = rules.kinds
    acts = [a for a in activities if a.kind in kinds and not a.bot]
    if not acts:
        add_stored(conn, {}, touch)
        return []
    deltas = score_batch(conn, rules, acts, scale(conn, now, settings))
    add_stored(conn, deltas, touch)
    changed = mql.check(conn, list(deltas), now, settings)
    accounts.refresh_for_leads(conn, list(deltas), now, settings)
    return changed


def adjust_score(conn: Connection, lead_id: int, points: float, reason: str, now: datetime,
                 settings: Settings | ScoringSettings) -> list[int]:
    """Add `points` (negative allowed) now, kept in the lead's score history; returns MQL-changed ids."""
    if not math.isfinite(points):
        raise ValidationError("points", "must be a finite number")
    require_lead(conn, lead_id)
    add_stored(conn, {lead_id: scale(conn, now, settings).to_stored(points, now)})
    conn.execute(insert(score_event).values(lead_id=lead_id, at=now, kind="adjust", points=points,
                                            reason=(reason or "adjusted")[:200]))
    changed = mql.check(conn, [lead_id], now, settings)
    accounts.refresh_for_leads(conn, [lead_id], now, settings)
    return changed


#: Rebase the score scale once the decay factor leaves this range (≈ 150 half-lives from the epoch),
#: long before stored values could overflow a double.
REBASE_BELOW = 2.0**-150


def decay_job(ws: Workspace) -> dict[str, Any]:
    """The scheduler's hourly "decay" job. Decay itself needs no work (see `scale.py`); this job refreshes
    the scores of accounts outside the ABM list (named accounts are refreshed with every scoring batch) and
    keeps the score scale's epoch within floating-point comfort by rebasing it (one table rewrite, needed
    after decades of half-lives)."""
    now = ws.clock.now()
    rebased = False
    with write_tx(ws.engine) as conn:
        sc = scale(conn, now, ws.settings)
        if sc.half_life_days > 0 and sc.factor(now) < REBASE_BELOW:
            sc = rebase(conn, sc, now)
            rebased = True
    with write_tx(ws.engine) as conn:
        mqas = accounts.refresh(conn, None, now, ws.settings)
    return {"rebased": rebased, "epoch": sc.epoch.isoformat(), "new_mqas": len(mqas)}
