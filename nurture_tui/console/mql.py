"""The MQL queue: open MQLs (a rep: their own; an operator: every queue, or their own) and the rep's
decisions — accept, reject with a reason (recycled into nurture), reassign to a user or a queue, snooze —
each made through the scoring area's MQL service, which audits it and queues the push to Salesforce.
Actions on several tagged entries run in one transaction: all of them happen, or none."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from sqlalchemy import Connection, select

from ..scoring import mql
from ..scoring.history import history
from ..scoring.mql import REJECT_REASONS, SORTS, MqlEntry
from ..scoring.rules import active_rules
from ..scoring.scale import ScoreScale
from ..store.tables import lead, user
from ..store.tables import mql as mql_table
from .session import ConsoleSession

__all__ = ["REJECT_REASONS", "SORTS", "HandoffPanel", "MqlConsole", "MqlEntry", "Scope", "arrivals"]

Scope = Literal["mine", "all"]
#: Score-history points the panel's sparkline shows (the newest, ending with the score now).
CURVE_POINTS = 40


@dataclass(frozen=True)
class HandoffPanel:
    """What the side panel shows for one entry: the hand-off summary given to the rep (why it qualified,
    sequences, emails opened, links clicked with their titles, pages, forms, score history), the live score
    over its history, and the lead's Salesforce id."""

    mql_id: int
    summary: str
    curve: list[float]
    sf_id: str | None


def arrivals(previous: set[int] | None, entries: Sequence[MqlEntry], rep: str) -> list[MqlEntry]:
    """Entries for `rep` that were not in the previous load (none on the first load)."""
    if previous is None:
        return []
    return [e for e in entries if e.id not in previous and e.rep == rep]


def score_curve(lead_id: int, conn: Connection, scale: ScoreScale, now: datetime) -> list[float]:
    """The lead's live score after each of its last score changes, then now."""
    changes = history(conn, lead_id, active_rules(conn))
    stored, curve = 0.0, []
    for ch in changes:
        stored = scale.to_stored(ch.points, ch.at) if ch.kind == "reset" else stored + scale.to_stored(ch.points, ch.at)
        curve.append(max(0.0, scale.live(stored, ch.at)))
    stored_now = conn.execute(select(lead.c.score).where(lead.c.id == lead_id)).scalar() or 0.0
    return [*curve[-(CURVE_POINTS - 1):], max(0.0, scale.live(float(stored_now), now))]


class MqlConsole:
    AREA = "mql"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    @property
    def default_scope(self) -> Scope:
        return "mine" if self.session.operator.is_rep else "all"

    @property
    def may_see_all(self) -> bool:
        return not self.session.operator.is_rep

    def queue(self, limit: int = 500, *, scope: Scope | None = None, sort: str = "age") -> list[MqlEntry]:
        """Open entries, oldest first (or by score / grade). A rep always sees only their own."""
        s = self.session
        mine = (scope or self.default_scope) == "mine" or s.operator.is_rep
        with s.read() as conn:
            return mql.list_queue(conn, s.now(), s.settings, rep=s.operator.username if mine else None,
                                  limit=limit, sort=sort)

    @property
    def sla_hours(self) -> float:
        return self.session.settings.scoring.mql_sla_hours

    def panel(self, mql_id: int) -> HandoffPanel:
        s = self.session
        with s.read() as conn:
            row = conn.execute(select(mql_table.c.lead_id, mql_table.c.summary, lead.c.sf_id)
                               .join(lead, lead.c.id == mql_table.c.lead_id).where(mql_table.c.id == mql_id)).one()
            curve = score_curve(int(row.lead_id), conn, s.scale(conn), s.now())
        return HandoffPanel(mql_id=mql_id, summary=row.summary or "", curve=curve, sf_id=row.sf_id)

    # -- pickers ------------------------------------------------------------------------------------

    def reassign_targets(self) -> list[tuple[str, str]]:
        """(value, label): active users (`user:<name>`), then queues (`queue:<name>`) — the configured one
        and those entries wait in now."""
        s = self.session
        with s.read() as conn:
            users = conn.execute(select(user.c.username, user.c.name, user.c.role).where(user.c.active.is_(True))
                                 .order_by(user.c.username)).all()
            queues = set(conn.execute(select(mql_table.c.queue).where(mql_table.c.queue.is_not(None))
                                      .distinct()).scalars())
        queues.add(s.settings.scoring.assign_queue)
        return ([(f"user:{u.username}", f"{u.name or u.username}  ({u.username}, {u.role})") for u in users]
                + [(f"queue:{q}", f"queue: {q}") for q in sorted(queues)])

    def snooze_choices(self) -> list[tuple[str, str]]:
        """(ISO time, label): later today, tomorrow morning, next Monday, in a week (UTC)."""
        now = self.session.now()
        morning = datetime.combine(now.date() + timedelta(days=1), time(9), tzinfo=now.tzinfo)
        monday = morning + timedelta(days=(7 - morning.weekday()) % 7)
        options = [("in 1 hour", now + timedelta(hours=1)), ("in 4 hours", now + timedelta(hours=4)),
                   ("tomorrow 09:00", morning), ("Monday 09:00", monday), ("in a week", now + timedelta(days=7))]
        out: dict[datetime, str] = {}  # one choice per time: "in a week" is "Monday 09:00" on a Monday morning
        for label, at in options:
            out.setdefault(at, f"{label}  ({at:%a %d %b %H:%M} UTC)")
        return [(at.isoformat(), label) for at, label in out.items()]

    # -- decisions ----------------------------------------------------------------------------------

    def _each(self, mql_ids: Sequence[int], act: Callable[[Connection, int], object]) -> int:
        with self.session.write(self.AREA) as conn:
            for mql_id in mql_ids:
                act(conn, mql_id)
        return len(mql_ids)

    def accept(self, mql_id: int) -> None:
        self.accept_many([mql_id])

    def accept_many(self, mql_ids: Sequence[int]) -> int:
        s = self.session
        return self._each(mql_ids, lambda conn, i: mql.accept(conn, i, s.operator.username, s.now(), s.settings))

    def reject(self, mql_id: int, reason: str) -> str:
        """Reject with a reason; returns the status the MQL ends in (recycled into nurture, or rejected)."""
        s = self.session
        with s.write(self.AREA) as conn:
            return mql.reject(conn, mql_id, reason, s.operator.username, s.now(), s.settings)

    def reject_many(self, mql_ids: Sequence[int], reason: str) -> int:
        s = self.session
        return self._each(mql_ids, lambda conn, i: mql.reject(conn, i, reason, s.operator.username, s.now(),
                                                              s.settings))

    def reassign_many(self, mql_ids: Sequence[int], target: str) -> int:
        """`target` is `user:<username>` or `queue:<name>` (from `reassign_targets`)."""
        s = self.session
        kind, _, name = target.partition(":")
        if kind == "queue":
            return self._each(mql_ids, lambda conn, i: mql.reassign_to_queue(conn, i, name, s.operator.username,
                                                                             s.now()))
        return self._each(mql_ids, lambda conn, i: mql.reassign(conn, i, name, s.operator.username, s.now(),
                                                                s.settings))

    def snooze_many(self, mql_ids: Sequence[int], until: datetime) -> int:
        s = self.session
        return self._each(mql_ids, lambda conn, i: mql.snooze(conn, i, until, s.operator.username, s.now()))
