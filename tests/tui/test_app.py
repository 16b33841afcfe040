"""Pilot tests: every binding of the TUI screens, roles and read-only, errors routed, theme and keymap."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, update
from textual.widgets import DataTable, Input, Static, Tree
from tui_support import T0, make_test_app, wait_for

from nurture_tui.store import tables as t
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.modes import MODES
from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
from nurture_tui.tui.screens.dialogs.error import ErrorModal
from nurture_tui.tui.screens.dialogs.help import HelpScreen
from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal, PromptModal
from nurture_tui.tui.screens.lead_detail import LeadDetailScreen
from nurture_tui.tui.widgets.leads.lead_list import LeadList
from nurture_tui.workspace import Workspace

SIZE = (130, 40)


def _count(ws: Workspace, table: Any, *where: Any) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


async def _leads(pilot: Any) -> LeadList:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen.query(LeadList).first(None), LeadList)
                   and pilot.app.screen.query_one(LeadList).loaded and pilot.app.screen.query_one(LeadList).total)
    return pilot.app.screen.query_one(LeadList)


async def test_number_keys_reach_every_screen_and_q_quits(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws)
    async with app.run_test(size=SIZE) as pilot:
        for name, title, key in ((m.name, m.title, m.key) for m in MODES):
            await pilot.press(key)
            await wait_for(pilot, lambda name=name: app.current_mode == name)
            assert getattr(app.screen, "TITLE", "") == title
            await pilot.pause(0.1)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_help_is_generated_from_live_bindings(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        await _leads(pilot)
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = str(app.screen.query_one("#keys", Static).render())
            assert "Enrol" in text and "Tag" in text and "Dashboard" in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_palette_goes_to_a_screen_and_finds_a_lead(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"go: leaderb")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "leaderboard")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"lead0077")
        await pilot.pause(0.6)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LeadDetailScreen))
        assert app.screen.lead_id == 77  # type: ignore[attr-defined]


async def test_lead_list_navigation_sort_and_tags(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)
        assert lst.total == 120
        await pilot.press("j", "down")
        assert lst.cursor == 2
        await pilot.press("k", "up")
        assert lst.cursor == 0
        await pilot.press("pagedown")
        assert lst.cursor == lst.body_height
        await pilot.press("pageup")
        assert lst.cursor == 0
        await pilot.press("G")
        await wait_for(pilot, lambda: lst.visible_loaded())
        assert lst.cursor == 119 and lst.current() is not None
        await pilot.press("g")
        assert lst.cursor == 0
        await pilot.press("end")
        assert lst.cursor == 119
        await pilot.press("home")
        first = lst.current()
        await pilot.press("space", "space")
        assert len(lst.tagged) == 2 and first is not None and first.id in lst.tagged
        await pilot.press("c")
        assert not lst.tagged
        await pilot.press("greater_than_sign")
        await wait_for(pilot, lambda: lst.query_spec.sort != "score" and lst.loaded)
        sort = lst.query_spec.sort
        await pilot.press("less_than_sign")
        await wait_for(pilot, lambda: lst.query_spec.sort != sort and lst.loaded)
        assert lst.query_spec.sort == "score"
        await pilot.press("i")
        await wait_for(pilot, lambda: lst.loaded and not lst.query_spec.descending)
        assert lst.rows[0].score <= lst.rows[1].score
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LeadDetailScreen))
        await wait_for(pilot, lambda: app.screen.detail is not None)  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.query(LeadList))


async def test_filter_text_rule_and_clear(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)
        await pilot.press("slash")
        box = app.screen.query_one("#filter", Input)
        assert box.has_focus
        await pilot.press(*"globex", "enter")
        await wait_for(pilot, lambda: lst.total == 15)
        assert lst.has_focus and "globex" in lst.query_spec.label
        await pilot.press("slash")
        box.value = "stage:decision"
        await pilot.press("enter")
        await wait_for(pilot, lambda: lst.total == 40)
        await pilot.press("escape")
        await wait_for(pilot, lambda: lst.total == 120)
        assert box.has_class("hidden")


async def test_bad_filter_is_a_toast_not_a_crash(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        lst = await _leads(pilot)
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "score>=lots"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app._notifications))
        assert any("score" in n.message for n in app._notifications)
        assert lst.total == 120 and app.is_running


async def test_bulk_adjust_score_through_prompts_and_one_confirm(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)
        await pilot.press("space", "space")
        tagged = set(lst.tagged)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        await pilot.press(*"abc", "enter")  # rejected in place, stays open
        assert isinstance(app.screen, PromptModal)
        app.screen.query_one(Input).value = "-5"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal)
                       and app.screen.title_text.startswith("Reason"))
        await pilot.press(*"bad fit", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "2 leads" in app.screen.scope  # type: ignore[attr-defined]
        await pilot.press("y")
        await wait_for(pilot, lambda: _count(seeded_ws, t.audit, t.audit.c.action == "lead.adjust_score") == 1)
        await wait_for(pilot, lambda: not lst.tagged)
    with seeded_ws.engine.connect() as conn:
        row = conn.execute(select(t.audit).where(t.audit.c.action == "lead.adjust_score")).one()
    assert row.user == "alice" and set(row.after["lead_ids"]) == tagged and row.after["points"] == -5


async def test_unsubscribe_confirm_cancel_then_confirm(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)
        target = lst.current()
        assert target is not None
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert _count(seeded_ws, t.lead, t.lead.c.opted_out) == 0
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: _count(seeded_ws, t.lead, t.lead.c.opted_out) == 1)
        assert _count(seeded_ws, t.lead, t.lead.c.opted_out, t.lead.c.id == target.id) == 1


SEQUENCE_YAML = """
name: onboarding
templates:
  - name: onboarding-1
    subject: "Hello {{ lead.first_name }}"
    html: "<p>Welcome aboard</p>"
