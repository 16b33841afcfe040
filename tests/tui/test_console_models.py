"""The console layer headless (no Textual): what each screen area reads, who may write what, and that writes
go through the owning service (audited) — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from tui_support import T0, seed

from nurture_tui.console.facade import Console
from nurture_tui.errors import PermissionDenied
from nurture_tui.store import tables as t
from nurture_tui.workspace import Workspace


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    workspace.clock.set(T0)  # type: ignore[attr-defined]
    seed(workspace)
    return workspace


def _console(ws: Workspace, user: str = "alice", *, read_only: bool = False) -> Console:
    ws.settings.user.name = user
    return Console.open(ws, read_only=read_only)


def _audits(ws: Workspace, action: str) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.audit).where(t.audit.c.action == action))
                   .scalar_one())


def test_roles_decide_what_may_be_written(ws: Workspace) -> None:
    admin, rep, viewer = _console(ws), _console(ws, "rita"), _console(ws, read_only=True)
    assert admin.session.operator.role == "admin" and admin.session.can_write("sequences")
    assert rep.session.operator.role == "rep" and rep.session.owner_scope == 2
    assert rep.session.can_write("mql") and not rep.session.can_write("segments")
    assert not viewer.session.can_write("mql")
    with pytest.raises(PermissionDenied, match="read-only"):
        viewer.mql.accept(1)
    with pytest.raises(PermissionDenied, match="rep cannot change segments"):
        rep.session.require_write("segments")


def test_mql_decisions_go_through_the_service_and_are_audited(ws: Workspace) -> None:
    console = _console(ws)
    assert sorted(e.id for e in console.mql.queue()) == [1, 2]
    console.mql.accept(1)
    status = console.mql.reject(2, "no budget")
    assert status in ("rejected", "recycled")
    assert console.mql.queue() == []
    with ws.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(t.mql))}
    assert rows[1].status == "accepted" and rows[1].decided_by == "alice"
    assert rows[2].reject_reason == "no budget"
    assert _audits(ws, "mql.accept") == 1


def test_a_read_only_console_changes_nothing(ws: Workspace) -> None:
    viewer = _console(ws, read_only=True)
    with pytest.raises(PermissionDenied):
        viewer.leads.adjust_score([1, 2], 5, "nope")
    with pytest.raises(PermissionDenied):
        viewer.mql.reject(1, "nope")
    with ws.engine.connect() as conn:
        assert conn.execute(select(t.mql.c.status).where(t.mql.c.id == 1)).scalar_one() == "new"
        assert conn.execute(select(func.count()).select_from(t.audit)).scalar_one() == 5  # the seed's


def test_a_rep_sees_only_their_own_leads_queue_and_board(ws: Workspace) -> None:
    rep = _console(ws, "rita")
    assert {e.lead_id for e in rep.mql.queue()} == {8}
    hits = rep.leads.search("lead00")
    assert hits and all(h.lead_id % 4 == 0 for h in hits)
    board = rep.leaderboard.top(50)
    assert board and all(r.lead_id % 4 == 0 for r in board)
    query = rep.leads.base_query()
    assert query.label == "my leads"


def test_lists_and_previews_for_every_area(ws: Workspace) -> None:
    console = _console(ws)
    assert [s.name for s in console.segments.all()] == ["Decision makers"]
    assert console.segments.live_count("Decision makers") == 40
    (summary,) = console.sequences.all()
    view = console.sequences.published(summary.name)
    assert view.version == 1 and [s.id for s in view.steps] == ["hello", "pause", "engaged"]
    with ws.engine.begin() as conn:  # what the engine's counters hold for this version
        conn.execute(t.node_counter.insert(), [
            {"version_id": 1, "node_id": "engaged", "shard": 0, "entered": 9, "left": 4, "yes": 3, "no": 1,
             "exited": 0, "goal": 0}])
    counts = console.sequences.published(summary.name).counts
    assert (counts["engaged"].waiting, counts["engaged"].yes, counts["engaged"].no) == (5, 3, 1)
    assert console.sequences.published("welcome").version == 1
    preview = console.templates.preview("welcome-1")
    assert preview.subject.startswith("Welcome, ") and preview.version == 1
    assert [r.rank for r in console.leaderboard.top(5)] == [1, 2, 3, 4, 5]
    overview = console.sync.overview()
    assert [o.sobject for o in overview.objects] == ["Lead"]
    assert len(console.sync.audit(limit=3)) == 3
    funnel, daily = console.reports.funnel_and_daily()
    assert sum(n for _s, n in funnel) == 120 and len(daily.labels) == 14
    assert console.status().next_due_at is not None


def test_lead_paging_filter_and_detail(ws: Workspace) -> None:
    console = _console(ws)
    query = console.leads.filtered("stage:decision", sort="score", descending=True)
    assert console.leads.count(query) == 40
    first = console.leads.page(query, limit=10)
    after = console.leads.page(query, limit=10, after=first[-1].sort_key)
    assert len({r.id for r in first + after}) == 20
    detail = console.leads.detail(5)
    assert detail is not None and detail.email.startswith("lead0005")
    assert console.leads.detail(10_000) is None
    with ws.engine.begin() as conn:  # the score scale is read once and then kept
        conn.execute(update(t.meta).where(t.meta.c.key == "score_epoch").values(value=T0.isoformat()))
    assert console.leads.page(query, limit=1)[0].score == first[0].score
