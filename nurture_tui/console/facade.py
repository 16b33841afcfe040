"""`Console`: everything the TUI is given — the session plus one model per screen area.

Areas load on first use (a lazy import for start-up time: the first screen paints before the templates
area pulls in Jinja or the sequences area the engine's counters)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from ..workspace import Workspace
from .session import ConsoleSession
from .status import HeaderStatus, read_status

if TYPE_CHECKING:
    from .leaderboard import LeaderboardConsole
    from .leads import LeadsConsole
    from .mql import MqlConsole
    from .reports import ReportsConsole
    from .segments import SegmentsConsole
    from .sequences import SequencesConsole
    from .sync import SyncConsole
    from .templates import TemplatesConsole


class Console:
    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    @classmethod
    def open(cls, ws: Workspace, *, read_only: bool = False) -> Console:
        return cls(ConsoleSession.open(ws, read_only=read_only))

    def status(self) -> HeaderStatus:
        return read_status(self.session)

    def close(self) -> None:
        self.session.close()

    @cached_property
    def leads(self) -> LeadsConsole:
        from .leads import LeadsConsole

        return LeadsConsole(self.session)

    @cached_property
    def segments(self) -> SegmentsConsole:
        from .segments import SegmentsConsole

        return SegmentsConsole(self.session)

    @cached_property
    def sequences(self) -> SequencesConsole:
        from .sequences import SequencesConsole

        return SequencesConsole(self.session)

    @cached_property
    def templates(self) -> TemplatesConsole:
        from .templates import TemplatesConsole

        return TemplatesConsole(self.session)

    @cached_property
    def leaderboard(self) -> LeaderboardConsole:
        from .leaderboard import LeaderboardConsole

        return LeaderboardConsole(self.session)

    @cached_property
    def mql(self) -> MqlConsole:
        from .mql import MqlConsole

        return MqlConsole(self.session)

    @cached_property
    def reports(self) -> ReportsConsole:
        from .reports import ReportsConsole

        return ReportsConsole(self.session)

    @cached_property
    def sync(self) -> SyncConsole:
        from .sync import SyncConsole

        return SyncConsole(self.session)
