"""Segments: the saved segments and their live counts (through the segments service and compiler)."""

from __future__ import annotations

from ..segments.compiler import count
from ..segments.service import SegmentInfo, get_segment, list_segments
from .session import ConsoleSession

__all__ = ["SegmentInfo", "SegmentsConsole"]


class SegmentsConsole:
    AREA = "segments"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def list(self) -> list[SegmentInfo]:
        with self.session.read() as conn:
            return list_segments(conn)

    def live_count(self, name: str) -> int:
        """Leads matching the segment's rule now (decay applied), counted afresh."""
        s = self.session
        with s.read() as conn:
            return count(conn, get_segment(conn, name).rule, s.now(),
                         half_life_days=s.settings.scoring.half_life_days)
