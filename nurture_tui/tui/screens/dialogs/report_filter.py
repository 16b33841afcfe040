"""The Reports screen's filter form: period (since, until), sequence and segment; empty means "all" (and the
default period). `enter` applies, `esc` cancels; the console checks the values (a bad date or an unknown
name is a one-line toast and the previous filters stay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from ...keymap import bind


@dataclass(frozen=True)
class ReportFilters:
    since: str = ""
    until: str = ""
    sequence: str = ""
    segment: str = ""

    def describe(self, period: str) -> str:
        return f"period {period} · sequence {self.sequence or 'all'} · segment {self.segment or 'all'}"


FIELDS = (("since", "Since", "YYYY-MM-DD (default: 90 days before until)"),
          ("until", "Until", "YYYY-MM-DD (default: today)"),
          ("sequence", "Sequence", "a sequence name (empty: all)"),
          ("segment", "Segment", "a saved segment name (empty: all leads)"))


class ReportFilterModal(ModalScreen[ReportFilters | None]):
    CSS_PATH = "filter_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [bind("escape", "cancel", "Cancel", "report_filter.cancel")]

    def __init__(self, current: ReportFilters) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Report filters — enter applies, esc cancels, tab moves", id="title")
            with Grid(id="fields"):
                for name, title, hint in FIELDS:
                    yield Label(title)
                    yield Input(getattr(self.current, name), placeholder=hint, id=f"filter-{name}")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(ReportFilters(**{name: self.query_one(f"#filter-{name}", Input).value.strip()
                                      for name, _t, _h in FIELDS}))

    def action_cancel(self) -> None:
        self.dismiss(None)
