"""Text renderers for a `ChartSpec`: horizontal bars in eighths of a cell, and trends as one band of
columns per series (`▁`…`█`). Pure functions of the spec and the width, so snapshots are exact."""

from __future__ import annotations

from rich.text import Text

from .spec import ChartSpec

EIGHTHS = " ▏▎▍▌▋▊▉"
LEVELS = "▁▂▃▄▅▆▇█"
#: Series colours, in order (theme-neutral ANSI names read well on dark and light themes).
STYLES = ("cyan", "magenta", "green", "yellow")
#: A trend's widest column (cells per point) and tallest band (lines per series).
MAX_STEP, MAX_BAND = 8, 6


def number(value: float, unit: str = "") -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.1f}"
    return text + unit


def bar(value: float, top: float, width: int) -> str:
    """`value` of `top` as a bar `width` cells wide at most, in eighths of a cell."""
    if top <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = max(1, round(8 * width * min(value, top) / top))
    return "█" * (eighths // 8) + EIGHTHS[eighths % 8].strip()


def legend(spec: ChartSpec) -> Text:
    text = Text()
    if len(spec.series) > 1:
        for i, name in enumerate(spec.series):
            text.append("■ ", style=STYLES[i % len(STYLES)]).append(name + "  ")
    return text


def draw_bars(spec: ChartSpec, width: int, height: int) -> Text:
    """One line per label: `label  ████▌ 12`. Several series: bars (one line each, the label on the first)
    — or, for a histogram, side by side on the bucket's line. As many labels as fit in `height` lines,
    then how many more there are."""
    series = list(spec.series.values())
    side_by_side = spec.kind == "histogram"
    label_w = min(max((len(lb) for lb in spec.labels), default=0), max(8, width // 3))
    top = max((v for vs in series for v in vs), default=0.0)
    value_w = max((len(number(v, spec.unit)) for vs in series for v in vs), default=1)
    per_line = len(series) if side_by_side else 1
    bar_w = max(1, (width - label_w - 1) // per_line - value_w - 2)
    out = legend(spec)
    if out.plain:
        out.append("\n")
    lines_per_label = 1 if side_by_side else max(1, len(series))
    room = max(1, (height - (1 if out.plain else 0)) // lines_per_label)
    labels = spec.labels if len(spec.labels) <= room else spec.labels[:max(1, room - 1)]
    for row, label in enumerate(labels):
        out.append(label[:label_w].ljust(label_w) + " ", style="bold")
        for i, values in enumerate(series):
            v = values[row]
            style = STYLES[i % len(STYLES)]
            drawn = bar(v, top, bar_w)
            out.append(drawn, style=style)
            shown = " " + number(v, spec.unit) if v or not side_by_side else ""  # empty buckets stay blank
            if side_by_side:
                out.append(shown.ljust(bar_w - len(drawn) + value_w + 2), style="dim")
            else:
                out.append(shown + "\n", style="dim")
                if i < len(series) - 1:
                    out.append(" " * (label_w + 1))
        if side_by_side:
            out.rstrip()
            out.append("\n")
    if len(labels) < len(spec.labels):
        out.append(f"… {len(spec.labels) - len(labels)} more in the table", style="dim italic")
    out.rstrip()
    return out


def columns(values: list[float], top: float, height: int) -> list[str]:
    """A band `height` lines tall with one column per value (eighths of a line), top line first."""
    lines = []
    for level in range(height - 1, -1, -1):
        line = ""
        for v in values:
            filled = 0.0 if top <= 0 else 8 * height * max(v, 0) / top - 8 * level
            line += " " if filled <= 0 else (LEVELS[-1] if filled >= 8 else LEVELS[max(0, round(filled) - 1)])
        lines.append(line)
    return lines


def draw_trend(spec: ChartSpec, width: int, height: int) -> Text:
    """One band per series over the labels (left to right), each column `step` cells wide, with the first
    and last label under the bands and each series' min … max and last value beside its name."""
    n = len(spec.labels)
    step = max(1, min(MAX_STEP, width // max(n, 1)))
    bands = max(1, len(spec.series))
    band_h = max(1, min(MAX_BAND, (height - 1) // bands - 1))
    out = Text()
    for i, (name, values) in enumerate(spec.series.items()):
        shown = list(values)
        top = max(shown, default=0.0)
        style = STYLES[i % len(STYLES)]
        last = number(shown[-1], spec.unit) if shown else "—"
        out.append(f"{name}", style=f"bold {style}").append(
            f"  {number(min(shown, default=0), spec.unit)} … {number(top, spec.unit)}, last {last}\n", style="dim")
        for line in columns(shown, top, band_h):
            out.append("".join(ch * step for ch in line).rstrip() + "\n", style=style)
    if n:
        first, final = spec.labels[0], spec.labels[-1]
        span = n * step
        gap = max(1, span - len(first) - len(final))
        out.append(first + (" " * gap + final if n > 1 else ""), style="dim")
    out.rstrip()
    return out
