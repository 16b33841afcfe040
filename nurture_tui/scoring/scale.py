"""The workspace score scale: exponential decay without rewriting the lead table.

A point earned at time `t` is worth `2 ** (-(now - t) / half_life)` points at `now`. Every lead's
decayed score shrinks by the *same* factor as time passes, so we store each lead's score on a fixed
scale anchored at the workspace epoch:

    stored = Σ points_i / f(t_i)          f(t) = 2 ** (-(t - epoch) / half_life)
    live   = stored * f(now)

Adding points is one `UPDATE lead SET score = score + points / f(at)`; ordering by the stored column
is ordering by live score (the leaderboard uses the plain `lead(score)` index); a rule `score >= X`
compiles to `lead.score >= X / f(now)`. Nothing is rewritten hourly. `half_life_days = 0` disables
decay (f = 1). The epoch is kept in `meta` so every process agrees; `rebase()` moves it forward (one
table rewrite, only needed after decades of half-lives, when floats would lose range).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError

from ..config import ScoringSettings, Settings
from ..store import meta
from ..store.tables import lead
from ..store.tables import meta as meta_table

EPOCH_KEY = "score_epoch"
#: The half-life scoring last put scores on the scale with, so code without settings (segment rules run by
#: the engine, the TUI) decays with the same half-life as the scoring that wrote the column.
HALF_LIFE_KEY = "score_half_life_days"


@dataclass(frozen=True)
class ScoreScale:
    epoch: datetime
    half_life_days: float

    def factor(self, at: datetime) -> float:
        """Decay factor f(at) relative to the epoch (1.0 at the epoch, 0.5 one half-life later)."""
        if self.half_life_days <= 0:
            return 1.0
        days = (at - self.epoch).total_seconds() / 86400.0
        return float(2.0 ** (-days / self.half_life_days))

    def live(self, stored: float, now: datetime) -> float:
        """The decayed score a person sees now."""
        return stored * self.factor(now)

    def to_stored(self, points: float, at: datetime) -> float:
        """What `points` earned at `at` add to the stored column."""
        return points / self.factor(at)

    def stored_threshold(self, live_threshold: float, now: datetime) -> float:
        """The stored-column value equivalent to a live score of `live_threshold` now."""
        return live_threshold / self.factor(now)


#: Before anything is scored there is no epoch: every factor is 1 (nothing has decayed).
_UNSCORED = datetime(2000, 1, 1, tzinfo=UTC)


def read_scale(conn: Connection, half_life_days: float) -> ScoreScale:
    """The workspace scale for readers (the TUI, reports): never writes; with no epoch yet nothing was
    ever scored, so the factor is 1."""
    raw = meta.get(conn, EPOCH_KEY)
    if raw is None:
        return ScoreScale(epoch=_UNSCORED, half_life_days=0.0)
    return ScoreScale(epoch=datetime.fromisoformat(raw), half_life_days=half_life_days)


def load_scale(conn: Connection, half_life_days: float, now: datetime) -> ScoreScale:
    """Read the workspace epoch, creating it (= now) on first use."""
    raw = meta.get(conn, EPOCH_KEY)
    if raw is None:
        raw = put_once(conn, EPOCH_KEY, now.isoformat())
    recorded = meta.get(conn, HALF_LIFE_KEY)
    if recorded is None:
        put_once(conn, HALF_LIFE_KEY, half_life_days)
    elif float(recorded) != half_life_days:
        meta.put(conn, HALF_LIFE_KEY, half_life_days)
    return ScoreScale(epoch=datetime.fromisoformat(raw), half_life_days=half_life_days)


def scoring_settings(settings: Settings | ScoringSettings) -> ScoringSettings:
    """Scoring code accepts either the whole settings or their `scoring` part."""
    return settings if isinstance(settings, ScoringSettings) else settings.scoring


def scale(conn: Connection, now: datetime, settings: Settings | ScoringSettings) -> ScoreScale:
    """The workspace scale with the configured half-life (recorded in `meta` for readers without settings)."""
    return load_scale(conn, scoring_settings(settings).half_life_days, now)


def put_once(conn: Connection, key: str, value: Any) -> Any:
    """Insert a `meta` key unless another transaction just did; returns the value that is stored.
    (Two workers opening a fresh PostgreSQL workspace at once must agree on one epoch.)"""
    try:
        with conn.begin_nested():
            conn.execute(insert(meta_table).values(key=key, value=value))
    except IntegrityError:
        return meta.get(conn, key)
    return value


def rebase(conn: Connection, scale: ScoreScale, new_epoch: datetime) -> ScoreScale:
    """Move the epoch to `new_epoch`, rescaling every stored score so live scores are unchanged."""
    ratio = scale.factor(new_epoch)
    conn.execute(update(lead).values(score=lead.c.score * ratio))
    meta.put(conn, EPOCH_KEY, new_epoch.isoformat())
    return ScoreScale(epoch=new_epoch, half_life_days=scale.half_life_days)
