"""Dashboard charts drawn with textual-plotext. This module imports plotext, so it is imported from a
worker thread after the first paint (the start-up budget), never at app import time."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot

from ....reports.dashboard import Series


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
        self.refresh()

    def render(self) -> Any:
        # Redraw from the data on every render: plotext keeps tick state from the previous build at
        # another size, which made the output depend on the resize history.
        if self._data is not None:
            self.plt.clear_figure()
            self.draw(self.plt, self._data)
        return super().render()

    def draw(self, plt: Any, data: Any) -> None:
        raise NotImplementedError


class EngagementChart(Chart):
    def draw(self, plt: Any, data: Series) -> None:
        x = list(range(len(data.labels)))
        for kind, label in (("sent", "sent"), ("open", "opened"), ("click", "clicked")):
            plt.plot(x, data.values[kind], label=label, marker="braille")
        plt.xticks(x[::3], data.labels[::3])
        plt.ylim(0, max(1, *data.values["sent"]))


class MqlChart(Chart):
    def draw(self, plt: Any, data: Series) -> None:
        x = list(range(1, len(data.labels) + 1))
        plt.bar(x, data.values["mql"], marker="sd", width=0.5)
        # Two explicit ticks: when labels collide plotext drops some in an order that varies per process.
        plt.xticks([x[0], x[-1]], [data.labels[0], data.labels[-1]])
        plt.xlim(0.5, len(x) + 0.5)
        plt.ylim(0, max(1, *data.values["mql"]))


class FunnelChart(Chart):
    def draw(self, plt: Any, data: list[tuple[str, int]]) -> None:
        plt.bar([s for s, _ in data], [n for _, n in data], orientation="horizontal", marker="sd")
