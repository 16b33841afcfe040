"""Histogram buckets for samples of days (time to opportunity): round bucket widths, one count per group."""

from __future__ import annotations

import math

NICE = (1, 2, 5, 7, 10, 14, 15, 30, 60, 90, 180, 365)


def bucket_width(top: float, buckets: int) -> int:
    """The smallest round width (days) that covers `top` in at most `buckets` buckets."""
    for width in NICE:
        if top < width * buckets:
            return width
    return math.ceil((top + 1) / buckets)


def histogram(groups: dict[str, list[float]], buckets: int = 8) -> tuple[list[str], dict[str, list[float]]]:
    """Bucket labels ("0–6 d") and, per group, how many samples fall in each bucket."""
    top = max((x for xs in groups.values() for x in xs), default=0.0)
    if not any(groups.values()):
        return [], {name: [] for name in groups}
    width = bucket_width(top, buckets)
    n = int(top // width) + 1
    labels = [f"{i * width}–{(i + 1) * width - 1} d" if width > 1 else f"{i} d" for i in range(n)]
    counts = {name: [0.0] * n for name in groups}
    for name, xs in groups.items():
        for x in xs:
            counts[name][min(n - 1, int(max(x, 0) // width))] += 1
    return labels, counts
