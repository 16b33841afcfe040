"""How the Reports screen shows each report of `reports.service`: which columns lead the table (all of them
are there; the CSV export has every one) and which chart goes with it — bars for funnels, split arms,
influence, progression and MQL flow; lines for the weekly email trend; a histogram for time to opportunity.
Pure functions of a `Report`, so each view is tested without a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..console.reports import Report
from .widgets.charts.histogram import histogram
from .widgets.charts.spec import ChartSpec

#: Columns shown first, per report (the rest follow in the report's order).
LEADING: dict[str, tuple[str, ...]] = {
    "emails": ("level", "key", "sent", "delivered", "open_rate", "click_rate", "unique_opens", "unique_clicks"),
    "funnel": ("sequence", "node", "kind", "entered", "waiting", "exited", "goal", "goal_conversion"),
    "progression": ("sequence", "transition", "eligible", "moved", "rate", "median_days"),
    "time-to-opportunity": ("group", "leads", "converted", "median_days", "p75_days", "share_90d"),
    "influence": ("source_type", "source", "opportunities", "even_amount", "first_touch_amount",
                  "last_touch_amount"),
    "splits": ("sequence", "split", "arm", "n", "open_rate", "click_rate", "goal_rate", "p_goal"),
    "mql": ("by", "key", "created", "accepted", "rejected", "open", "accept_rate", "sla_breaches"),
    "adaptive": ("level", "decided_at", "node", "lead", "choice", "audience", "restart", "evidence"),
}
#: Most bars a chart draws (the largest first where order is not meaningful).
MAX_BARS = 12


def table_columns(report: Report) -> list[str]:
    first = [c for c in LEADING.get(report.name, ()) if c in report.columns]
    return first + [c for c in report.columns if c not in first]


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _bars(report: Report, title: str, rows: list[dict[str, Any]], label: Callable[[dict[str, Any]], str],
          series: dict[str, str], unit: str = "", *, largest: str | None = None) -> ChartSpec:
    if largest is not None:
        rows = sorted(rows, key=lambda r: -_num(r.get(largest)))
    rows = rows[:MAX_BARS]
    return ChartSpec("bars", title, [label(r) for r in rows],
                     {name: [_num(r.get(col)) for r in rows] for name, col in series.items()}, unit,
                     empty=report.empty_reason)


def _emails(report: Report) -> ChartSpec:
    weeks = [r for r in report.rows if r["level"] == "week"]
    return ChartSpec("trend", "Open and click rate per send week (% of delivered)", [r["key"] for r in weeks],
                     {"open rate": [_num(r["open_rate"]) for r in weeks],
                      "click rate": [_num(r["click_rate"]) for r in weeks]}, "%", empty=report.empty_reason)


def _funnel(report: Report) -> ChartSpec:
    one = len({r["sequence"] for r in report.rows}) <= 1
    return _bars(report, "Leads that entered each node", report.rows,
                 lambda r: r["node"] if one else f"{r['sequence']}/{r['node']}", {"entered": "entered"})


def _progression(report: Report) -> ChartSpec:
    """The first group's stage transitions (all leads, or the one sequence filtered to); the table has every
    sequence's."""
    first = report.rows[0]["sequence"] if report.rows else ""
    rows = [r for r in report.rows if r["sequence"] == first]
    return _bars(report, f"Leads that moved, % of eligible — {first}", rows, lambda r: str(r["transition"]),
                 {"rate": "rate"}, "%")


def _time_to_opportunity(report: Report) -> ChartSpec:
    labels, counts = histogram(report.samples)
    return ChartSpec("histogram", "Days from creation to first opportunity (leads)", labels, counts,
                     empty=report.empty_reason or "no lead of the cohort has an opportunity")


def _influence(report: Report) -> ChartSpec:
    return _bars(report, "Pipeline touched, even attribution", report.rows, lambda r: str(r["source"]),
                 {"even": "even_amount"}, largest="even_amount")


def _splits(report: Report) -> ChartSpec:
    return _bars(report, "Split arms: open, click and goal rate (%)", report.rows,
                 lambda r: f"{r['split']} {r['arm']}",
                 {"open": "open_rate", "click": "click_rate", "goal": "goal_rate"}, "%")


def _mql(report: Report) -> ChartSpec:
    reps = [r for r in report.rows if r["by"] == "rep"]
    return _bars(report, "MQLs per rep: accepted, rejected, open", reps, lambda r: str(r["key"]),
                 {"accepted": "accepted", "rejected": "rejected", "open": "open"}, largest="created")


def _adaptive(report: Report) -> ChartSpec:
    """Listed split decisions per node and arm chosen (the table has each one's posteriors)."""
    counts: dict[str, int] = {}
    for r in report.rows:
        if r["level"] == "decision" and r["kind"] == "split":
            key = f"{r['node']} {r['choice']}"
            counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_BARS]
    return ChartSpec("bars", "Split decisions listed, per arm chosen", [k for k, _n in top],
                     {"decisions": [float(n) for _k, n in top]},
                     empty=report.empty_reason or "no split decision in the period")


CHARTS: dict[str, Callable[[Report], ChartSpec]] = {
    "emails": _emails, "funnel": _funnel, "progression": _progression,
    "time-to-opportunity": _time_to_opportunity, "influence": _influence, "splits": _splits, "mql": _mql,
    "adaptive": _adaptive,
}


def chart_for(report: Report) -> ChartSpec:
    view = CHARTS.get(report.name)
    if view is None:
        return ChartSpec("bars", report.title, [], empty=f"no chart for {report.name}")
    return view(report)
