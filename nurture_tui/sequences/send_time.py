"""Send-time optimisation (`send: {send_time: optimal}`), stated exactly in docs/adaptive.md.

Pure functions: the hour histogram is gathered by the caller (sequences/adaptive_store.py for the engine
and the simulator, the bench's own world for `nurture bench adaptive`); choosing the time is here.

- Histogram: the lead's own opens and clicks by hour of day in the lead's time zone (machine opens
  excluded); with fewer than MIN_OWN events, the distribution of the lead's persona (or, without one, of
  the sequence's entry segment) when it has at least MIN_GROUP events; else none: the plain schedule.
- Time: the candidates are the plain slot P (what the send would do without optimisation) and every
  local hour start in (P, P + 24 h]; a candidate must be inside the send window and under the caps
  (`timing.next_allowed_send(c) == c`). The chosen candidate has the largest histogram count at its
  local hour; ties go to the earliest (so P wins when its hour is as good as any).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import timing
from .model import Caps, SendWindow

MIN_OWN = 3  # the lead's own events needed to use its own histogram
MIN_GROUP = 20  # a persona's / segment's events needed to use theirs
HORIZON = timedelta(hours=24)  # an optimal send is at most this much later than the plain schedule


@dataclass(frozen=True)
class HourHistogram:
    counts: tuple[int, ...]  # 24 counts, local hour 0–23
    source: str  # lead / persona:<name> / segment:<name> / window

    @property
    def events(self) -> int:
        return sum(self.counts)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "hours": list(self.counts)}


NO_HISTOGRAM = HourHistogram((0,) * 24, "window")


def histogram(hours: Iterable[int], source: str) -> HourHistogram:
    counts = [0] * 24
    for h in hours:
        counts[h] += 1
    return HourHistogram(tuple(counts), source)


def pick_histogram(own: HourHistogram | None, groups: Sequence[HourHistogram | None]) -> HourHistogram:
    """The lead's own histogram if it has MIN_OWN events, else the first group one with MIN_GROUP."""
    if own is not None and own.events >= MIN_OWN:
        return own
    for g in groups:
        if g is not None and g.events >= MIN_GROUP:
            return g
    return NO_HISTOGRAM


def best_time(
    hist: HourHistogram, plain: datetime, tz: ZoneInfo, window: SendWindow | None, caps: Caps | None,
    country: str | None, sent: Iterable[datetime] = (),
) -> datetime:
    """The send time for `hist`, given the plain slot `plain` (already inside the window and caps)."""
    if hist.events == 0:
        return plain
    sent_list = list(sent)
    local = plain.astimezone(tz)
    best, best_count = plain, hist.counts[local.hour]
    # hour starts stepped in UTC (wall-clock arithmetic would land in DST gaps)
    first = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC) + timedelta(hours=1)
    for k in range(24):
        cand = first + timedelta(hours=k)
        if cand - plain > HORIZON:
            break
        count = hist.counts[cand.astimezone(tz).hour]
        if count <= best_count:
            continue
        if (window is not None or caps is not None) and \
                timing.next_allowed_send(window, caps, tz, country, cand, sent_list) != cand:
            continue
        best, best_count = cand, count
    return best


def describe_histogram(detail: dict[str, Any]) -> str:
    """The histogram a decision used, e.g. `lead's own opens/clicks: 14h ×4, 9h ×1` (top hours first)."""
    hours = detail.get("hours") or []
    source = str(detail.get("source", "window"))
    if not any(hours):
        return "no opens or clicks to learn from: the plain schedule"
    top = sorted(((n, h) for h, n in enumerate(hours) if n), key=lambda x: (-x[0], x[1]))[:5]
    who = {"lead": "the lead's own"}.get(source, source.replace(":", " ") + "'s")
    return f"{who} opens/clicks by local hour: " + ", ".join(f"{h}h ×{n}" for n, h in top)
