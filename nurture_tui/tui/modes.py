"""The modes registry: one row per top-level screen (name, number key, title, screen class, one-line help).

The app's MODES and key bindings, the palette's `go:` commands, the keymap doc generator and the tests all
read this table; nothing else lists the screens. Screen classes are imported when a mode is first entered
(start-up budget: the first screen paints before the others load).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.binding import Binding

from .keymap import bind

if TYPE_CHECKING:
    from .screens.base import NurtureScreen


@dataclass(frozen=True)
class Mode:
    name: str
    key: str
    title: str
    load: Callable[[], type[NurtureScreen]]
    help: str

    @property
    def screen_class(self) -> type[NurtureScreen]:
        return self.load()


def _dashboard() -> type[NurtureScreen]:
    from .screens.dashboard import DashboardScreen

    return DashboardScreen


def _leads() -> type[NurtureScreen]:
    from .screens.leads import LeadsScreen

    return LeadsScreen


def _segments() -> type[NurtureScreen]:
    from .screens.segments import SegmentsScreen

    return SegmentsScreen


def _sequences() -> type[NurtureScreen]:
    from .screens.sequences import SequencesScreen

    return SequencesScreen


def _templates() -> type[NurtureScreen]:
    from .screens.templates import TemplatesScreen

    return TemplatesScreen


def _leaderboard() -> type[NurtureScreen]:
    from .screens.leaderboard import LeaderboardScreen

    return LeaderboardScreen


def _mql() -> type[NurtureScreen]:
    from .screens.mql_queue import MqlQueueScreen

    return MqlQueueScreen


def _reports() -> type[NurtureScreen]:
    from .screens.reports import ReportsScreen

    return ReportsScreen


def _sync() -> type[NurtureScreen]:
    from .screens.sync_audit import SyncAuditScreen

    return SyncAuditScreen


MODES: tuple[Mode, ...] = (
    Mode("dashboard", "1", "Dashboard", _dashboard, "today's numbers and charts, live"),
    Mode("leads", "2", "Leads", _leads, "every lead, filtered by text or rule; bulk actions"),
    Mode("segments", "3", "Segments", _segments, "saved segments with live counts"),
    Mode("sequences", "4", "Sequences", _sequences, "nurture programs and their trees with live counts"),
    Mode("templates", "5", "Templates", _templates, "email templates with a rendered preview"),
    Mode("leaderboard", "6", "Leaderboard", _leaderboard, "the hottest leads by live score"),
    Mode("mql", "7", "MQL queue", _mql, "marketing-qualified leads to accept or reject"),
    Mode("reports", "8", "Reports", _reports, "every report as a table and a chart; filters, CSV export"),
    Mode("sync", "9", "Sync & audit", _sync, "Salesforce sync, API usage, errors to retry; the audit log"),
)
BY_NAME: dict[str, Mode] = {m.name: m for m in MODES}


def mode_bindings() -> list[Binding]:
    """The number keys (`app.mode.<name>` ids, remappable like every binding)."""
    return [bind(m.key, f"app.switch_mode('{m.name}')", m.title, f"app.mode.{m.name}", show=False) for m in MODES]
