"""Fixed jobs other areas plug into the scheduler: outbox dispatch, Salesforce sync, score decay.

A hook is `fn(ws) -> object` run every `interval_seconds` by the leader. Areas register theirs with
`register(...)`; the well-known ones are found by name on first use (so the scheduler never imports an
area at module load), and a missing one is simply not scheduled.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Hook = Callable[[Any], Any]


@dataclass(frozen=True)
class HookSpec:
    name: str
    fn: Hook
    interval_seconds: float


_registered: dict[str, HookSpec] = {}

#: name → (module, attribute, interval: settings path or seconds, extra positional args after ws)
WELL_KNOWN: dict[str, tuple[str, str, str | float, tuple[Any, ...]]] = {
    "dispatch": ("nurture_tui.mail.dispatch", "dispatch_due", 2.0, (1000,)),
    "sync": ("nurture_tui.salesforce.sync", "scheduler_hook", "salesforce.sync_interval_seconds", ()),
    "decay": ("nurture_tui.scoring.service", "scheduler_hook", 3600.0, ()),
}


def register(name: str, fn: Hook, interval_seconds: float) -> None:
    """Add (or replace) a fixed job run by the leader every `interval_seconds`."""
    _registered[name] = HookSpec(name, fn, float(interval_seconds))


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _interval(settings: Any, spec: str | float) -> float:
    if isinstance(spec, (int, float)):
        return float(spec)
    value: Any = settings
    for part in spec.split("."):
        value = getattr(value, part)
    return float(value)


def _bind(fn: Callable[..., Any], args: tuple[Any, ...]) -> Hook:
    def run(ws: Any) -> Any:
        return fn(ws, *args)

    run.__name__ = getattr(fn, "__name__", "hook")
    return run


def active_hooks(settings: Any) -> list[HookSpec]:
    """Registered hooks plus every well-known hook whose module provides it."""
    out = dict(_registered)
    for name, (module, attr, interval, args) in WELL_KNOWN.items():
        if name in out:
            continue
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        out[name] = HookSpec(name, _bind(fn, args), _interval(settings, interval))
    return list(out.values())
