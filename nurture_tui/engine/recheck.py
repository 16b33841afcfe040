"""Goals and exit rules react to data changes at once, not at the lead's next step (issue 20 item 9).

Events already re-check them in the transaction that records them (engine/events.py). A change to a lead's
data — an import, a Salesforce pull, an MQL decision, an action of another program, an edit — goes through
many writers, and every one of them stamps `lead.updated_at`. The scheduler's `recheck` job (the leader,
every `RECHECK_SECONDS`) walks the leads changed since its last look, in `(updated_at, id)` order
(index `ix_lead_updated_at`), refreshes their hot segments and checks the goal and exit rules of their live
enrollments (`events.check_rules_for_leads`). So with the scheduler running, an exit rule that a change
satisfies ends the enrollment within about a second.

The watermark is kept in memory: at start the watcher begins at the newest change (a change made while no
scheduler ran is seen at the lead's next step, as before). Writers stamp `updated_at` before they get the
write lock, so commits can land slightly out of order: each look re-reads the last `OVERLAP_SECONDS` before
the watermark and skips the (lead, updated_at) pairs it has already checked. The work per run is bounded
(`RECHECK_LIMIT` leads); a bulk change of many leads is worked off over the following runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from ..clock import Clock, clock_span
from ..segments.materialize import refresh_for_leads
from ..store.engine import write_tx
from ..store.tables import enrollment, lead
from ..workspace import Workspace
from .events import check_rules_for_leads

log = logging.getLogger("nurture.engine")

RECHECK_SECONDS = 1.0
RECHECK_LIMIT = 2000
OVERLAP_SECONDS = 10.0
LIVE = ("active", "waiting")


class ChangeWatcher:
    """Remembers how far it has looked (the newest `updated_at` checked) and which (lead, updated_at)
    pairs inside the overlap it has already checked."""

    def __init__(self, overlap_seconds: float = OVERLAP_SECONDS) -> None:
        self.overlap = timedelta(seconds=overlap_seconds)
        self.mark: datetime | None = None
        self.seen: dict[int, datetime] = {}
        self.started = False
        self.checked = 0  # leads looked at (for tests and logs)
        self.finished = 0  # enrollments ended by a goal or an exit rule

    def _lower(self, clock: Clock) -> datetime | None:
        return None if self.mark is None else self.mark - clock_span(clock, self.overlap)

    def _recent(self, conn: Connection, lower: datetime | None) -> Iterator[tuple[int, datetime]]:
        q = select(lead.c.id, lead.c.updated_at).where(lead.c.updated_at.is_not(None))
        if lower is not None:
            q = q.where(lead.c.updated_at >= lower)
        for row in conn.execute(q.order_by(lead.c.updated_at, lead.c.id), execution_options={"yield_per": 2000}):
            yield int(row[0]), row[1]

    def start_at_latest(self, conn: Connection, clock: Clock) -> None:
        """Begin at the newest change: what is already there counts as checked."""
        self.mark = conn.execute(select(func.max(lead.c.updated_at))).scalar()
        self.seen = dict(self._recent(conn, self._lower(clock))) if self.mark is not None else {}
        self.started = True

    def run(self, ws: Workspace, limit: int = RECHECK_LIMIT) -> int:
        """One look: returns how many enrollments a goal or exit rule ended."""
        if not self.started:
            with ws.engine.connect() as conn:
                self.start_at_latest(conn, ws.clock)
            return 0
        with ws.engine.connect() as conn:
            changed: list[tuple[int, datetime]] = []
            for lid, at in self._recent(conn, self._lower(ws.clock)):
                if self.seen.get(lid) != at:
                    changed.append((lid, at))
                    if len(changed) >= limit:
                        break
            if not changed:
                return 0
            ids = [lid for lid, _ in changed]
            live = sorted(set(conn.execute(
                select(enrollment.c.lead_id).where(enrollment.c.lead_id.in_(ids), enrollment.c.status.in_(LIVE))
            ).scalars()))
        ended = 0
        if live:
            now = ws.clock.now()
            with write_tx(ws.engine) as conn:
                refresh_for_leads(conn, live, now)
                ended = check_rules_for_leads(conn, live, now)
        self.seen.update(changed)
        newest = max(at for _, at in changed)
        self.mark = newest if self.mark is None else max(self.mark, newest)
        lower = self._lower(ws.clock)
        if lower is not None:
            self.seen = {lid: at for lid, at in self.seen.items() if at >= lower}
        self.checked += len(changed)
        self.finished += ended
        if ended:
            log.info("data change ended enrollments", extra={"leads": len(live), "ended": ended})
        return ended
