"""Former home of the score scale, now `scoring/scale.py`; these names stay importable for callers
outside scoring (segments compiler, TUI, segment tests) until they import `scoring.scale` directly."""

from __future__ import annotations

from .scale import EPOCH_KEY, HALF_LIFE_KEY, ScoreScale, load_scale, put_once, rebase

__all__ = ["EPOCH_KEY", "HALF_LIFE_KEY", "ScoreScale", "load_scale", "put_once", "rebase"]
