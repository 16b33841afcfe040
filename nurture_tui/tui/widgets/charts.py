"""Dashboard charts drawn with textual-plotext. This module imports plotext, so it is imported from a
worker thread after the first paint (the start-up budget), never at app import time."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot

from ...reports.dashboard import Series


class Chart(PlotextPlot):
    """A plot that redraws only when its data changes (no flicker on live refresh)."""

    DEFAULT_CSS = "Chart { height: 1fr; border: round $primary 40%; }"

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id)
        self.border_title = title
        self._data: Any = None

    def show(self, data: Any) -> None:
        if data == self._data:
            return
        self._data = data
        plt = self.plt
        plt.clear_figure()
        self.draw(plt, data)
        self.refresh()

    def draw(self, plt: Any, data: Any) -> None:
        raise NotImplementedError


class EngagementChart(Chart):
    def draw(self, plt: Any, data: Series) -> None:
        x = list(range(len(data.labels)))
        for kind, label in (("sent", "sent"), ("open", "opened"), ("click", "clicked")):
            plt.plot(x, data.values[kind], label=label, marker="braille")
        plt.xticks(x[::2], data.labels[::2])
        plt.ylim(0, max(1, *data.values["sent"]))


class MqlChart(Chart):
    def draw(self, plt: Any, data: Series) -> None:
        x = list(range(len(data.labels)))
        plt.bar(x, data.values["mql"], marker="sd", width=0.6)
        plt.xticks(x[::2], data.labels[::2])
        plt.ylim(0, max(1, *data.values["mql"]))


class FunnelChart(Chart):
    def draw(self, plt: Any, data: list[tuple[str, int]]) -> None:
        plt.bar([s for s, _ in data], [n for _, n in data], orientation="horizontal", marker="sd")
