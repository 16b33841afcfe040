"""Bulk actions on a set of leads (the TUI's tagged rows, or a CLI selection), each in one write
transaction with one audit row naming the user and the scope. They call the owning areas' services:
enrolment (engine), opt-out (mail subscriptions + the engagement entry point), score adjustment (scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..activity import ActivityEvent
from ..engine.enroll import enroll_lead
from ..engine.events import record_events
from ..errors import ValidationError
from ..mail.subscriptions import set_global_opt_out
from ..scoring.service import adjust_score as adjust_one
from ..store import audit
from ..store.engine import write_tx
from ..workspace import Workspace

MAX_BULK = 10_000  # the audit row lists the ids; bigger sets belong to a segment-based enrolment


@dataclass(frozen=True)
class BulkResult:
    action: str
    requested: int
    changed: int

    @property
    def skipped(self) -> int:
        return self.requested - self.changed

    def summary(self) -> str:
        tail = f", {self.skipped} skipped" if self.skipped else ""
        return f"{self.action}: {self.changed} of {self.requested} leads{tail}"


def _check(lead_ids: Sequence[int]) -> list[int]:
    ids = sorted(set(lead_ids))
    if not ids:
        raise ValidationError("selection", "no leads selected")
    if len(ids) > MAX_BULK:
        raise ValidationError("selection", f"{len(ids)} leads is more than {MAX_BULK}; use a segment instead")
    return ids


def _audit(conn: Any, ws: Workspace, user: str, action: str, ids: list[int], after: dict[str, Any]) -> None:
    audit.record(conn, at=ws.clock.now(), user=user, action=action, entity="lead",
                 entity_id=str(ids[0]) if len(ids) == 1 else f"{len(ids)} leads",
                 after={**after, "lead_ids": ids})


def enroll(ws: Workspace, lead_ids: Sequence[int], sequence_name: str, *, user: str) -> BulkResult:
    """Enrol the leads in the sequence's current version (re-entry and suppression rules apply)."""
    ids = _check(lead_ids)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        made = [enroll_lead(conn, lead_id, sequence_name, now, source=f"tui:{user}") for lead_id in ids]
        changed = sum(1 for m in made if m is not None)
        _audit(conn, ws, user, "lead.enroll", ids, {"sequence": sequence_name, "enrolled": changed})
    return BulkResult("enrol", len(ids), changed)


def unsubscribe(ws: Workspace, lead_ids: Sequence[int], *, user: str) -> BulkResult:
    """Opt the leads out of all marketing mail and record the unsubscribe as engagement (exit rules fire)."""
    ids = _check(lead_ids)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        changed = [lead_id for lead_id in ids if set_global_opt_out(conn, lead_id, True, now)]
        if changed:
            record_events(conn, [ActivityEvent(i, "unsubscribe", now, meta={"source": "operator", "by": user})
                                 for i in changed], now, ws.settings)
        _audit(conn, ws, user, "lead.unsubscribe", ids, {"opted_out": len(changed)})
    return BulkResult("unsubscribe", len(ids), len(changed))


def adjust_score(ws: Workspace, lead_ids: Sequence[int], points: float, reason: str, *, user: str) -> BulkResult:
    """Add `points` (negative allowed) to each lead's live score now, with `reason` in its history."""
    ids = _check(lead_ids)
    if not reason.strip():
        raise ValidationError("reason", "a reason is required")
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        for lead_id in ids:
            adjust_one(conn, lead_id, points, reason, now, ws.settings)
        _audit(conn, ws, user, "lead.adjust_score", ids, {"points": points, "reason": reason})
    return BulkResult("adjust score", len(ids), len(ids))


def parse_points(text: str) -> float:
    """'+10', '-5', '2.5' → float; anything else is a one-line error."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValidationError("points", f"not a number: {text!r} (e.g. 10 or -5)") from None
    if value == 0 or abs(value) > 10_000:
        raise ValidationError("points", "must be non-zero and at most 10000 either way")
    return value
