"""Every report against figures computed by hand from `report_fixture` (the reasoning is in the comments),
on SQLite and on PostgreSQL (the `workspace` fixture runs each test on both)."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest

from nurture_tui.errors import ValidationError
from nurture_tui.reports.common import Report
from nurture_tui.reports.service import REPORTS, load_report
from nurture_tui.workspace import Workspace

from .report_fixture import build


def run(ws: Workspace, name: str, since: str = "2026-02-01", until: str = "2026-03-02", **kw: Any) -> Report:
    return load_report(ws.engine, ws.settings, name, ws.clock.now(), since=date.fromisoformat(since),
                       until=date.fromisoformat(until), **kw)


def by(report: Report, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    if len(keys) == 1:
        return {(r[keys[0]],): r for r in report.rows} | {r[keys[0]]: r for r in report.rows}
    return {tuple(r[k] for k in keys): r for r in report.rows}


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    build(workspace)
    return workspace


def test_emails_per_send_cohort(ws: Workspace) -> None:
    rep = run(ws, "emails", sequence="nurture")
    rows = by(rep, "level", "key")
    total = rows[("total", "all")]
    # cohort m1…m5 (m6 was sent in January, m7 is still queued)
    assert {k: total[k] for k in ("sent", "delivered", "bounced_hard", "bounced_soft", "failed")} == {
        "sent": 5, "delivered": 3, "bounced_hard": 1, "bounced_soft": 1, "failed": 0}
    # opens: m1 twice + m5 once (m2's only open is a bot's; m6's open is not in the cohort)
    assert (total["unique_opens"], total["total_opens"], total["bot_opens"]) == (2, 3, 2)
    assert (total["unique_clicks"], total["total_clicks"], total["bot_clicks"]) == (1, 1, 1)
    assert (total["open_rate"], total["click_rate"], total["click_to_open"]) == (66.7, 33.3, 50.0)
    assert (total["unsubscribes"], total["unsubscribes_by_category"], total["unsubscribe_rate"]) == (
        1, "newsletter: 1", 33.33)
    assert (total["complaints"], total["complaint_rate"]) == (1, 33.33)  # L2's complaint → m2
    s1, s2 = rows[("step", "nurture / s1")], rows[("step", "nurture / s2")]
    assert (s1["sent"], s1["delivered"], s1["unique_opens"], s1["bot_opens"], s1["complaints"]) == (4, 2, 1, 2, 1)
    assert (s2["sent"], s2["unique_opens"], s2["unsubscribes"], s2["open_rate"]) == (1, 1, 1, 100.0)
    assert rows[("template", "intro")]["sent"] == 4 and rows[("template", "followup")]["sent"] == 1
    assert rows[("week", "2026-02-09")]["sent"] == 4 and rows[("week", "2026-02-16")]["sent"] == 1
    assert all(r["open_rate"] is None or r["open_rate"] <= 100 for r in rep.rows)


def test_emails_all_sequences_and_segment(ws: Workspace) -> None:
    rows = by(run(ws, "emails"), "level", "key")
    assert rows[("sequence", "abtest")]["sent"] == 40
    assert rows[("sequence", "abtest")]["unique_opens"] == 20 and rows[("sequence", "abtest")]["bot_opens"] == 40
    assert rows[("total", "all")]["sent"] == 45
    seg = by(run(ws, "emails", segment="account-acme"), "level", "key")  # L1 and L2: m1, m2, m5
    assert seg[("total", "all")]["sent"] == 3 and seg[("total", "all")]["unique_opens"] == 2


def test_funnel(ws: Workspace) -> None:
    rows = by(run(ws, "funnel", sequence="nurture"), "node")
    head = rows["(entered in period)"]
    assert (head["entered"], head["goal"], head["exited"], head["waiting"], head["goal_conversion"]) == (
        4, 1, 1, 1, 25.0)
    assert (rows["w"]["entered"], rows["w"]["waiting"], rows["w"]["yes"], rows["w"]["no"]) == (4, 1, 2, 1)
    assert rows["s1"]["yes"] is None and rows["s2"]["goal"] == 1
    ab = by(run(ws, "funnel", sequence="abtest"), "node")["(entered in period)"]
    assert (ab["entered"], ab["goal"], ab["goal_conversion"]) == (40, 7, 17.5)


def test_progression(ws: Workspace) -> None:
    rows = by(run(ws, "progression"), "sequence", "transition")
    a = "(all leads)"
    # 47 leads; consideration before Feb: L2, L7 → 45 eligible; moved L1 (33 d), L3 (7), L5 (22), L6 (20)
    first = rows[(a, "awareness → consideration")]
    assert (first["eligible"], first["moved"], first["rate"], first["median_days"]) == (45, 4, 8.9, 21.0)
    cd = rows[(a, "consideration → decision")]  # L1 (6 d), L2 (22 d, via its MQL), L3, L5, L6 (0 d: skipped)
    assert (cd["eligible"], cd["moved"], cd["rate"], cd["median_days"]) == (5, 5, 100.0, 0.0)
    ms = rows[(a, "mql → sql")]  # L1 0.25 d, L2 4 d (its opportunity), L3 0, L5 3, L6 0
    assert (ms["eligible"], ms["moved"], ms["median_days"]) == (5, 5, 0.2)
    so = rows[(a, "sql → opportunity")]  # L2, L3, L5, L6 (L1 has none)
    assert (so["eligible"], so["moved"], so["rate"]) == (5, 4, 80.0)
    nurt = rows[("nurture", "awareness → consideration")]  # L1…L4; L2 was past it before Feb
    assert (nurt["eligible"], nurt["moved"]) == (3, 2)
    none = rows[("(not nurtured)", "awareness → consideration")]  # L5, L6, L7 (past it)
    assert (none["eligible"], none["moved"]) == (2, 2)
    assert rows[("abtest", "awareness → consideration")]["eligible"] == 40


def test_time_to_opportunity(ws: Workspace) -> None:
    rep = run(ws, "time-to-opportunity")
    rows = by(rep, "group")
    # cohort L2…L6; nurtured L2 (15 d), L3 (7 d), L4 (none); non-nurtured L5 (25 d), L6 (20 d)
    n, o = rows[("nurtured",)], rows[("non-nurtured",)]
    assert (n["leads"], n["converted"], n["median_days"], n["p75_days"]) == (3, 2, 11.0, 13.0)
    assert (o["leads"], o["converted"], o["median_days"], o["p75_days"]) == (2, 2, 22.5, 23.8)
    assert n["mature"] == 0 and n["share_90d"] is None
    assert "11.0 days vs 22.5" in rep.summary[0] and "11.5 days sooner" in rep.summary[0]
    long = by(run(ws, "time-to-opportunity", since="2025-11-01"), "group")
    # + L1 and the 40 split leads (nurtured, no opportunity) and L7 (30 d, created 2025-11-01: mature)
    assert (long[("nurtured",)]["leads"], long[("nurtured",)]["converted"]) == (44, 2)
    lo = long[("non-nurtured",)]
    assert (lo["leads"], lo["median_days"], lo["p75_days"], lo["mature"], lo["within_90d"], lo["share_90d"]) == (
        3, 25.0, 27.5, 1, 1, 100.0)


def test_influence(ws: Workspace) -> None:
    rep = run(ws, "influence")
    rows = by(rep, "source_type", "source")
    # O1 (1000, won): nurture (L1 from 02-10) then Webinar (L2, 02-15) → first nurture, last Webinar, even ½ each
    # O2 (500): nurture, Webinar, Trade show (L1, 02-22) → first nurture, last Trade show, even ⅓ each
    nur, web, show = rows[("sequence", "nurture")], rows[("campaign", "Webinar")], rows[("campaign", "Trade show")]
    assert (nur["opportunities"], nur["first_touch_amount"], nur["last_touch_amount"], nur["even_amount"]) == (
        2, 1500.0, 0.0, 666.67)
    assert (nur["first_touch_won"], nur["even_won"]) == (1000.0, 500.0)
    assert (web["first_touch_amount"], web["last_touch_amount"], web["even_amount"], web["last_touch_won"]) == (
        0.0, 1000.0, 666.67, 1000.0)
    assert (show["opportunities"], show["last_touch_amount"], show["even_amount"]) == (1, 500.0, 166.67)
    assert ("campaign", "Ebook") not in rows  # not responded
    assert math.isclose(sum(r["even_amount"] for r in rep.rows), 1500.0, abs_tol=0.02)
    assert rep.summary[0].startswith("5 opportunities created in the period, amount 2,000.00 (won 1,300.00); "
                                     "2 had a touch")
    only = run(ws, "influence", sequence="nurture")
    assert [r["source"] for r in only.rows] == ["nurture"]


def test_splits_known_winner(ws: Workspace) -> None:
    rep = run(ws, "splits")
    rows = by(rep, "arm")
    a, b = rows[("A",)], rows[("B",)]
    assert (a["n"], a["opened"], a["clicked"], a["goal"]) == (20, 15, 10, 6)
    assert (b["n"], b["opened"], b["clicked"], b["goal"]) == (20, 5, 2, 1)
    # open: pooled 0.5, se 0.1581, z 3.162 → p 0.00157; click: z 2.760 → p 0.00578; goal: z 2.081 → p 0.0375
    assert (a["p_open"], a["p_click"], a["p_goal"]) == (0.0016, 0.0058, 0.0375)
    assert rep.summary[0] == ("abtest v1 split ab, open: arm A leads by 50.0 pts, p = 0.002, n = 40 "
                              "(z-test; significant)")
    assert "goal: arm A leads by 25.0 pts, p = 0.04" in rep.summary[2]


def test_mql_flow(ws: Workspace) -> None:
    rows = by(run(ws, "mql"), "by", "key")
    t = rows[("total", "all")]
    assert {k: t[k] for k in ("created", "accepted", "rejected", "recycled", "open", "sla_breaches")} == {
        "created": 4, "accepted": 1, "rejected": 2, "recycled": 1, "open": 1, "sla_breaches": 2}
    assert (t["accept_rate"], t["median_hours_to_accept"]) == (33.3, 6.0)
    assert t["rejected_by_reason"] == "no budget: 1; not a fit: 1"
    assert (rows[("rep", "ana")]["created"], rows[("rep", "ana")]["sla_breaches"]) == (2, 1)  # L5 still open
    assert (rows[("rep", "bo")]["rejected"], rows[("rep", "bo")]["sla_breaches"]) == (2, 1)  # L2 decided late
    assert rows[("source", "web")]["created"] == 3 and rows[("source", "partner")]["recycled"] == 1


@pytest.mark.parametrize("name", list(REPORTS))
def test_empty_workspace_says_why(workspace: Workspace, name: str) -> None:
    rep = run(workspace, name)
    assert rep.rows == [] and rep.empty_reason


def test_bad_input(ws: Workspace) -> None:
    with pytest.raises(ValidationError, match="unknown report 'nope'"):
        run(ws, "nope")
    with pytest.raises(ValidationError, match="no sequence named 'zzz'"):
        run(ws, "emails", sequence="zzz")
    with pytest.raises(ValidationError, match="no segment named 'zzz'"):
        run(ws, "emails", segment="zzz")
    with pytest.raises(ValidationError, match="is after --until"):
        run(ws, "emails", since="2026-03-05", until="2026-03-01")
