"""The leaderboards: the hottest leads and accounts by live (decayed) score, filtered by segment, owner and
sequence, with each row's rank movement and score deltas (since the previous refresh and since the start
of the day, UTC) — see `board_moves` for how those are kept."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Select, exists, func, select

from ..store.tables import account, enrollment, lead, segment, segment_member, sequence, user
from .board_moves import BoardMoves, day_start_scores
from .session import ConsoleSession

Kind = Literal["leads", "accounts"]


@dataclass(frozen=True)
class BoardFilter:
    """Narrow the board to leads in a segment, owned by a user, or enrolled in a sequence (names)."""

    segment: str | None = None
    owner: str | None = None
    sequence: str | None = None

    def describe(self) -> str:
        parts = [f"segment {self.segment}" if self.segment else "", f"owner {self.owner}" if self.owner else "",
                 f"sequence {self.sequence}" if self.sequence else ""]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class BoardRow:
    """One row of either board. For an account, `lead_id` is its hottest lead (what `enter` opens)."""

    key: int  # the lead id or the account id
    lead_id: int
    rank: int
    name: str
    company: str
    score: float
    grade: str
    stage: str
    owner: str
    last_engagement: datetime | None
    #: Rank places gained since the previous refresh (negative: lost); None when new on the board.
    moved: int | None = None
    delta_refresh: float = 0.0
    delta_day: float | None = None


@dataclass(frozen=True)
class BoardChoices:
    """What the filters can be set to."""

    segments: list[str]
    owners: list[str]
    sequences: list[str]


def _lead_filter(stmt: Select[Any], f: BoardFilter, owner_id: int | None) -> Select[Any]:
    if owner_id is not None:
        stmt = stmt.where(lead.c.owner_id == owner_id)
    if f.owner:
        stmt = stmt.where(lead.c.owner_id == select(user.c.id).where(user.c.username == f.owner).scalar_subquery())
    if f.segment:
        seg_id = select(segment.c.id).where(segment.c.name == f.segment).scalar_subquery()
        stmt = stmt.where(exists().where(segment_member.c.segment_id == seg_id, segment_member.c.lead_id == lead.c.id))
    if f.sequence:
        seq_id = select(sequence.c.id).where(sequence.c.name == f.sequence).scalar_subquery()
        stmt = stmt.where(exists().where(enrollment.c.lead_id == lead.c.id, enrollment.c.sequence_id == seq_id))
    return stmt


def _owner_name(r: Any) -> str:
    return str(r.owner_name or r.owner_username or "")


def leaderboard(conn: Connection, *, factor: float, limit: int = 50, owner_id: int | None = None,
              board_filter: BoardFilter = BoardFilter()) -> list[BoardRow]:
    """Top leads by live score. Ordering by the stored column is ordering by live score (decay.py), so this
    walks `ix_lead_score` backwards; `factor` is the scale's decay factor now."""
    stmt = (
        select(lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, lead.c.score,
               lead.c.grade, lead.c.stage, lead.c.last_activity_at, user.c.name.label("owner_name"),
               user.c.username.label("owner_username"))
        .select_from(lead.outerjoin(user, user.c.id == lead.c.owner_id))
        .order_by(lead.c.score.desc(), lead.c.id.desc()).limit(limit)
    )
    stmt = _lead_filter(stmt, board_filter, owner_id)
    return [
        BoardRow(key=r.id, lead_id=r.id, rank=i + 1,
                 name=" ".join(p for p in (r.first_name, r.last_name) if p) or r.email, company=r.company or "",
                 score=r.score * factor, grade=r.grade or "", stage=r.stage or "", owner=_owner_name(r),
                 last_engagement=r.last_activity_at)
        for i, r in enumerate(conn.execute(stmt))
    ]


def top_accounts(conn: Connection, *, factor: float, limit: int = 50, owner_id: int | None = None,
                 board_filter: BoardFilter = BoardFilter()) -> list[BoardRow]:
    """Top accounts by live account score (the aggregate scoring keeps in `account.score`, on the same
    scale as leads). Grade and stage are the hottest lead's; last engagement the latest of its leads'.
    Segment and sequence filters keep accounts with at least one lead that matches."""
    stmt = (select(account.c.id, account.c.name, account.c.domain, account.c.score,
                   user.c.name.label("owner_name"), user.c.username.label("owner_username"))
            .select_from(account.outerjoin(user, user.c.id == account.c.owner_id))
            .where(account.c.score > 0)
            .order_by(account.c.score.desc(), account.c.id.desc()).limit(limit))
    if owner_id is not None:
        stmt = stmt.where(account.c.owner_id == owner_id)
    if board_filter.owner:
        stmt = stmt.where(account.c.owner_id == select(user.c.id).where(user.c.username == board_filter.owner)
                          .scalar_subquery())
    if board_filter.segment or board_filter.sequence:
        members = _lead_filter(select(lead.c.id).where(lead.c.account_id == account.c.id),
                               BoardFilter(segment=board_filter.segment, sequence=board_filter.sequence), None)
        stmt = stmt.where(members.exists())
    rows = conn.execute(stmt).all()
    hottest = _hottest_leads(conn, [int(r.id) for r in rows])
    out = []
    for i, r in enumerate(rows):
        top = hottest.get(int(r.id))
        out.append(BoardRow(
            key=int(r.id), lead_id=int(top.id) if top else 0, rank=i + 1, name=r.name or r.domain or f"#{r.id}",
            company=(top.email if top else ""), score=float(r.score) * factor,
            grade=(top.grade or "") if top else "", stage=(top.stage or "") if top else "", owner=_owner_name(r),
            last_engagement=top.last if top else None))
    return out


