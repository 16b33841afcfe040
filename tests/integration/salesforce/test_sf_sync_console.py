"""The Sync & audit console against the emulator: the API usage a sync saw is what the screen shows, and a
push that Salesforce refused is retried from the console (audited), then goes through on the next sync."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nurture_tui.console.facade import Console
from nurture_tui.errors import NotFoundError, PermissionDenied
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.store.tables import audit, sf_outbox
from nurture_tui.workspace import Workspace

from .sf_support import count, sync
from .test_sf_faults import enqueue_scores, leads


def test_api_usage_is_what_the_last_sync_saw(sf_ws: Workspace, emulator: Emulator) -> None:
    assert Console.open(sf_ws).sync.overview().api is None  # never synced: nothing to show
    emulator.daily_api_limit = 15_000
    leads(emulator, 5)
    report = sync(sf_ws)
    api = Console.open(sf_ws).sync.overview().api
    assert api is not None
    assert (api.used, api.limit, api.allowed) == (report.budget_used, 15_000, report.budget_allowed)
    assert 0 < api.used <= emulator.api_used and api.at == sf_ws.clock.now()


def test_a_refused_push_is_retried_from_the_console(sf_ws: Workspace, emulator: Emulator) -> None:
    ids = leads(emulator, 3)
    sync(sf_ws)
    enqueue_scores(sf_ws)
    emulator.faults.add("record_error", sobject="Lead", record_ids=[ids[1]], times=-1,
                        message="Score must be below 100")
    sync(sf_ws)
    console = Console.open(sf_ws)
    [error] = console.sync.overview().errors
    assert (error.code, error.message, error.direction, error.queued) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score must be below 100", "push", False)
    lead_row = next(o for o in console.sync.overview().objects if o.sobject == "Lead")
    assert lead_row.errors == 1 and lead_row.pending == 0 and lead_row.last_push is not None

    emulator.faults.clear()  # someone fixed the validation rule
    assert console.sync.retry(error.id) == "queued: the next sync pushes it again"
    [queued] = console.sync.overview().errors
    assert queued.queued  # still open until the push goes through
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "pending") == 1
    with sf_ws.engine.connect() as conn:
        entry = conn.execute(select(audit).where(audit.c.action == "sync.retry")).mappings().one()
    assert entry["entity_id"] == str(error.id) and entry["before"]["outbox"]["status"] == "error"

    report = sync(sf_ws)
    assert report.pushed is not None and report.pushed.sent == 1
    assert console.sync.overview().errors == []
    with pytest.raises(NotFoundError):
        console.sync.retry(error.id)


def test_a_rep_cannot_retry(sf_ws: Workspace) -> None:
    sf_ws.settings.user.role = "rep"
    with pytest.raises(PermissionDenied):
        Console.open(sf_ws).sync.retry(1)
