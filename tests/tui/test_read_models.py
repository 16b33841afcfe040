"""The read models behind the TUI (core, no Textual): keyset paging, filters, lead detail, dashboard,
leaderboard, header status and the audited bulk actions — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tui_support import T0, seed

from nurture_tui.console.leaderboard import leaderboard
from nurture_tui.console.session import current_operator
from nurture_tui.console.status import header_status
from nurture_tui.console.sync import sync_overview
from nurture_tui.errors import ValidationError
from nurture_tui.leads import bulk
from nurture_tui.leads.queries import (
    SORTABLE,
    LeadQuery,
    build_query,
    count_leads,
    fetch_page,
    lead_detail,
)
from nurture_tui.reports.dashboard import load_dashboard
from nurture_tui.scoring.scale import read_scale as score_scale
from nurture_tui.store import tables as t
from nurture_tui.workspace import Workspace


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    workspace.clock.set(T0)  # type: ignore[attr-defined]
    seed(workspace)
    with workspace.engine.begin() as conn:  # NULLs in a sortable column exercise the nulls-last keyset
        conn.execute(t.lead.update().where(t.lead.c.id % 5 == 0).values(company=None, grade_rank=None))
    return workspace


def _walk(conn, q, scale, page=7):  # type: ignore[no-untyped-def]
    """Every row by forward keyset pages."""
    rows = fetch_page(conn, q, scale=scale, now=T0, limit=page)
    out = list(rows)
    while len(rows) == page:
        rows = fetch_page(conn, q, scale=scale, now=T0, limit=page, after=out[-1].sort_key)
        out += rows
    return out


def test_keyset_pages_agree_with_offsets_and_reverse(ws: Workspace) -> None:
    for sort in sorted(SORTABLE):
        for descending in (True, False):
            _check_paging(ws, LeadQuery(sort=sort, descending=descending))


def _check_paging(ws: Workspace, q: LeadQuery) -> None:
    with ws.engine.connect() as conn:
        scale = score_scale(conn, 30)
        forward = _walk(conn, q, scale)
        total = count_leads(conn, q)
        assert len(forward) == total == 120
        assert len({r.id for r in forward}) == 120
        ids = [r.id for r in forward]
        # offset pages and the last page (from_end) land on the same rows
        assert [r.id for r in fetch_page(conn, q, scale=scale, now=T0, limit=10, offset=50)] == ids[50:60]
        assert [r.id for r in fetch_page(conn, q, scale=scale, now=T0, limit=9, from_end=True)] == ids[-9:]
        # walking backwards from any key gives the rows just before it
        for pos in (1, 23, 60, 119):
            back = fetch_page(conn, q, scale=scale, now=T0, limit=5, before=forward[pos].sort_key)
            assert [r.id for r in back] == ids[max(0, pos - 5):pos]
    if q.sort == "company":  # NULLs sort last in both directions
        assert [r.company for r in forward[-24:]] == [""] * 24
        assert all(r.company for r in forward[:-24])


def test_sorted_by_score_is_live_score_order(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        scale = score_scale(conn, 30)
        rows = fetch_page(conn, LeadQuery(), scale=scale, now=T0, limit=120)
    scores = [r.score for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[0].score == pytest.approx(149 * scale.factor(T0))  # stored 149 decayed over 10 days


def test_text_and_quick_filters(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        by_text = build_query(conn, "globex", T0)
        assert count_leads(conn, by_text) == 15
        rule = build_query(conn, "stage:decision country=FR", T0)
        expected = conn.execute(select(func.count()).select_from(t.lead).where(
            t.lead.c.stage == "decision", t.lead.c.country == "FR")).scalar_one()
        assert count_leads(conn, rule) == expected > 0
        mine = build_query(conn, "", T0, owner_id=2)
        assert count_leads(conn, mine) == 30 and mine.label == "my leads"
        with pytest.raises(ValidationError):
            build_query(conn, "score>=abc", T0)


def test_lead_detail_has_history_timeline_enrollments_and_sync(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        scale = score_scale(conn, 30)
        d = lead_detail(conn, 5, scale=scale, now=T0)
        assert d is not None
        assert len(d.score_history) == 7  # six events + now
        assert d.score_history[-1] == pytest.approx(d.score)
        assert d.enrollments and d.enrollments[0].sequence == "welcome"
        assert d.timeline and d.timeline[0].at >= d.timeline[-1].at
        assert lead_detail(conn, 10_000, scale=scale, now=T0) is None
        assert lead_detail(conn, 9, scale=scale, now=T0).mqls[0].status == "new"  # type: ignore[union-attr]


def test_dashboard_counts_today_on_the_workspace_clock(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        d = load_dashboard(conn, T0)
    k = d.kpis
    assert k.leads == 120 and k.active_enrollments == 30
    assert k.due_next_hour == 6  # due every 10 minutes from T0: 10…60
    assert (k.sent_today, k.opened_today, k.clicked_today) == (3, 2, 1)
    assert k.mqls_today == 1
    assert d.daily.values["sent"][-1] == 3 and len(d.daily.labels) == 14
    assert sum(n for _s, n in d.funnel) == 120
    assert k.sync.label == "in sync"


def test_leaderboard_header_and_operator(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        scale = score_scale(conn, 30)
        board = leaderboard(conn, factor=scale.factor(T0), limit=50)
        assert [r.rank for r in board] == list(range(1, 51))
        assert board[0].score >= board[-1].score and board[0].owner
        assert all(r.owner == "Rita Rep" for r in leaderboard(conn, factor=1.0, owner_id=2))
        status = header_status(conn, T0)
        assert status.next_due_at == T0 + timedelta(minutes=10)
        assert sync_overview(conn).objects[0].sobject == "Lead"
        op = current_operator(conn, ws.settings)
        assert (op.username, op.role) == (ws.settings.user.name, ws.settings.user.role)
        ws.settings.user.name = "rita"
        assert current_operator(conn, ws.settings).role == "rep"  # the user table wins over config


def test_bulk_adjust_score_is_audited(ws: Workspace) -> None:
    result = bulk.adjust_score(ws, [1, 2, 2], 10, "webinar attendee", user="alice")
    assert (result.requested, result.changed) == (2, 2)
    with ws.engine.connect() as conn:
        row = conn.execute(select(t.audit).where(t.audit.c.action == "lead.adjust_score")).one()
        assert row.user == "alice" and row.after["lead_ids"] == [1, 2]
    with pytest.raises(ValidationError):
        bulk.adjust_score(ws, [], 5, "x", user="alice")
    with pytest.raises(ValidationError):
        bulk.parse_points("lots")


def test_bulk_unsubscribe_opts_out_and_records(ws: Workspace) -> None:
    result = bulk.unsubscribe(ws, [3, 4], user="olaf")
    assert result.changed == 2
    again = bulk.unsubscribe(ws, [3], user="olaf")
    assert again.changed == 0 and again.skipped == 1
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.lead).where(t.lead.c.opted_out)).scalar_one() == 2
        kinds = conn.execute(select(t.activity.c.kind).where(t.activity.c.lead_id == 3,
                                                             t.activity.c.kind == "unsubscribe")).all()
        assert len(kinds) == 1
        assert conn.execute(select(func.count()).select_from(t.audit)
                            .where(t.audit.c.action == "lead.unsubscribe")).scalar_one() == 2
