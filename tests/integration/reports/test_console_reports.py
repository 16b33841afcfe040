"""The console's Reports read model: the per-day table is per send cohort (the 187 % open-rate bug), and
every report is reachable through the console for the TUI."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import insert

from nurture_tui.console.facade import Console
from nurture_tui.errors import ValidationError
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity
from nurture_tui.workspace import Workspace

from .report_fixture import build, d


@pytest.fixture
def console(workspace: Workspace) -> Console:
    build(workspace)
    workspace.clock.set(d(2, 12, 18))  # type: ignore[attr-defined]
    return Console.open(workspace)


def test_daily_table_is_per_send_cohort(console: Console, workspace: Workspace) -> None:
    # A day with one send and many opens of older mail: opens of other days' messages must not count.
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(activity), [{"lead_id": 2, "kind": "open", "at": d(2, 11, 10 + i), "outbox_id": 6,
                                         "bot": False, "sequence_id": 1, "meta": {}} for i in range(5)])
    funnel, daily = console.reports.funnel_and_daily()
    assert len(daily.labels) == 14 and daily.labels[-1] == "02-12"
    day = {label: {k: daily.values[k][i] for k in ("sent", "open", "click")} for i, label in enumerate(daily.labels)}
    assert day["02-03"] == {"sent": 40, "open": 20, "click": 12}  # the split's cohort
    assert day["02-10"] == {"sent": 2, "open": 1, "click": 1}  # m1 opened and clicked; m2 only by a bot
    assert day["02-11"] == {"sent": 2, "open": 0, "click": 0}  # a bounce and a soft bounce; 5 opens of m6 ignored
    assert all(o <= s for o, s in zip(daily.values["open"], daily.values["sent"], strict=True))
    assert sum(n for _s, n in funnel) == 47


def test_every_report_through_the_console(console: Console) -> None:
    assert console.reports.names() == ["emails", "funnel", "progression", "time-to-opportunity", "influence",
                                       "splits", "mql", "adaptive"]
    rep = console.reports.report("splits", since=date(2026, 2, 1), until=date(2026, 2, 12))
    assert [r["arm"] for r in rep.rows] == ["A", "B"]
    with pytest.raises(ValidationError, match="no segment named"):
        console.reports.report("emails", segment="nope")
