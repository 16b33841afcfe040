"""Rank movement and score deltas for the leaderboards.

`BoardMoves` remembers the previous refresh (rank and live score per row key) and each row's live score at
the start of the day (UTC). That baseline is computed once per row and day by `day_start_scores`: the stored
score now, less what the lead earned today (re-derived by `scoring.history`, so caps and resets count as
scoring counted them), decayed to midnight. An account's is its leads' baselines aggregated the way account
scoring aggregates them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, select, union

from ..batching import chunks
from ..config import ScoringSettings
from ..scoring.accounts import _aggregate
from ..scoring.history import histories, recompute_stored
from ..scoring.rules import active_rules
from ..scoring.scale import ScoreScale
from ..store.tables import activity, lead, score_event


class _Ranked(Protocol):
    @property
    def key(self) -> int: ...
    @property
    def rank(self) -> int: ...
    @property
    def score(self) -> float: ...


R = TypeVar("R", bound=_Ranked)


def day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


class BoardMoves:
    """Per board (leads or accounts) of one console."""

    def __init__(self) -> None:
        self._previous: dict[int, tuple[int, float]] | None = None  # None: the first refresh shows no movement
        self._day: date | None = None
        self._day_start: dict[int, float] = {}
        self._deferred: list[int] = []  # keys shown without their baseline yet (see defer_baselines)

    def missing_baselines(self, now: datetime, keys: Sequence[int]) -> list[int]:
        """Keys whose start-of-day score is not known yet (all of them on a new day)."""
        if now.date() != self._day:
            self._day, self._day_start = now.date(), {}
        return [k for k in keys if k not in self._day_start]

    def add_baselines(self, scores: dict[int, float], now: datetime | None = None) -> None:
        """Start-of-day scores computed at `now` (dropped if the day has turned since)."""
        if now is None or now.date() == self._day:
            self._day_start.update(scores)

    def defer_baselines(self, keys: Sequence[int]) -> None:
        """These rows are shown without a day delta for now; `take_deferred` hands them to whoever computes
        their baselines off the refresh's critical path."""
        self._deferred = list(keys)

    def take_deferred(self) -> list[int]:
        keys, self._deferred = self._deferred, []
        return keys

    @property
    def deferred(self) -> bool:
        return bool(self._deferred)

    def reset_refresh(self) -> None:
        """The next refresh shows no movement (after a filter change, the previous ranks mean nothing)."""
        self._previous = None

    def apply(self, rows: Sequence[R]) -> list[R]:
        """The rows with `moved`, `delta_refresh` and `delta_day` set; remembers them for the next call."""
        prev = self._previous
        out = []
        for r in rows:
            before = prev.get(r.key) if prev is not None else (r.rank, r.score)
            base = self._day_start.get(r.key)
            out.append(replace(r,  # type: ignore[type-var]
                               moved=None if before is None else before[0] - r.rank,
                               delta_refresh=0.0 if before is None else r.score - before[1],
                               delta_day=None if base is None else r.score - base))
        self._previous = {r.key: (r.rank, r.score) for r in rows}
        return out


def day_start_scores(conn: Connection, kind: str, keys: Sequence[int], scale: ScoreScale, now: datetime,
                     settings: ScoringSettings) -> dict[int, float]:
    """Live score at 00:00 UTC today per lead or account key."""
    midnight = day_start(now)
    factor = scale.factor(midnight)
    stored: dict[int, float] = {}
    if kind == "leads":
        for part in chunks(sorted(keys)):
            stored.update((int(i), float(v)) for i, v in conn.execute(select(lead.c.id, lead.c.score)
                                                                      .where(lead.c.id.in_(part))))
        return {k: v * factor for k, v in _stored_at(conn, stored, scale, midnight).items()}
    members: dict[int, list[int]] = defaultdict(list)
    for part in chunks(sorted(keys)):
        for lid, aid, score in conn.execute(select(lead.c.id, lead.c.account_id, lead.c.score)
                                            .where(lead.c.account_id.in_(part))):
            members[int(aid)].append(int(lid))
            stored[int(lid)] = float(score)
    at_midnight = _stored_at(conn, stored, scale, midnight)
    return {k: _aggregate([at_midnight[i] for i in members.get(k, [])], settings) * factor for k in keys}


def _stored_at(conn: Connection, stored_now: dict[int, float], scale: ScoreScale, at: datetime) -> dict[int, float]:
    """Each lead's stored score as it was at `at`: unchanged unless it earned points or was reset since."""
    changed = _changed_since(conn, list(stored_now), at)
    out = dict(stored_now)
    for lead_id, changes in (histories(conn, changed, active_rules(conn)) if changed else {}).items():
        since = [c for c in changes if c.at >= at]
        if any(c.kind == "reset" for c in since):
            out[lead_id] = recompute_stored([c for c in changes if c.at < at], scale)
        else:
            out[lead_id] = stored_now[lead_id] - sum(scale.to_stored(c.points, c.at) for c in since)
    return out


def _changed_since(conn: Connection, lead_ids: list[int], at: datetime) -> list[int]:
    out: set[int] = set()
    for part in chunks(sorted(lead_ids)):
        q: Any = union(
            select(activity.c.lead_id).where(activity.c.lead_id.in_(part), activity.c.at >= at,
                                             activity.c.bot.is_(False)),
            select(score_event.c.lead_id).where(score_event.c.lead_id.in_(part), score_event.c.at >= at))
        out.update(int(r[0]) for r in conn.execute(q))
    return sorted(out)
