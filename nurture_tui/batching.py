"""Splitting work into bounded batches — the one `chunks` helper every area uses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

T = TypeVar("T")

#: ids per `IN (…)` list: well under SQLite's bound-parameter limit and every driver's.
IN_LIST_SIZE = 900


def chunks(items: Iterable[T], size: int = IN_LIST_SIZE) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items (the last may be shorter); works on any iterable,
    lazily, so a generator of a million ids is never held in memory at once."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    if isinstance(items, Sequence):
        for i in range(0, len(items), size):
            yield list(items[i : i + size])
        return
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
