"""The process-wide heap hold: the engine's hot path and an open sequence editor both freeze the heap, and
neither thaws the other's (only the last release does)."""

from __future__ import annotations

import gc

from nurture_tui import heap
from nurture_tui.engine import tuning


def test_only_the_last_release_thaws() -> None:
    gc.unfreeze()
    heap.hold()
    kept = [object() for _ in range(10)]  # made after the first hold: the second freezes them too
    heap.hold()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and kept
    heap.release()
    assert gc.get_freeze_count() == frozen  # the other holder still holds
    heap.release()
    assert gc.get_freeze_count() == 0 and heap.holders() == 0
    heap.release()  # one too many: nothing happens
    assert heap.holders() == 0


def test_the_engine_tuning_and_an_editor_share_the_hold() -> None:
    gc.unfreeze()
    threshold = gc.get_threshold()
    tuning.tune_gc()
    heap.hold()  # an editor opens
    tuning.restore_gc()  # the scheduler stops: the editor's hold keeps the heap frozen
    assert gc.get_freeze_count() > 0 and gc.get_threshold() == threshold
    heap.release()
    assert gc.get_freeze_count() == 0