def _hottest_leads(conn: Connection, account_ids: list[int]) -> dict[int, Any]:
    """Per account: its highest-scoring lead (id, email, grade, stage) and its leads' latest engagement."""
    if not account_ids:
        return {}
    ranked = (select(lead.c.account_id, lead.c.id, lead.c.email, lead.c.grade, lead.c.stage,
                     func.max(lead.c.last_activity_at).over(partition_by=lead.c.account_id).label("last"),
                     func.row_number().over(partition_by=lead.c.account_id,
                                            order_by=(lead.c.score.desc(), lead.c.id.desc())).label("rn"))
              .where(lead.c.account_id.in_(account_ids)).subquery())
    return {int(r.account_id): r for r in conn.execute(select(ranked).where(ranked.c.rn == 1))}


class LeaderboardConsole:
    AREA = "leaderboard"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session
        self._moves: dict[Kind, BoardMoves] = {"leads": BoardMoves(), "accounts": BoardMoves()}
        self._lock = threading.Lock()  # top() and fill_baselines() may run in two worker threads at once

    def top(self, limit: int = 50, *, kind: Kind = "leads", board_filter: BoardFilter = BoardFilter(),
            track: bool = True, defer_baselines: int = 0) -> list[BoardRow]:
        """The top `limit` leads or accounts (a rep: their own), scores decayed to now, each with its rank
        movement and deltas since this console's previous call for the same kind (`track=False`: plain rows,
        nothing remembered) and since the start of the day.

        A row's start-of-day score is computed once a day, the first time it is on the board: re-deriving
        what it earned today takes 10-20 ms a lead on the 1M data set. When at most `defer_baselines` rows
        lack theirs (leads new on a board already shown), they are left out (no `delta_day` this time) for
        `fill_baselines` to compute after the rows are shown; more, or every row (a new board), are computed
        here."""
        s = self.session
        with s.read() as conn:
            scale = s.scale(conn)
            now = s.now()
            load = leaderboard if kind == "leads" else top_accounts
            rows = load(conn, factor=scale.factor(now), limit=limit, owner_id=s.owner_scope,
                        board_filter=board_filter)
            if not track:
                return rows
            moves = self._moves[kind]
            with self._lock:
                missing = moves.missing_baselines(now, [r.key for r in rows])
                defer = len(missing) <= defer_baselines and len(missing) < len(rows)  # not a new board
                if missing and defer:
                    moves.defer_baselines(missing)
            if missing and not defer:
                scores = day_start_scores(conn, kind, missing, scale, now, s.settings.scoring)
                with self._lock:
                    moves.add_baselines(scores, now)
        with self._lock:
            return moves.apply(rows)

    def baselines_deferred(self, kind: Kind) -> bool:
        """Rows of the last `top` are waiting for their start-of-day score (see `defer_baselines`)."""
        return self._moves[kind].deferred

    def fill_baselines(self, kind: Kind) -> int:
        """Compute the start-of-day scores `top` left out (the next `top` shows their day delta). Returns how
        many were computed."""
        moves = self._moves[kind]
        with self._lock:
            keys = moves.take_deferred()
        if not keys:
            return 0
        s = self.session
        with s.read() as conn:
            scale = s.scale(conn)
            now = s.now()
            with self._lock:
                keys = moves.missing_baselines(now, keys)
            if not keys:
                return 0
            scores = day_start_scores(conn, kind, keys, scale, now, s.settings.scoring)
        with self._lock:
            moves.add_baselines(scores, now)
        return len(keys)

    def forget_moves(self, kind: Kind) -> None:
        """After a filter change the previous ranks mean nothing: start the movement over."""
        self._moves[kind].reset_refresh()

    def choices(self) -> BoardChoices:
        with self.session.read() as conn:
            return BoardChoices(
                segments=list(conn.execute(select(segment.c.name).order_by(segment.c.name)).scalars()),
                owners=list(conn.execute(select(user.c.username).where(user.c.active.is_(True))
                                         .order_by(user.c.username)).scalars()),
                sequences=list(conn.execute(select(sequence.c.name).order_by(sequence.c.name)).scalars()))
