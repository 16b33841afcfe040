"""What every report shares: the request (period, sequence, segment), the result (`Report`: columns, rows,
notes, or why it is empty), name resolution, and small numeric helpers that never divide by zero.

The period is `[since, until)` in UTC: `--since 2026-01-01 --until 2026-01-31` covers both days whole
(`until` is inclusive as a date, so the bound is the next midnight). Without `--since` the period is the 90
days before `until`; without `--until` it ends at the end of today (the workspace clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ..errors import ValidationError
from ..store.tables import segment, sequence

DEFAULT_DAYS = 90


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime  # exclusive

    @property
    def label(self) -> str:
        last = self.until - timedelta(microseconds=1)
        return f"{self.since:%Y-%m-%d} … {last:%Y-%m-%d}"


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(option, f"{value!r} is not a date (YYYY-MM-DD)") from None


def make_period(now: datetime, since: date | None = None, until: date | None = None) -> Period:
    """`since`/`until` are whole UTC days, both inclusive; an inverted period is a one-line error."""
    end = _midnight((until or now.astimezone(UTC).date()) + timedelta(days=1))
    start = _midnight(since) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ValidationError("--since", f"{start:%Y-%m-%d} is after --until {end - timedelta(days=1):%Y-%m-%d}")
    return Period(start, end)


@dataclass(frozen=True)
class Scope:
    """What a report looks at: the period, and optionally one sequence and one saved segment."""

    period: Period
    now: datetime
    sequence_id: int | None = None
    sequence_name: str | None = None
    segment_id: int | None = None
    segment_name: str | None = None


def resolve_scope(conn: Connection, period: Period, now: datetime, sequence_name: str | None = None,
                  segment_name: str | None = None) -> Scope:
    seq_id = seg_id = None
    if sequence_name:
        seq_id = conn.execute(select(sequence.c.id).where(sequence.c.name == sequence_name)).scalar()
        if seq_id is None:
            known = sorted(conn.execute(select(sequence.c.name).limit(6)).scalars())
            raise ValidationError("--sequence", f"no sequence named {sequence_name!r}"
                                  + (f" (e.g. {', '.join(known[:5])})" if known else " (there are none)"))
    if segment_name:
        seg_id = conn.execute(select(segment.c.id).where(segment.c.name == segment_name)).scalar()
        if seg_id is None:
            known = sorted(conn.execute(select(segment.c.name).limit(6)).scalars())
            raise ValidationError("--segment", f"no segment named {segment_name!r}"
                                  + (f" (e.g. {', '.join(known[:5])})" if known else " (there are none)"))
    return Scope(period, now, seq_id, sequence_name, seg_id, segment_name)


@dataclass(frozen=True)
class Report:
    """One report's result. `rows` hold plain values (str, int, float, None) keyed by `columns`;
    `empty_reason` says why there are no rows; `notes` are definitions shown under the table;
    `summary` is the one-paragraph answer (the time-to-opportunity verdict, for example); `samples` are
    per-group raw values behind the rows for a chart (days to opportunity), not part of the outputs."""

    name: str
    title: str
    period: Period
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    empty_reason: str | None = None
    filters: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.name, "title": self.title,
                "since": self.period.since.isoformat(), "until": self.period.until.isoformat(),
                "filters": self.filters, "columns": self.columns, "rows": self.rows,
                "summary": self.summary, "notes": self.notes, "empty_reason": self.empty_reason}


def make_report(name: str, title: str, scope: Scope, columns: list[str], rows: list[dict[str, Any]], *,
                notes: list[str] | None = None, summary: list[str] | None = None,
                empty: str = "nothing in the period", samples: dict[str, list[float]] | None = None) -> Report:
    filters = {k: v for k, v in (("sequence", scope.sequence_name), ("segment", scope.segment_name)) if v}
    return Report(name, title, scope.period, columns, rows, notes or [], summary or [],
                  None if rows else empty, filters, samples or {})


# -- numbers that never divide by zero -----------------------------------------------------------------

def rate(num: float, den: float, digits: int = 1) -> float | None:
    """`num / den` as a percentage, or None when there is nothing to divide by."""
    return round(100.0 * num / den, digits) if den else None


def quantile(values: list[float], q: float) -> float | None:
    """Linear-interpolated quantile (the same as numpy's default and PostgreSQL's percentile_cont)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400.0


def r1(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def segment_leads(conn: Connection, scope: Scope) -> Any:
    """The `--segment` filter as a subquery of lead ids (its materialised membership when it has one, else
    its rule evaluated now), or None without a segment filter."""
    if scope.segment_name is None:
        return None
    from ..segments.compiler import members_statement

    return members_statement(conn, {"in_segment": scope.segment_name}, scope.now).order_by(None)


def day_of(conn: Connection, column: Any) -> Any:
    """The UTC calendar day of a datetime column as 'YYYY-MM-DD' text, on either backend."""
    from sqlalchemy import func, literal_column

    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone(literal_column("'UTC'"), column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def week_of(day: str) -> str:
    """The Monday of an ISO 'YYYY-MM-DD' day's week."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def has(*where: Any) -> Any:
    """`EXISTS (SELECT 1 … WHERE …)`: unlike `EXISTS (SELECT * …)` SQLite answers it from a covering index."""
    from sqlalchemy import literal_column

    return select(literal_column("1")).where(*where).exists()
