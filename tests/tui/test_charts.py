"""The block-character charts and the report → chart views, without a terminal."""

from __future__ import annotations

from datetime import UTC, datetime

from nurture_tui.console.reports import Report
from nurture_tui.reports.common import Period
from nurture_tui.tui.report_views import MAX_BARS, chart_for, table_columns
from nurture_tui.tui.widgets.charts.draw import bar, columns, draw_bars, draw_trend
from nurture_tui.tui.widgets.charts.histogram import bucket_width, histogram
from nurture_tui.tui.widgets.charts.spec import ChartSpec

PERIOD = Period(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))


def test_bars_are_drawn_in_eighths_and_never_overflow() -> None:
    assert bar(10, 10, 4) == "████"
    assert bar(5, 10, 4) == "██"
    assert bar(1, 16, 4) == "▎"  # 2 of 32 eighths
    assert bar(0.001, 100, 4) == "▏"  # anything above zero shows
    assert bar(0, 10, 4) == "" and bar(3, 0, 4) == ""
    assert bar(50, 10, 4) == "████"


def test_columns_fill_from_the_bottom() -> None:
    assert columns([0, 4, 8], 8, 2) == ["  █", " ██"]
    assert columns([1, 2], 8, 1) == ["▁▂"]


def test_bar_chart_shows_what_fits_and_says_how_many_more() -> None:
    spec = ChartSpec("bars", "t", [f"n{i}" for i in range(10)], {"entered": [float(i) for i in range(10)]})
    lines = draw_bars(spec, 40, 5).plain.splitlines()
    assert len(lines) == 5 and lines[-1] == "… 6 more in the table"
    assert lines[0].startswith("n0 ") and lines[3].rstrip().endswith(" 3")
    assert max(len(line) for line in lines) <= 40


def test_histogram_buckets_are_round_and_count_every_sample() -> None:
    assert bucket_width(29, 8) == 5 and bucket_width(3, 8) == 1 and bucket_width(700, 8) == 90
    labels, counts = histogram({"a": [0, 4.9, 5, 29], "b": [12]})
    assert labels[:3] == ["0–4 d", "5–9 d", "10–14 d"] and len(labels) == 6
    assert counts == {"a": [2, 1, 0, 0, 0, 1], "b": [0, 0, 1, 0, 0, 0]}
    assert histogram({"a": [], "b": []}) == ([], {"a": [], "b": []})


def test_histogram_draws_groups_side_by_side_with_empty_buckets_blank() -> None:
    labels, counts = histogram({"a": [1], "b": [3]}, buckets=4)
    text = draw_bars(ChartSpec("histogram", "t", labels, counts), 40, 10).plain.splitlines()
    assert text[0].startswith("■ a") and text[1].strip() == "0 d"  # an empty bucket: no bar, no 0
    assert text[2].startswith("1 d █") and text[2].rstrip().endswith("█ 1")  # a's bar in the first half
    assert text[4].startswith("3 d  ") and "█ 1" in text[4]  # b's in the second


def test_trend_names_each_series_with_its_range() -> None:
    spec = ChartSpec("trend", "t", ["w1", "w2", "w3"], {"open": [10.0, 50.0, 30.0]}, "%")
    text = draw_trend(spec, 30, 6).plain
    assert text.splitlines()[0] == "open  10% … 50%, last 30%"
    assert text.splitlines()[-1].startswith("w1") and text.splitlines()[-1].endswith("w3")


def _report(name: str, columns: list[str], rows: list[dict[str, object]], **kw: object) -> Report:
    return Report(name, name, PERIOD, columns, rows, **kw)  # type: ignore[arg-type]


def test_influence_chart_keeps_the_largest_sources() -> None:
    rows = [{"source_type": "campaign", "source": f"c{i}", "even_amount": float(i)} for i in range(20)]
    spec = chart_for(_report("influence", ["source_type", "source", "even_amount"], rows))
    assert spec.kind == "bars" and len(spec.labels) == MAX_BARS and spec.labels[0] == "c19"


def test_an_empty_report_says_why_instead_of_a_chart() -> None:
    spec = chart_for(_report("splits", ["sequence", "arm"], [], empty_reason="no split arms in the period"))
    assert not spec.has_data and spec.empty == "no split arms in the period"


def test_leading_columns_come_first_and_none_is_dropped() -> None:
    report = _report("mql", ["by", "key", "rejected_by_reason", "created", "open"], [])
    assert table_columns(report) == ["by", "key", "created", "open", "rejected_by_reason"]


def test_progression_charts_the_first_group_by_transition() -> None:
    rows = [{"sequence": seq, "transition": t, "rate": rate} for seq, t, rate in (
        ("(all leads)", "awareness → consideration", 10.0), ("(all leads)", "consideration → decision", 50.0),
        ("nurture", "awareness → consideration", 80.0))]
    spec = chart_for(_report("progression", ["sequence", "transition", "rate"], rows))
    assert spec.labels == ["awareness → consideration", "consideration → decision"]
    assert spec.series == {"rate": [10.0, 50.0]} and spec.title.endswith("(all leads)")
