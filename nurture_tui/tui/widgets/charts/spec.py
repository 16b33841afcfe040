"""What a chart shows, independent of how it is drawn: its kind, the category labels along one axis and one
or more named series of values (one value per label)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ChartKind = Literal["bars", "trend", "histogram"]


@dataclass(frozen=True)
class ChartSpec:
    kind: ChartKind
    title: str
    labels: list[str]
    series: dict[str, list[float]] = field(default_factory=dict)
    unit: str = ""
    #: Why there is nothing to draw ("no split arms in the period"); None when there is.
    empty: str | None = None

    @property
    def has_data(self) -> bool:
        return bool(self.labels) and any(any(v for v in vs) for vs in self.series.values())
