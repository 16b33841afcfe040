"""A drift restart is explained wherever a decision is (issue 23): after a detected change of the rates the
engine's recorded decision, the lead timeline, the simulator, `nurture report adaptive` (its `now` and
`decision` rows) and the split report's summary say from which day the evidence counts (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cli_support import run_cli
from engine_helpers import make_leads, publish, run, tx
from sqlalchemy import insert, select

from nurture_tui.clock import VirtualClock
from nurture_tui.engine.adaptive_nodes import clear_cache
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.leads.queries import lead_detail
from nurture_tui.reports.service import report_on
from nurture_tui.scoring.scale import ScoreScale
from nurture_tui.sequences import simulate
from nurture_tui.sequences.adaptive_store import explain
from nurture_tui.store.tables import activity, adaptive_decision, lead, sequence
from nurture_tui.workspace import Workspace

DEFINITION: dict[str, Any] = {"name": "drifty", "steps": [{"id": "ab", "split": {
    "mode": "adaptive", "metric": "click", "window": "1d", "seed": 2, "arms": [
        {"name": "a", "steps": [{"id": "in-a", "wait": {"duration": "30d"}}]},
        {"name": "b", "steps": [{"id": "in-b", "wait": {"duration": "30d"}}]}]}}]}


def _history(ws: Workspace, clock: VirtualClock) -> tuple[str, int]:
    """20 days of 100 decisions a day per arm (window 1d): arm a clicks 20 % for 12 days, then 1 %; arm b 5 %
    throughout. The change is detected at the 13th decision day. Returns that day and a fresh lead."""
    now = clock.now().replace(hour=9, minute=0, second=0, microsecond=0)
    clock.set(now)
    start = now - timedelta(days=21)
    with tx(ws) as conn:
        vid = publish(conn, DEFINITION, now)
        seq_id = conn.execute(select(sequence.c.id).where(sequence.c.name == "drifty")).scalar_one()
        leads = {"a": make_leads(conn, 100, start), "b": make_leads(conn, 100, start)}  # a lead's click counts
        decisions, clicks = [], []                                                     # for each of its decisions
        for day in range(20):
            at = start + timedelta(days=day)
            for arm, rate in (("a", 20 if day < 12 else 1), ("b", 5)):
                for i, lid in enumerate(leads[arm]):
                    decided = at
                    decisions.append({"kind": "split", "sequence_id": seq_id, "version_id": vid, "node_id": "ab",
                                      "lead_id": lid, "decided_at": decided, "arm": arm, "audience": "all",
                                      "closes_at": decided + timedelta(days=1), "detail": {}})
                    if i < rate:
                        clicks.append({"lead_id": lid, "kind": "click", "at": decided + timedelta(hours=2),
                                       "bot": False, "sequence_id": seq_id, "meta": {}})
        conn.execute(insert(adaptive_decision), decisions)
        conn.execute(insert(activity), clicks)
        (fresh,) = make_leads(conn, 1, now)
        enroll_lead(conn, fresh, "drifty", now)
    return (start + timedelta(days=12)).date().isoformat(), fresh


def test_a_restart_is_explained_everywhere(workspace: Workspace, clock: VirtualClock,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    clear_cache()
    change, fresh = _history(workspace, clock)
    said = f"evidence restarted at the rate change detected on {change}"
    run(workspace)
    now = clock.now()
    with workspace.engine.connect() as conn:
        row = dict(conn.execute(select(adaptive_decision).where(adaptive_decision.c.lead_id == fresh)).mappings().one())
        email = conn.execute(select(lead.c.email).where(lead.c.id == fresh)).scalar_one()
        timeline = lead_detail(conn, fresh, scale=ScoreScale(now, workspace.settings.scoring.half_life_days), now=now)
        sim = simulate.simulate_lead(conn, "drifty", email, settings=workspace.settings, start=now)
        rep = report_on(conn, workspace.settings, "adaptive", now, sequence="drifty", since=now.date())
        splits = report_on(conn, workspace.settings, "splits", now, sequence="drifty")
    # the engine recorded the restart with the decision; the counts it used are those since the change
    assert row["detail"]["restart"] == change
    assert {a: (v["s"], v["f"]) for a, v in row["detail"]["arms"].items()} == {"a": (8, 792), "b": (40, 760)}
    assert said in explain(row)
    assert timeline is not None
    assert [a.detail for a in timeline.timeline if a.kind == "decision"] == [explain(row)]
    split = next(e for e in sim.events if e.node_id == "ab")
    assert said in split.why and "a 1.1% [" in split.why
    now_rows = [r for r in rep.rows if r["level"] == "now"]
    assert [(r["node"], r["audience"], r["restart"]) for r in now_rows] == [("ab", "all", change)]
    assert now_rows[0]["why"].endswith(f"— {said}")
    assert now_rows[0]["evidence"].startswith("a ") and " · b " in now_rows[0]["evidence"]
    decided = [r for r in rep.rows if r["level"] == "decision"]
    assert len(decided) == 1 and decided[0]["lead"] == email and decided[0]["restart"] == change
    assert decided[0]["evidence"] == " · ".join(
        f"{a} {v['mean']:.1%} [{v['lo']:.1%}–{v['hi']:.1%}] n={v['s'] + v['f']:g}"
        for a, v in row["detail"]["arms"].items())
    assert any(line.endswith(said) for line in splits.summary)

    code, out, err = run_cli(capsys, "--db", workspace.settings.db_url, "report", "adaptive", "--sequence", "drifty",
                             "--since", f"{now:%Y-%m-%d}", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert [r["level"] for r in data["rows"]] == ["now", "decision"]
    assert data["rows"][1]["restart"] == change and said in data["rows"][1]["why"]
    assert data["summary"] == ["decisions in the period: 1 (split 1, send time 0)"]


def test_without_a_change_nothing_is_said(workspace: Workspace, clock: VirtualClock) -> None:
    clear_cache()
    now = clock.now()
    with tx(workspace) as conn:
        publish(conn, DEFINITION, now)
        (lid,) = make_leads(conn, 1, now)
        enroll_lead(conn, lid, "drifty", now)
    run(workspace)
    with workspace.engine.connect() as conn:
        row = dict(conn.execute(select(adaptive_decision)).mappings().one())
        rep = report_on(conn, workspace.settings, "adaptive", now)
    assert "restart" not in row["detail"] and "restarted" not in explain(row)
    assert [(r["level"], r["restart"]) for r in rep.rows] == [("now", ""), ("decision", "")]
