"""The Sync & audit screen: per-object sync state, API usage, open errors with a retry (audited), the audit
log filtered by user, entity and date; a rep cannot retry; snapshots at 80×24 and 160×48."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sync_seed import FAILED_OUTBOX_ID, JOB_ERROR_ID, PULL_ERROR_ID, PUSH_ERROR_ID, seed_sync
from textual.widgets import DataTable, Input, Static
from tui_support import T0, make_test_app, wait_for

from nurture_tui.console.sync import AuditFilter
from nurture_tui.store.tables import audit, sf_outbox, sync_error
from nurture_tui.tui.screens.dialogs.audit_filter import AuditFilterModal
from nurture_tui.tui.screens.sync_audit import SyncAuditScreen
from nurture_tui.tui.widgets.common.keyed_table import KeyedTable
from nurture_tui.workspace import Workspace

AUDIT_ROWS = 5 + 4  # tui_support.seed's five, sync_seed's four


def _loaded(app: Any) -> bool:
    s = app.screen
    return (isinstance(s, SyncAuditScreen) and s.query_one("#errors", DataTable).row_count == 3
            and s.query_one("#audit", DataTable).row_count == AUDIT_ROWS)


async def _open(pilot: Any, ws: Workspace) -> SyncAuditScreen:
    await wait_for(pilot, lambda: _loaded(pilot.app))
    return pilot.app.screen  # type: ignore[no-any-return]


def _audit_users(screen: SyncAuditScreen) -> list[str]:
    table = screen.query_one("#audit", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_sync_state_api_usage_and_errors(seeded_ws: Workspace) -> None:
    seed_sync(seeded_ws, T0)
    app = make_test_app(seeded_ws, initial_mode="sync")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, seeded_ws)
        health = str(screen.query_one("#health", Static).render())
        assert "API 4,210/15,000 today (28 %)" in health and "push budget 12,000" in health
        assert "outbox 1 error, 1 pending, 1 sent" in health
        objects = screen.query_one("#objects", KeyedTable)
        assert [k.value for k in objects.ordered_row_keys()] == ["Contact", "Lead", "Task"]
        # Lead: pulled 08:55 (seed), pushed 08:57, one pending; Task: its failed push is an open error
        assert [str(c) for c in objects.get_row("Lead")] == [
            "Lead", "2026-03-02 08:55", "2026-03-02 08:57", "1", "0", "idle"]
        assert [str(c) for c in objects.get_row("Task")][3:5] == ["0", "1"]
        errors = screen.query_one("#errors", KeyedTable)
        assert [k.value for k in errors.ordered_row_keys()] == [str(JOB_ERROR_ID), str(PULL_ERROR_ID),
                                                                  str(PUSH_ERROR_ID)]
        assert "Salesforce says" in [str(c.label) for c in errors.columns.values()]
        assert str(errors.get_row(str(PUSH_ERROR_ID))[3]) == "lead 9"  # a refused create has no Salesforce id yet


async def test_retry_each_kind_of_error(seeded_ws: Workspace) -> None:
    seed_sync(seeded_ws, T0)
    app = make_test_app(seeded_ws, initial_mode="sync")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, seeded_ws)
        errors = screen.query_one("#errors", KeyedTable)
        errors.focus()
        await pilot.press("down", "down")  # the refused Task push
        assert errors.cursor_key() == str(PUSH_ERROR_ID)
        assert "value too long" in str(screen.query_one("#error-detail", Static).render())
        await pilot.press("t")
        await wait_for(pilot, lambda: screen.errors.get(str(PUSH_ERROR_ID)) is not None
                       and screen.errors[str(PUSH_ERROR_ID)].queued)
        assert str(errors.get_row(str(PUSH_ERROR_ID))[4]).startswith("⟳ FIELD_CUSTOM_VALIDATION_EXCEPTION")
        with seeded_ws.engine.connect() as conn:
            assert conn.execute(select(sf_outbox.c.status, sf_outbox.c.attempts)
                                .where(sf_outbox.c.id == FAILED_OUTBOX_ID)).one() == ("pending", 0)
            entry = conn.execute(select(audit.c.user, audit.c.entity_id).where(audit.c.action == "sync.retry")).one()
        assert tuple(entry) == ("alice", str(PUSH_ERROR_ID))

        await pilot.press("up")  # a pull error: every sync already reads the record again
        await pilot.press("t")
        await wait_for(pilot, lambda: any("already retried" in n.message for n in app._notifications))
        await pilot.press("up")  # the whole sync failed: acknowledged, it leaves the list
        await pilot.press("t")
        await wait_for(pilot, lambda: str(JOB_ERROR_ID) not in screen.errors)
        with seeded_ws.engine.connect() as conn:
            open_ids = set(conn.execute(select(sync_error.c.id).where(sync_error.c.resolved_at.is_(None))).scalars())
            retries = conn.execute(select(audit.c.entity_id).where(audit.c.action == "sync.retry")).scalars().all()
        assert open_ids == {PUSH_ERROR_ID, PULL_ERROR_ID}
        assert sorted(retries) == sorted([str(PUSH_ERROR_ID), str(JOB_ERROR_ID)])  # the pull one changed nothing
        await wait_for(pilot, lambda: screen.query_one("#audit", DataTable).row_count == AUDIT_ROWS + 2)


async def test_a_rep_sees_retry_disabled(seeded_ws: Workspace) -> None:
    seed_sync(seeded_ws, T0)
    seeded_ws.settings.user.name = "rita"
    app = make_test_app(seeded_ws, initial_mode="sync")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, seeded_ws)
        assert screen.check_action("retry", ()) is None
        screen.query_one("#errors", KeyedTable).focus()
        await pilot.press("t")
        await pilot.pause(0.3)
        with seeded_ws.engine.connect() as conn:
            assert conn.execute(select(sf_outbox.c.status).where(sf_outbox.c.id == FAILED_OUTBOX_ID)).scalar() == \
                "error"


async def test_audit_log_filtered_by_user_entity_and_date(seeded_ws: Workspace) -> None:
    seed_sync(seeded_ws, T0)
    app = make_test_app(seeded_ws, initial_mode="sync")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await _open(pilot, seeded_ws)
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditFilterModal))
        user = app.screen.query_one("#audit-user", Input)
        user.focus()
        await pilot.press(*"ri", "right")  # completed from the users in the log
        assert user.value == "rita"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.where == AuditFilter(user="rita"))
        await wait_for(pilot, lambda: _audit_users(screen) == ["rita", "rita"])
        assert "user rita" in str(screen.query_one("#audit-title").render())

        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditFilterModal))
        app.screen.query_one("#audit-user", Input).value = ""
        app.screen.query_one("#audit-entity", Input).value = "segment"
        app.screen.query_one("#audit-since", Input).value = "2026-03-02"
        app.screen.query_one("#audit-until", Input).value = "nope"
        app.screen.query_one("#audit-until", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "YYYY-MM-DD" in str(app.screen.query_one("#problem").render()))
        app.screen.query_one("#audit-until", Input).value = "2026-03-02"
        await pilot.press("enter")
        wanted = AuditFilter(entity="segment", since=date(2026, 3, 2), until=date(2026, 3, 2))
        await wait_for(pilot, lambda: screen.where == wanted)
        # olaf's segment save of today and alice's five; olaf's sequence publish was yesterday
        await wait_for(pilot, lambda: sorted(_audit_users(screen)) == ["alice"] * 5 + ["olaf"])
        await pilot.press("c")
        await wait_for(pilot, lambda: screen.query_one("#audit", DataTable).row_count == AUDIT_ROWS)


def _snapshot(snap_compare: Any, ws: Workspace, size: tuple[int, int]) -> bool:
    seed_sync(ws, T0)
    app = make_test_app(ws, initial_mode="sync")

    async def run_before(pilot: Any) -> None:
        await wait_for(pilot, lambda: app.status is not None and app.status.sync != "…" and _loaded(app))
        await pilot.pause(0.2)

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


def test_snapshot_80x24(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snapshot(snap_compare, seeded_ws, (80, 24))


def test_snapshot_160x48(snap_compare: Any, seeded_ws: Workspace) -> None:
    assert _snapshot(snap_compare, seeded_ws, (160, 48))
