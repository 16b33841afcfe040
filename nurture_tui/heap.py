"""One process-wide hold on the cyclic GC's permanent generation, shared by whoever wants long-lived objects
out of full collections: the engine's hot path (`engine.tuning`) and an open sequence editor (its keystrokes
must not wait 250–400 ms for a full pass over half a million objects).

`gc.freeze()` moves every object alive now into the permanent generation and `gc.unfreeze()` moves them all
back, whoever froze them, so the two must not thaw each other: each `hold()` freezes what exists now (again)
and only the last `release()` thaws."""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_holders = 0


def hold() -> None:
    global _holders
    with _lock:
        _holders += 1
        gc.freeze()


def release() -> None:
    """Drop one hold; the last one thaws the heap (objects freed meanwhile are collected from then on)."""
    global _holders
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()


def holders() -> int:
    return _holders
