"""A rep triages a queue of 20 MQLs by keyboard only — accept, reject with a reason, reassign, snooze, a bulk
accept of tagged entries — then a sync pushes the results to the Salesforce emulator (real HTTPS on
loopback, unchanged simple-salesforce), where they show up (issue 18 item 2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from tui_support import make_test_app, wait_for

from nurture_tui.salesforce.demo import start_demo_org
from nurture_tui.salesforce.retry import RetryPolicy
from nurture_tui.salesforce.sync import run_sync
from nurture_tui.scoring import mql
from nurture_tui.store import tables as t
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.screens.dialogs.prompt import ChoiceModal, PromptModal
from nurture_tui.workspace import Workspace

SIZE = (160, 48)
NO_WAIT = RetryPolicy(max_tries=4, base_delay=0.0, max_relogins=2, sleep=lambda _s: None)
INSTANCE = "https://nurture-demo.my.salesforce.com"
RITAS_LEADS = list(range(4, 84, 4))  # the 20 leads she owns


def _queue_of_20(ws: Workspace) -> None:
    """Rita's 20 leads qualify through the MQL service, 3 hours apart (the oldest 57 hours ago)."""
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        conn.execute(delete(t.mql))
        conn.execute(update(t.lead).values(mql_at=None))
    with write_tx(ws.engine) as conn:
        for n, lead_id in enumerate(RITAS_LEADS):
            mql.qualify(conn, lead_id, now - timedelta(hours=3 * (len(RITAS_LEADS) - n)), ws.settings)


def _status(ws: Workspace) -> dict[int, Any]:
    with ws.engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(t.mql.c.id, t.mql.c.lead_id, t.mql.c.status, t.mql.c.rep_id,
                                                     t.mql.c.reject_reason, t.mql.c.snoozed_until))}


@pytest.mark.timeout(180)
async def test_rep_triages_twenty_mqls_by_keyboard_and_salesforce_shows_it(seeded_ws: Workspace) -> None:
    ws = seeded_ws
    ws.settings.user.name = "rita"
    with write_tx(ws.engine) as conn:
        conn.execute(update(t.lead).values(sf_id=None))
    org = start_demo_org(ws, directory=ws.settings.data_dir / "org")
    ws.settings.salesforce.instance_url = INSTANCE
    try:
        assert run_sync(ws, policy=NO_WAIT).ok  # links the leads and users by email and username
        _queue_of_20(ws)
        app = make_test_app(ws, initial_mode="mql")
        async with app.run_test(size=SIZE) as pilot:
            screen: Any = app.screen

            async def current_after(*keys: str) -> int:
                """The entry under the cursor, after waiting for its hand-off panel; then press `keys`."""
                await wait_for(pilot, lambda: screen.panel is not None and screen.current() is not None
                               and screen.panel.mql_id == screen.current().id)
                picked = int(screen.current().id)
                await pilot.press(*keys)
                return picked

            async def settled(n: int) -> None:
                await wait_for(pilot, lambda: app.screen is screen and len(screen.entries) == n)

            await settled(20)
            await wait_for(pilot, lambda: screen.panel is not None)
            await pilot.press("o")  # the Salesforce URL, shown and copied
            await wait_for(pilot, lambda: app.clipboard.startswith(INSTANCE + "/00Q"))
            assert [e.lead_id for e in screen.entries.values()] == RITAS_LEADS  # oldest first
            assert sum(e.overdue for e in screen.entries.values()) == 12  # 60, 57 … 27 hours old: past the 24 h SLA
            await wait_for(pilot, lambda: "WHY IT QUALIFIED" in str(screen.query_one("#summary").render()))

            accepted = await current_after("a")
            await settled(19)
            rejected = await current_after("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
            await pilot.press("down", "enter")  # "not the decision maker"
            await settled(18)
            typed = await current_after("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
            await pilot.press("end", "enter")  # other: type a reason
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
            await pilot.press(*"went with a partner", "enter")
            await settled(17)
            reassigned = await current_after("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
            olaf = [value for value, _label in app.screen.choices].index("user:olaf")
            await pilot.press(*["down"] * olaf, "enter")
            await settled(16)
            snoozed = await current_after("z")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
            await pilot.press("down", "down", "enter")  # tomorrow 09:00
            await settled(15)
            await pilot.press("s")  # by score, then tag five for a bulk accept
            await wait_for(pilot, lambda: screen.sort == "score")
            bulk = []
            for _ in range(5):
                bulk.append(await current_after("space"))
            await wait_for(pilot, lambda: len(screen.tagged) == 5)
            await pilot.press("a")
            await settled(10)
            await wait_for(pilot, lambda: not screen.tagged)
            with write_tx(ws.engine) as conn:  # a new MQL arrives for her while she works
                mql.qualify(conn, 84, ws.clock.now(), ws.settings)
            await settled(11)
            await wait_for(pilot, lambda: any("new MQL for you" in n.message for n in app._notifications))

        rows = _status(ws)
        assert rows[accepted].status == "accepted"
        assert rows[rejected].reject_reason == "not the decision maker"
        assert rows[typed].reject_reason == "went with a partner"
        assert rows[rejected].status in ("rejected", "recycled")
        assert rows[reassigned].rep_id == 3 and rows[reassigned].status == "new"
        assert rows[snoozed].status == "snoozed"
        assert rows[snoozed].snoozed_until.hour == 9
        assert all(rows[i].status == "accepted" for i in bulk) and len(set(bulk)) == 5
        with ws.engine.connect() as conn:
            audited = set(conn.execute(select(t.audit.c.action).where(t.audit.c.user == "rita")).scalars())
        assert audited == {"mql.accept", "mql.reject", "mql.reassign", "mql.snooze"}

        report = run_sync(ws, policy=NO_WAIT)
        assert report.ok, report.error
        assert report.pushed is not None and report.pushed.failed == 0

        def sf_lead(mql_id: int) -> dict[str, Any]:
            with ws.engine.connect() as conn:
                sf_id = conn.execute(select(t.lead.c.sf_id).where(t.lead.c.id == rows[mql_id].lead_id)).scalar()
            return dict(org.org.records["Lead"][sf_id])

        statuses = ws.settings.scoring
        for mql_id in (accepted, *bulk):
            assert sf_lead(mql_id)["Nurture_MQL_Status__c"] == statuses.accepted_lead_status
        for mql_id in (rejected, typed):
            assert sf_lead(mql_id)["Nurture_MQL_Status__c"] == statuses.recycled_lead_status
        owner = sf_lead(reassigned)["OwnerId"]
        assert org.org.records["User"][owner]["Username"] == "olaf"
        assert sf_lead(snoozed)["Nurture_MQL_Status__c"] == statuses.mql_lead_status
        subjects = {(task["WhoId"], task["Subject"].split(":")[0]) for task in org.org.records["Task"].values()}
        assert (sf_lead(snoozed)["Id"], "MQL snoozed until " +
                rows[snoozed].snoozed_until.strftime("%Y-%m-%d %H")) in subjects
        reassigned_tasks = [task for task in org.org.records["Task"].values()
                            if task["WhoId"] == sf_lead(reassigned)["Id"] and task["Subject"].startswith("Reassigned")]
        assert [org.org.records["User"][task["OwnerId"]]["Username"] for task in reassigned_tasks] == ["olaf"]
    finally:
        org.stop()
