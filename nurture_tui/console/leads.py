"""Leads: the filtered, sorted, paged list (keyset paging from `leads.queries`), one lead's detail, the
palette's lead search, and the audited bulk actions (through `leads.bulk`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from ..leads import bulk
from ..leads.queries import LeadDetail, LeadQuery, LeadRow, build_query, count_leads, fetch_page, lead_detail
from ..sequences.service import list_sequences
from ..store.tables import lead
from .session import ConsoleSession

__all__ = ["LeadDetail", "LeadHit", "LeadQuery", "LeadRow", "LeadsConsole"]


@dataclass(frozen=True)
class LeadHit:
    """A palette match: `lead: jane@acme.com — Jane Doe Acme`."""

    lead_id: int
    email: str
    who: str


class LeadsConsole:
    AREA = "leads"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    # -- list --------------------------------------------------------------------------------------

    def base_query(self) -> LeadQuery:
        """What the list shows before any filter: everything, or a rep's own leads."""
        return LeadQuery(label="my leads" if self.session.owner_scope is not None else "")

    def filtered(self, text: str, *, sort: str, descending: bool) -> LeadQuery:
        """The `/` filter (segment quick syntax); a bad term raises a one-line ValidationError."""
        s = self.session
        with s.read() as conn:
            return build_query(conn, text, s.now(), owner_id=s.owner_scope, sort=sort, descending=descending,
                               half_life_days=s.settings.scoring.half_life_days)

    def page(self, query: LeadQuery, *, limit: int, **position: Any) -> list[LeadRow]:
        """One page in sort order (`after=`/`before=` a sort key, `offset=`, or `from_end=True`)."""
        s = self.session
        with s.read() as conn:
            return fetch_page(conn, query, scale=s.scale(conn), now=s.now(), limit=limit, **position)

    def count(self, query: LeadQuery) -> int:
        with self.session.read() as conn:
            return count_leads(conn, query)

    def detail(self, lead_id: int) -> LeadDetail | None:
        s = self.session
        with s.read() as conn:
            return lead_detail(conn, lead_id, scale=s.scale(conn), now=s.now())

    def salesforce_url(self, sf_id: str) -> str | None:
        instance = self.session.settings.salesforce.instance_url
        return f"{instance.rstrip('/')}/{sf_id}" if instance else None

    def search(self, text: str, limit: int = 20) -> list[LeadHit]:
        """Leads whose email, last name or company starts with `text` (a rep: only their own)."""
        pattern = f"{text.lower()}%"
        stmt = (select(lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company)
                .where(or_(lead.c.email.like(pattern), lead.c.last_name.ilike(pattern),
                           lead.c.company.ilike(pattern)))
                .limit(limit))
        if self.session.owner_scope is not None:
            stmt = stmt.where(lead.c.owner_id == self.session.owner_scope)
        with self.session.read() as conn:
            return [LeadHit(r.id, r.email, " ".join(p for p in (r.first_name, r.last_name, r.company) if p))
                    for r in conn.execute(stmt)]

    # -- bulk actions (audited by leads.bulk under the operator's name) ------------------------------

    def enrollable_sequences(self) -> list[tuple[str, str]]:
        """(name, label) of the published, active sequences a lead can be enrolled in."""
        with self.session.read() as conn:
            rows = list_sequences(conn)
        return [(r.name, f"{r.name}  (v{r.version}, {r.status})") for r in rows
                if r.version is not None and r.status == "active"]

    def enroll(self, lead_ids: Sequence[int], sequence_name: str) -> bulk.BulkResult:
        self.session.require_write(self.AREA)
        return bulk.enroll(self.session.ws, lead_ids, sequence_name, user=self.session.operator.username)

    def unsubscribe(self, lead_ids: Sequence[int]) -> bulk.BulkResult:
        self.session.require_write(self.AREA)
        return bulk.unsubscribe(self.session.ws, lead_ids, user=self.session.operator.username)

    def adjust_score(self, lead_ids: Sequence[int], points: float, reason: str) -> bulk.BulkResult:
        self.session.require_write(self.AREA)
        return bulk.adjust_score(self.session.ws, lead_ids, points, reason, user=self.session.operator.username)

    @staticmethod
    def parse_points(text: str) -> float:
        """Points typed in a prompt (`10`, `-5`); a ValidationError names the problem."""
        return bulk.parse_points(text)
