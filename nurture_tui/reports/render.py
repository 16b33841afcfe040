"""A `Report` as text: an aligned plain table (with its summary and notes), JSON, or CSV (header + rows,
which parse back with `csv.DictReader`; JSON parses back with `json.loads`)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .common import Report

FORMATS = ("table", "json", "csv")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) >= 1000 else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def as_table(report: Report) -> str:
    out = [f"{report.title} — {report.period.label}"
           + (" (" + ", ".join(f"{k} {v}" for k, v in report.filters.items()) + ")" if report.filters else "")]
    if report.empty_reason:
        out.append(f"(empty: {report.empty_reason})")
    else:
        cells = [[cell(r.get(c)) for c in report.columns] for r in report.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(report.columns)]

        def line(vals: list[str]) -> str:
            return "  ".join(v.ljust(w) if i < 2 or not _numeric(v) else v.rjust(w)
                             for i, (v, w) in enumerate(zip(vals, widths, strict=True))).rstrip()

        out.append(line(report.columns))
        out.append("  ".join("-" * w for w in widths))
        out += [line(row) for row in cells]
    out += [f"» {s}" for s in report.summary]
    out += [f"  note: {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def _numeric(v: str) -> bool:
    return v.replace(",", "").replace(".", "").replace("-", "").replace("+", "").isdigit() or v == "-"


def as_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, default=str, indent=2) + "\n"


def as_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=report.columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in report.rows:
        w.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def render(report: Report, fmt: str) -> str:
    return {"table": as_table, "json": as_json, "csv": as_csv}[fmt](report)
