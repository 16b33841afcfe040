"""The demo's MQLs. Those the generated history earns are opened at generation time; `spread_ages` gives them
the ages a real queue has (a few minutes to four days, so some are past the SLA). While the demo runs,
`MqlArrivals` — a scheduler job — has one of the leads closest to qualifying engage (the pricing page, then
the demo-request form) at every run until it qualifies, then picks another. The events go through the
engine's pipeline like any engagement, so scoring qualifies the lead when it crosses the threshold and the
MQL queue keeps receiving new entries."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select, update

from ..activity import ActivityEvent
from ..scoring.mql import grade_rank
from ..store.engine import write_tx
from ..store.tables import activity, lead, mql
from ..workspace import Workspace

MQL_JOB = "demo-mql-arrivals"
MQL_SECONDS = 15.0  # real seconds between two engaged hot leads
MAX_AGE_HOURS = 96.0
#: The candidates a hot lead is drawn from: the highest scorers without an open MQL cycle.
CANDIDATES = 25
PRICING = "https://www.example.com/pricing"


def spread_ages(conn: Connection, lead_ids: list[int], now: datetime, seed: int) -> None:
    """Back-date the open MQLs of `lead_ids` (entry, the lead's cycle mark and its `mql` activity) to ages
    drawn from 10 minutes to MAX_AGE_HOURS, younger ones more likely."""
    rnd = random.Random(seed)
    ids = [(int(m), int(lid)) for m, lid in conn.execute(select(mql.c.id, mql.c.lead_id)
                                                         .where(mql.c.lead_id.in_(lead_ids)))] if lead_ids else []
    if not ids:
        return
    ages = [{"m": m, "l": lid, "at": now - timedelta(hours=min(MAX_AGE_HOURS, 1 / 6 + rnd.expovariate(1 / 24)))}
            for m, lid in ids]
    conn.execute(update(mql).where(mql.c.id == bindparam("m")).values(created_at=bindparam("at")), ages)
    conn.execute(update(lead).where(lead.c.id == bindparam("l")).values(mql_at=bindparam("at")), ages)
    conn.execute(update(activity).where(activity.c.lead_id == bindparam("l"), activity.c.kind == "mql")
                 .values(at=bindparam("at")), ages)


class MqlArrivals:
    def __init__(self, ws: Workspace, *, seed: int = 42) -> None:
        self.ws = ws
        self.rnd = random.Random(seed)
        self.engaged = 0
        self.hot: int | None = None  # the lead engaging now, every run until it qualifies

    def run(self, _ws: Workspace | None = None) -> int | None:
        """The hot lead engages once more; returns its id (None when every lead is in an open cycle)."""
        from ..engine.events import record_events  # with the scheduler, after the TUI's first paint

        now = self.ws.clock.now()
        rank = grade_rank(self.ws.settings.scoring.mql_grade)
        q = select(lead.c.id).where(lead.c.mql_at.is_(None), lead.c.opted_out.is_(False))
        if rank is not None:
            q = q.where(lead.c.grade_rank >= rank)
        with write_tx(self.ws.engine) as conn:
            still_hot = self.hot is not None and conn.execute(q.where(lead.c.id == self.hot)).first() is not None
            if not still_hot:  # the last one qualified (or never will): another of the leads closest to it
                candidates = list(conn.execute(q.order_by(lead.c.score.desc()).limit(CANDIDATES)).scalars())
                if not candidates:
                    return None
                self.hot = int(self.rnd.choice(candidates))
            lead_id = int(self.hot or 0)
            record_events(conn, [ActivityEvent(lead_id, "page_view", now - timedelta(minutes=4), url=PRICING),
                                 ActivityEvent(lead_id, "form", now, url=PRICING, meta={"form": "Demo request"})],
                          now, self.ws.settings)
        self.engaged += 1
        return lead_id
