"""Adaptive decisions explained after the engine made them (SQLite and PostgreSQL): the decisions report and
`nurture sequences decisions` (arm with every arm's posterior mean and 95 % interval; send time with the hour
histogram), the split report's allocation summary, and the lead timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cli_support import run_cli
from engine_helpers import make_leads, publish, run, tx
from sqlalchemy import insert

from nurture_tui.clock import VirtualClock
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.leads.queries import lead_detail
from nurture_tui.mail.templates import upsert_template
from nurture_tui.reports.adaptive import decisions
from nurture_tui.reports.common import make_period, resolve_scope
from nurture_tui.reports.service import report_on
from nurture_tui.scoring.scale import ScoreScale
from nurture_tui.store.tables import activity
from nurture_tui.workspace import Workspace

DEFINITION = {
    "name": "explained",
    "steps": [
        {"id": "ab", "split": {"mode": "adaptive", "window": "1d", "seed": 1, "arms": [
            {"name": "a", "steps": [{"id": "sa", "send": {"template": "welcome", "send_time": "optimal"}}]},
            {"name": "b", "steps": [{"id": "sb", "send": {"template": "welcome", "send_time": "optimal"}}]}]}},
        {"id": "w", "wait": {"duration": "30d"}},
    ]}


def _setup(ws: Workspace, clock: VirtualClock) -> list[int]:
    clock.set(clock.now().replace(hour=10))
    now = clock.now()
    with tx(ws) as conn:
        upsert_template(conn, name="welcome", subject="Hi", html="<p>Hi</p>", user="t", now=now)
        publish(conn, DEFINITION, now)
        leads = make_leads(conn, 6, now, timezone="UTC")
        for days in (2, 3, 4):  # the first lead opens at 15:xx UTC
            conn.execute(insert(activity).values(lead_id=leads[0], kind="open", bot=False, meta={},
                                                 at=now - timedelta(days=days) + timedelta(hours=5, minutes=5)))
        for lid in leads:
            enroll_lead(conn, lid, "explained", now)
    run(ws)
    return leads


def test_decisions_report_cli_split_summary_and_timeline(workspace: Workspace, clock: VirtualClock,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    leads = _setup(workspace, clock)
    now = clock.now()
    with workspace.engine.connect() as conn:
        scope = resolve_scope(conn, make_period(now), now, "explained")
        rep = decisions(conn, scope)
        splits = report_on(conn, workspace.settings, "splits", now, sequence="explained")
        detail = lead_detail(conn, leads[0], scale=ScoreScale(now, workspace.settings.scoring.half_life_days),
                             now=now)
    assert len(rep.rows) == 12  # 6 arms + 6 send times
    split_rows = [r for r in rep.rows if r["kind"] == "split"]
    assert all(r["why"].startswith(f"ab: arm {r['choice']} — audience all, ") for r in split_rows)
    assert all("a 50.0% [2.4%–97.6%] n=0; b 50.0% [2.4%–97.6%] n=0" in r["why"] for r in split_rows)
    timed = {r["lead"]: r for r in rep.rows if r["kind"] == "send_time"}
    first = timed["lead0@example.com"]
    assert first["choice"] == "15:00 UTC" and first["how"] == "lead"
    assert first["why"].endswith("optimal send time at 15:00 UTC (UTC 15:00) — the lead's own opens/clicks by local "
                                 "hour: 15h ×3")
    others = [r for r in timed.values() if r is not first]
    assert all(r["why"].endswith("at once (plain schedule) — no opens or clicks to learn from: the plain "
                                 "schedule") for r in others)
    assert any(line.startswith("explained v1 split ab (adaptive: click within 1d), all: a ")
               for line in splits.summary)
    kinds = [(a.kind, a.detail) for a in detail.timeline if a.kind == "decision"] if detail else []
    assert len(kinds) == 2 and any("optimal send time" in d for _k, d in kinds)

    code, out, err = run_cli(capsys, "sequences", "decisions", "explained", "--since", f"{now:%Y-%m-%d}", "--db",
                             workspace.settings.db_url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("explained v1 split ab (adaptive: click within 1d), all: a ")
    assert len(lines) == 1 + 12 and any("15h ×3" in line for line in lines)
