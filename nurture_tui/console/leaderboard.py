"""The leaderboard: the hottest leads by live (decayed) score."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from ..store.tables import lead, user
from .session import ConsoleSession


@dataclass(frozen=True)
class BoardRow:
    lead_id: int
    rank: int
    email: str
    name: str
    company: str
    score: float
    grade: str
    stage: str
    owner: str
    last_engagement: datetime | None


def leaderboard(conn: Connection, *, factor: float, limit: int = 50, owner_id: int | None = None) -> list[BoardRow]:
    """Top leads by live score. Ordering by the stored column is ordering by live score (decay.py);
    `factor` is the scale's decay factor now."""
    stmt = (
        select(lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, lead.c.score,
               lead.c.grade, lead.c.stage, lead.c.last_activity_at, user.c.name.label("owner_name"),
               user.c.username.label("owner_username"))
        .select_from(lead.outerjoin(user, user.c.id == lead.c.owner_id))
        .order_by(lead.c.score.desc(), lead.c.id.desc()).limit(limit)
    )
    if owner_id is not None:
        stmt = stmt.where(lead.c.owner_id == owner_id)
    return [
        BoardRow(
            lead_id=r.id, rank=i + 1, email=r.email,
            name=" ".join(p for p in (r.first_name, r.last_name) if p), company=r.company or "",
            score=r.score * factor, grade=r.grade or "", stage=r.stage or "",
            owner=r.owner_name or r.owner_username or "", last_engagement=r.last_activity_at,
        )
        for i, r in enumerate(conn.execute(stmt))
    ]


class LeaderboardConsole:
    AREA = "leaderboard"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def top(self, limit: int = 50) -> list[BoardRow]:
        """The top `limit` leads (a rep: of their own), scores decayed to now."""
        s = self.session
        with s.read() as conn:
            factor = s.scale(conn).factor(s.now())
            return leaderboard(conn, factor=factor, limit=limit, owner_id=s.owner_scope)