steps:
  - id: hello
    send: {template: onboarding-1}
"""


async def test_enrol_tagged_leads_in_a_published_sequence(seeded_ws: Workspace) -> None:
    from nurture_tui.sequences.service import apply_text, publish

    with write_tx(seeded_ws.engine) as conn:
        apply_text(conn, SEQUENCE_YAML, "onboarding.yaml", user="alice", now=T0)
        publish(conn, "onboarding", user="alice", now=T0)
        conn.execute(update(t.sequence).where(t.sequence.c.name == "onboarding").values(status="active"))
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        await _leads(pilot)
        await pilot.press("space", "space", "space")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: _count(seeded_ws, t.audit, t.audit.c.action == "lead.enroll") == 1)
    assert _count(seeded_ws, t.enrollment, t.enrollment.c.sequence_id != 1) == 3


async def test_read_only_disables_writes_and_says_so(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads", read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _leads(pilot)
        for key in ("u", "a", "e"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert not isinstance(app.screen, (ConfirmModal, PromptModal, ChoiceModal))
        assert app.status is not None and app.status.read_only
        assert "READ-ONLY" in str(app.screen.query_one("#header", Static).render())
        await pilot.press("7")
        await wait_for(pilot, lambda: app.current_mode == "mql")
        await pilot.press("a")
        await pilot.pause(0.2)
    assert _count(seeded_ws, t.mql, t.mql.c.status == "new") == 2


async def test_rep_sees_own_leads_and_queue_read_only_elsewhere(seeded_ws: Workspace) -> None:
    seeded_ws.settings.user.name = "rita"
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)
        await wait_for(pilot, lambda: lst.total == 30)
        assert app.backend.session.operator.role == "rep"
        assert app.screen.check_action("enroll", ()) is True  # their own leads
        await pilot.press("7")
        await wait_for(pilot, lambda: app.current_mode == "mql" and app.screen.entries)  # type: ignore[attr-defined]
        assert [e.email for e in app.screen.entries.values()] == ["lead0008@acme.example"]  # type: ignore[attr-defined]
        assert not app.backend.session.can_write("sequences") and not app.backend.session.can_write("segments")


async def test_mql_accept_and_reject_with_reason(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="mql")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(getattr(app.screen, "entries", {})) == 2)
        why = str(app.screen.query_one("#why", Static).render())
        assert "score >= 100" in why
        await pilot.press("a")
        await wait_for(pilot, lambda: _count(seeded_ws, t.mql, t.mql.c.status == "accepted") == 1)
        await wait_for(pilot, lambda: len(app.screen.entries) == 1)  # type: ignore[attr-defined]
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))  # the reason picker
        await pilot.press("enter")  # its first reason: no budget
        await wait_for(pilot, lambda: _count(seeded_ws, t.mql, t.mql.c.status.in_(("rejected", "recycled"))) == 1)
        await wait_for(pilot, lambda: not app.screen.entries)  # type: ignore[attr-defined]
    with seeded_ws.engine.connect() as conn:
        rejected = conn.execute(select(t.mql).where(t.mql.c.reject_reason.is_not(None))).one()
    assert rejected.reject_reason == "no budget" and rejected.decided_by == "alice"


async def test_mql_enter_opens_the_lead(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="mql")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(getattr(app.screen, "entries", {})) == 2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LeadDetailScreen))
        assert app.screen.lead_id == 8  # type: ignore[attr-defined]


async def test_leaderboard_keyed_diff_keeps_cursor_on_its_lead(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        await wait_for(pilot, lambda: screen.table.row_count == 50)
        await pilot.press("down", "down", "down")
        table: DataTable[str] = screen.table
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        with write_tx(seeded_ws.engine) as conn:  # that lead jumps to the top
            conn.execute(update(t.lead).where(t.lead.c.id == int(key)).values(score=10_000))
        seen = screen.updates
        await wait_for(pilot, lambda: screen.updates > seen + 1)
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == key
        assert table.cursor_row == 0 and table.get_cell(key, "rank") == "1"
        await pilot.press("f")
        assert not screen.follow
        await pilot.press("p")
        assert screen.paused
        frozen = screen.updates
        await pilot.pause(1.5)
        assert screen.updates == frozen
        await pilot.press("p")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LeadDetailScreen))
        assert app.screen.lead_id == int(key)  # type: ignore[attr-defined]


async def test_dashboard_tiles_charts_pause_and_refresh(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.screen.query("#chart-engagement")))
        assert "120" in str(app.screen.query_one("#kpi-leads .kpi-value", Static).render())
        await pilot.press("p")
        assert app.screen.paused  # type: ignore[attr-defined]
        await pilot.press("R")
        await pilot.pause(0.3)
        assert app.screen.query("#chart-funnel")


async def test_segments_live_count_and_drill_down(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="segments")
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#segments", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1 and table.get_cell("Decision makers", "count") == "40")
        await pilot.press("l")  # `enter` edits in the builder (issue 15); `l` lists the segment's leads
        lst = await _leads(pilot)
        await wait_for(pilot, lambda: lst.total == 40)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.query("#segments"))


async def test_sequences_tree_with_node_counts(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        tree = app.screen.query_one("#tree", Tree)
        await wait_for(pilot, lambda: len(tree.root.children) == 3)
        labels = [str(n.label) for n in tree.root.children]
        assert labels[0].startswith("hello") and "send welcome-1" in labels[0]
        await pilot.press("enter")
        assert tree.has_focus


async def test_templates_preview_renders(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=SIZE) as pilot:
        preview = app.screen.query_one("#preview", Static)
        await wait_for(pilot, lambda: "Subject" in str(preview.render()))
        assert "Welcome, " in str(preview.render())
        await pilot.press("down")
        await wait_for(pilot, lambda: "Still there?" in str(preview.render()))


async def test_sync_and_audit_pages_older_entries(seeded_ws: Workspace) -> None:
    with write_tx(seeded_ws.engine) as conn:
        conn.execute(t.audit.insert(), [{"at": T0, "user": "bob", "action": "x.y", "entity": "lead",
                                         "entity_id": str(i)} for i in range(250)])
    app = make_test_app(seeded_ws, initial_mode="sync")
    async with app.run_test(size=SIZE) as pilot:
        audit = app.screen.query_one("#audit", DataTable)
        await wait_for(pilot, lambda: audit.row_count == 200)
        assert "Lead" in str(app.screen.query_one("#objects", DataTable).get_row_at(0))
        await pilot.press("n")
        await wait_for(pilot, lambda: audit.row_count == 255)


async def test_worker_bug_opens_the_error_modal(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="reports")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        seeded_ws.engine.dispose()
        with seeded_ws.engine.begin() as conn:
            # (renamed first: a rename re-checks every trigger, and the rollup triggers read enrollment)
            conn.exec_driver_sql("ALTER TABLE lead RENAME TO lead_gone")
            conn.exec_driver_sql("ALTER TABLE email_stat RENAME TO email_stat_gone")  # the emails report's rollup
            conn.exec_driver_sql("DROP TABLE enrollment")  # reports/dashboard still work; drop what they read
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorModal))
        assert app.is_running


async def test_theme_is_persisted_and_keymap_remaps(seeded_ws: Workspace) -> None:
    seeded_ws.settings.tui.keymap = {"leads.tag": "t", "no.such.binding": "z"}
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        lst = await _leads(pilot)
        await pilot.press("t")
        assert len(lst.tagged) == 1
        assert any("no.such.binding" in n.message for n in app._notifications)
        app.theme = "nord"
        await pilot.pause()
    state = json.loads((seeded_ws.settings.data_dir / "tui-state.json").read_text())
    assert state["theme"] == "nord"
    again = make_test_app(seeded_ws)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "nord"


@pytest.mark.parametrize("mode", [m.name for m in MODES])
async def test_escape_and_refresh_never_crash(seeded_ws: Workspace, mode: str) -> None:
    app = make_test_app(seeded_ws, initial_mode=mode)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.press("R", "escape", "tab")
        await pilot.pause(0.3)
        assert app.is_running and app.current_mode == mode


async def test_list_filter_on_leaderboard_and_mql(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leaderboard")
    async with app.run_test(size=SIZE) as pilot:
        screen: Any = app.screen
        await wait_for(pilot, lambda: screen.table.row_count == 50)
        await pilot.press("slash", *"stark", "enter")
        await wait_for(pilot, lambda: 0 < screen.table.row_count < 50)
        assert all(screen.table.get_cell(k, "company") == "Stark" for k in screen.table.rows)
        assert screen.table.has_focus
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.table.row_count == 50)
        await pilot.press("7")
        await wait_for(pilot, lambda: app.current_mode == "mql" and len(getattr(app.screen, "entries", {})) == 2)
        await pilot.press("slash", *"globex", "enter")
        await wait_for(pilot, lambda: len(app.screen.entries) == 1)  # type: ignore[attr-defined]


async def test_scheduler_runs_in_process_or_views_a_daemon(seeded_ws: Workspace) -> None:
    from nurture_tui.engine import lease

    app = make_test_app(seeded_ws, initial_mode="leads", background=True, status_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status is not None and app.status.scheduler == "leader", timeout=20)
        # the header shows it on its next update (it redraws only when its text changes)
        await wait_for(pilot, lambda: "sched leader" in str(app.screen.query_one("#header", Static).render()))
    assert lease.current(seeded_ws.engine) is None  # released on quit

    assert lease.acquire(seeded_ws.engine, "daemon@elsewhere", 600)  # a daemon holds the lease
    viewer = make_test_app(seeded_ws, initial_mode="leads", background=True, status_interval=0.2)
    async with viewer.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: viewer.status is not None and viewer.status.scheduler == "viewer", timeout=20)


async def test_virtual_list_places_every_page_where_it_belongs(tmp_path: Any) -> None:
    """End (reverse keyset), page-up (before-keyset), a jump into the middle (OFFSET) and page-down (after-
    keyset) all put each lead at its position in the full ordering."""
    from tui_support import seed

    from nurture_tui.clock import VirtualClock
    from nurture_tui.config import Settings
    from nurture_tui.store.engine import make_engine
    from nurture_tui.store.models import metadata

    url = f"sqlite:///{tmp_path / 'big.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    ws = Workspace(settings=Settings(db_url=url, data_dir=tmp_path, user={"name": "alice", "role": "admin"}),
                   engine=engine, clock=VirtualClock(T0))
    seed(ws, n_leads=2500)
    with engine.connect() as conn:
        order = [r[0] for r in conn.execute(select(t.lead.c.id).order_by(t.lead.c.score.desc(), t.lead.c.id.desc()))]
    app = make_test_app(ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)

        def check() -> None:
            top = round(lst.scroll_y)
            for i in range(top, min(len(order), top + lst.body_height)):
                assert lst.rows[i].id == order[i], f"row {i}"

        await pilot.press("end")
        await wait_for(pilot, lambda: lst.cursor == 2499 and lst.visible_loaded())
        check()
        for _ in range(3):
            await pilot.press("pageup")
            await wait_for(pilot, lst.visible_loaded)
            check()
        lst.move_to(1200)
        await wait_for(pilot, lst.visible_loaded)
        check()
        await pilot.press("pagedown")
        await wait_for(pilot, lst.visible_loaded)
        check()
    ws.close()


async def test_remaining_keys_ctrl_paging_tab_and_modal_cancels(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="leads")
    async with app.run_test(size=SIZE) as pilot:
        lst = await _leads(pilot)
        await pilot.press("ctrl+f")
        assert lst.cursor == lst.body_height
        await pilot.press("ctrl+b")
        assert lst.cursor == 0
        for key, modal in (("a", PromptModal), ("u", ConfirmModal), ("e", ChoiceModal)):
            await pilot.press(key)
            await wait_for(pilot, lambda modal=modal: isinstance(app.screen, modal))
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen.query(LeadList))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LeadDetailScreen) and app.screen.detail is not None)
        assert app.screen.query_one("#timeline", DataTable).has_focus
        await pilot.press("tab")
        assert not app.screen.query_one("#timeline", DataTable).has_focus
        await pilot.press("escape")
        for mode, key in (("sequences", "4"), ("templates", "5"), ("sync", "9")):
            await pilot.press(key)
            await wait_for(pilot, lambda mode=mode: app.current_mode == mode)
            await pilot.pause(0.2)
            before = app.focused
            await pilot.press("tab")
            assert app.focused is not before
