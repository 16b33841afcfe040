"""The MQL queue: open MQLs (a rep: their own) and the rep's decisions, made through the scoring area's MQL
service, which audits them and queues the hand-off to Salesforce."""

from __future__ import annotations

from ..scoring import mql
from ..scoring.mql import MqlEntry
from .session import ConsoleSession

__all__ = ["MqlConsole", "MqlEntry"]


class MqlConsole:
    AREA = "mql"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def queue(self, limit: int = 500) -> list[MqlEntry]:
        s = self.session
        rep = s.operator.username if s.operator.is_rep else None
        with s.read() as conn:
            return mql.list_queue(conn, s.now(), s.settings, rep=rep, limit=limit)

    def accept(self, mql_id: int) -> None:
        s = self.session
        with s.write(self.AREA) as conn:
            mql.accept(conn, mql_id, s.operator.username, s.now(), s.settings)

    def reject(self, mql_id: int, reason: str) -> str:
        """Reject with a reason; returns the status the MQL ends in (recycled into nurture, or rejected)."""
        s = self.session
        with s.write(self.AREA) as conn:
            return mql.reject(conn, mql_id, reason, s.operator.username, s.now(), s.settings)
