"""The import's read-ahead: order kept, producer errors re-raised, early stop ends the producer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from nurture_tui.leads.importer import prefetch


def test_order_and_completion() -> None:
    assert list(prefetch(iter(range(100)), depth=2)) == list(range(100))


def test_producer_error_is_raised_in_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("bad chunk")

    got = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1]


def test_consumer_stopping_early_stops_the_producer() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    before = threading.active_count()
    for item in prefetch(items(), depth=2):
        if item == 3:
            break
    assert threading.active_count() == before
    assert len(produced) < 10
