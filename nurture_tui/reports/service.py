"""The one entry point the CLI, the console and the benchmark use: `REPORTS` by name, `run_report`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import Connection, Engine

from ..config import Settings
from ..errors import ValidationError
from . import adaptive, emails, funnel, influence, mql_flow, progression, splits, time_to_opportunity
from .common import Report, Scope, make_period, resolve_scope

Loader = Callable[[Connection, Scope, Settings], Report]

#: Report name → loader, in the order the CLI lists them.
REPORTS: dict[str, Loader] = {
    emails.NAME: lambda c, s, _st: emails.load(c, s),
    funnel.NAME: lambda c, s, _st: funnel.load(c, s),
    progression.NAME: lambda c, s, _st: progression.load(c, s),
    time_to_opportunity.NAME: lambda c, s, _st: time_to_opportunity.load(c, s),
    influence.NAME: lambda c, s, _st: influence.load(c, s),
    splits.NAME: lambda c, s, _st: splits.load(c, s),
    mql_flow.NAME: lambda c, s, st: mql_flow.load(c, s, st.scoring),
    adaptive.NAME: lambda c, s, _st: adaptive.load(c, s),
}


def check_name(name: str) -> str:
    if name not in REPORTS:
        raise ValidationError("report", f"unknown report {name!r} (one of {', '.join(REPORTS)})")
    return name


def run_report(conn: Connection, name: str, scope: Scope, settings: Settings) -> Report:
    return REPORTS[check_name(name)](conn, scope, settings)


def report_on(conn: Connection, settings: Settings, name: str, now: datetime, *, since: date | None = None,
              until: date | None = None, sequence: str | None = None, segment: str | None = None) -> Report:
    """Validate the request (name, period, sequence and segment names), then run the report on `conn`."""
    check_name(name)
    period = make_period(now, since, until)
    scope = resolve_scope(conn, period, now, sequence, segment)
    return run_report(conn, name, scope, settings)


def load_report(engine: Engine, settings: Settings, name: str, now: datetime, *, since: date | None = None,
                until: date | None = None, sequence: str | None = None, segment: str | None = None) -> Report:
    """`report_on` in a read transaction of its own."""
    check_name(name)
    make_period(now, since, until)  # a bad period is refused before a connection is opened
    with engine.connect() as conn:
        return report_on(conn, settings, name, now, since=since, until=until, sequence=sequence,
                         segment=segment)
