"""One-line header: workspace, user and role, scheduler state and next due step, sync state, demo clock."""

from __future__ import annotations

from rich.text import Text
from textual.signal import Signal
from textual.widgets import Static

from ...messages import StatusLine


def _hm(dt: object) -> str:
    return dt.strftime("%m-%d %H:%M") if dt is not None else "—"  # type: ignore[attr-defined]


def render_status(s: StatusLine, title: str) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" nurture ", style="bold reverse")
    text.append(f" {title} ", style="bold")
    text.append("│ ", style="dim")
    text.append(s.workspace)
    text.append(" │ ", style="dim")
    text.append(f"{s.user} ({s.role})")
    text.append(" │ ", style="dim")
    sched_style = {"leader": "green", "viewer": "cyan", "stopped": "yellow"}.get(s.scheduler, "")
    text.append("sched ", style="dim")
    text.append(s.scheduler, style=sched_style)
    text.append(f" · next {_hm(s.next_due_at)}")
    text.append(" │ ", style="dim")
    text.append("sync ", style="dim")
    text.append(s.sync, style="red" if "error" in s.sync else "")
    if s.clock is not None:
        text.append(" │ ", style="dim")
        text.append(f"demo {s.clock:%a %m-%d %H:%M}", style="bold")
    if s.read_only:
        text.append(" │ ", style="dim")
        text.append("READ-ONLY", style="bold yellow")
    return text


class NurtureHeader(Static):
    DEFAULT_CSS = """
    NurtureHeader { dock: top; height: 1; background: $panel; color: $foreground; }
    """

    def __init__(self, title: str, status_signal: Signal[StatusLine], status: StatusLine | None) -> None:
        super().__init__("", id="header")
        self.title_text = title
        self.status_signal = status_signal
        self.initial = status

    def on_mount(self) -> None:
        self.status_signal.subscribe(self, self._on_status)
        if self.initial is not None:
            self._on_status(self.initial)

    def _on_status(self, status: StatusLine) -> None:
        self.update(render_status(status, self.title_text))
