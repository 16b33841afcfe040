"""A KPI tile: a big number with a label; updated in place (no remount, no flicker)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label


class KpiTile(Vertical):
    DEFAULT_CSS = """
    KpiTile { height: 4; border: round $primary 40%; padding: 0 1; width: 1fr; }
    KpiTile > .kpi-value { text-style: bold; color: $accent; width: 1fr; }
    KpiTile > .kpi-label { color: $text-muted; width: 1fr; }
    """

    def __init__(self, label: str, *, id: str) -> None:
        super().__init__(id=id)
        self._label = label

    def compose(self) -> ComposeResult:
        yield Label("…", classes="kpi-value")
        yield Label(self._label, classes="kpi-label")

    def set_value(self, value: int | str, note: str = "") -> None:
        text = f"{value:,}" if isinstance(value, int) else value
        self.query_one(".kpi-value", Label).update(text + (f"  {note}" if note else ""))
