"""`ReportChart`: draws a `ChartSpec` at the widget's current size (bars and histograms as horizontal bars,
trends as column bands); redraws on resize."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from .draw import draw_bars, draw_trend
from .spec import ChartSpec


class ReportChart(Widget):
    DEFAULT_CSS = """
    ReportChart { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec: ChartSpec | None = None

    def show(self, spec: ChartSpec) -> None:
        self.spec = spec
        self.border_title = spec.title
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        spec = self.spec
        if spec is None:
            return Text("…", style="dim")
        if not spec.has_data:
            return Text(spec.empty or "nothing to chart", style="dim italic")
        width, height = self.content_size.width, self.content_size.height
        if spec.kind == "trend":
            return draw_trend(spec, width, height)
        return draw_bars(spec, width, height)
