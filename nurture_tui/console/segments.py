"""Segments: the saved segments and their live counts; for the builder, what a condition can be about,
the live count and a sample of a draft rule, and the audited writes (through the segments service)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..leads.queries import LeadQuery, LeadRow, fetch_page
from ..segments import fields
from ..segments.compiler import count, where_clause
from ..segments.rules import Rule, parse_rule
from ..segments.service import (
    RenameResult,
    SegmentInfo,
    delete_segment,
    duplicate_segment,
    get_segment,
    list_segments,
    rename_segment,
    save_segment,
)
from .segment_conditions import Subject, subjects
from .session import ConsoleSession

__all__ = ["DraftResult", "RenameResult", "SegmentInfo", "SegmentsConsole", "Subject"]

SAMPLE = 20
#: Text fields whose values seen in the data the value input suggests.
DATA_CHOICE_FIELDS = ("country", "industry", "lead_source", "owner", "tags", "account.industry")


@dataclass(frozen=True)
class DraftResult:
    """What a draft rule matches now: the count and the first leads by score."""

    count: int
    sample: list[LeadRow]


class SegmentsConsole:
    AREA = "segments"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def all(self) -> list[SegmentInfo]:
        with self.session.read() as conn:
            return list_segments(conn)

    def get(self, name: str) -> SegmentInfo:
        with self.session.read() as conn:
            return get_segment(conn, name)

    def live_count(self, name: str) -> int:
        """Leads matching the segment's rule now (decay applied), counted afresh."""
        s = self.session
        with s.read() as conn:
            return count(conn, get_segment(conn, name).rule, s.now(),
                         half_life_days=s.settings.scoring.half_life_days)

    # -- the builder --------------------------------------------------------------------------------

    def subjects(self) -> list[Subject]:
        """What the field picker offers: the segments area's catalogue (every field, the custom keys seen in
        the data, behaviour kinds, memberships with the names that exist) and, for the text fields people
        filter on most, the values seen in the data."""
        with self.session.read() as conn:
            catalogue = fields.catalogue(conn)
            data_choices = {name: tuple(str(v) for v in fields.value_choices(conn, name))
                            for name in DATA_CHOICE_FIELDS}
        custom = tuple(c.name.removeprefix("custom.") for c in catalogue if c.group == "custom")
        names = {c.name.removeprefix("in_") + "s": c.choices for c in catalogue if c.group == "membership"}
        return subjects(custom, data_choices, names)

    def count_draft(self, rule: Rule | dict[str, Any]) -> int:
        """How many leads a draft rule matches now (nothing is stored)."""
        s = self.session
        with s.read() as conn:
            return count(conn, parse_rule(rule), s.now(), half_life_days=s.settings.scoring.half_life_days)

    def sample_draft(self, rule: Rule | dict[str, Any], limit: int = SAMPLE) -> list[LeadRow]:
        """The first `limit` leads by score that a draft rule matches."""
        s = self.session
        with s.read() as conn:
            now = s.now()
            where = where_clause(conn, parse_rule(rule), now, half_life_days=s.settings.scoring.half_life_days)
            return fetch_page(conn, LeadQuery(where=where), scale=s.scale(conn), now=now, limit=limit)

    def evaluate(self, rule: Rule | dict[str, Any]) -> DraftResult:
        """The live count and a sample of a draft rule."""
        return DraftResult(self.count_draft(rule), self.sample_draft(rule))

    def save(self, name: str, rule: Rule | dict[str, Any], *, description: str | None = None) -> SegmentInfo:
        """Create or replace a segment (validated, audited, recounted)."""
        s = self.session
        with s.write(self.AREA) as conn:
            return save_segment(conn, name, rule, user=s.operator.username, now=s.now(), description=description,
                                half_life_days=s.settings.scoring.half_life_days)

    def delete(self, name: str) -> None:
        s = self.session
        with s.write(self.AREA) as conn:
            delete_segment(conn, name, user=s.operator.username, now=s.now())

    def rename(self, old: str, new: str) -> RenameResult:
        """Rename, updating the other segments and sequence drafts that use it (one audited transaction);
        refused while a published sequence version uses it."""
        s = self.session
        with s.write(self.AREA) as conn:
            return rename_segment(conn, old, new, user=s.operator.username, now=s.now())

    def duplicate(self, name: str, new_name: str) -> SegmentInfo:
        s = self.session
        with s.write(self.AREA) as conn:
            return duplicate_segment(conn, name, new_name, user=s.operator.username, now=s.now(),
                                     half_life_days=s.settings.scoring.half_life_days)
