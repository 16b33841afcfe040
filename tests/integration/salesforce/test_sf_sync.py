"""The two-way sync against the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update

from nurture_tui.salesforce import outbox
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, campaign_member, lead, opportunity, sf_outbox, sync_error
from nurture_tui.store.tables import user as user_t
from nurture_tui.workspace import Workspace

from .sf_support import count, local_lead, new_lead, sync


def test_full_pull_mirrors_the_org_and_records_engagement(sf_ws: Workspace, seeded: Emulator) -> None:
    report = sync(sf_ws, push=False)
    assert report.ok, report.error
    org = seeded.org
    leads = sum(1 for r in org.records["Lead"].values())
    contacts = len(org.records["Contact"])
    assert count(sf_ws, lead) == leads + contacts
    assert count(sf_ws, user_t, user_t.c.sf_id.is_not(None)) == len(org.records["User"])
    responded = sum(1 for r in org.records["CampaignMember"].values() if r["HasResponded"])
    assert count(sf_ws, campaign_member) == len(org.records["CampaignMember"])
    assert count(sf_ws, activity, activity.c.kind == "campaign_response") == responded
    with_contact = sum(1 for r in org.records["Opportunity"].values() if r["ContactId"])
    assert count(sf_ws, opportunity) == len(org.records["Opportunity"])
    assert count(sf_ws, activity, activity.c.kind == "opportunity") == with_contact
    some = next(iter(org.records["Lead"].values()))
    row = local_lead(sf_ws, some["Id"])
    assert row["email"] == some["Email"].lower() and row["sf_type"] == "Lead" and row["owner_id"] is not None
    # A second pull reads nothing new (the overlap window re-reads nothing older than the watermark here); a
    # push would bring its own writes back (their SystemModstamp moved), so these syncs only pull
    again = sync(sf_ws, push=False)
    assert sum(o.inserted + o.updated for o in again.pulled.values()) == 0
    assert count(sf_ws, activity, activity.c.kind == "campaign_response") == responded


def test_incremental_pull_ownership_and_owner_conflict(sf_ws: Workspace, emulator: Emulator) -> None:
    lid = new_lead(emulator, "grace@example.com", Title="CTO")
    sync(sf_ws)
    now = sf_ws.clock.now()
    row = local_lead(sf_ws, lid)
    with write_tx(sf_ws.engine) as conn:
        conn.execute(update(lead).where(lead.c.id == row["id"]).values(score=50.0, title="local edit"))
        rep = conn.execute(insert(user_t).values(username="rep-x", name="Rep X", sf_id=None)).inserted_primary_key
    emulator.org.update("Lead", lid, {"Title": "CEO", "Nurture_Score__c": 999})
    sync(sf_ws, push=False)
    row = local_lead(sf_ws, lid)
    assert row["title"] == "CEO"  # Salesforce-owned: Salesforce wins
    assert row["score"] == 50.0  # nurture-owned: never pulled back
    # A local owner change still waiting to be pushed wins over the owner pulled meanwhile.
    other = emulator.org.create("User", {"Username": "u2@x.example", "LastName": "Two", "Email": "u2@example.com"})
    sync(sf_ws, push=False)
    with sf_ws.engine.connect() as conn:
        u2 = conn.execute(select(user_t.c.id).where(user_t.c.sf_id == other)).scalar()
    with write_tx(sf_ws.engine) as conn:
        conn.execute(update(lead).where(lead.c.id == row["id"]).values(owner_id=u2))
        outbox.enqueue_field_update(conn, row["id"], {"owner": u2}, now)
    emulator.org.update("Lead", lid, {"OwnerId": emulator.integration_user_id, "Phone": "123"})
    sync(sf_ws, push=False)
    assert local_lead(sf_ws, lid)["owner_id"] == u2
    sync(sf_ws)
    assert emulator.org.records["Lead"][lid]["OwnerId"] == other
    assert rep is not None


def test_lead_converted_mid_nurture_keeps_its_state(sf_ws: Workspace, emulator: Emulator) -> None:
    lid = new_lead(emulator, "ines@example.com")
    sync(sf_ws)
    local_id = local_lead(sf_ws, lid)["id"]
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        conn.execute(update(lead).where(lead.c.id == local_id).values(score=80.0, stage="decision"))
        conn.execute(insert(activity).values(lead_id=local_id, kind="click", at=now, meta={}))
        outbox.enqueue_field_update(conn, local_id, {"score": 80.0}, now)
    out = emulator.org.convert_lead(lid)
    # The push races the conversion: Salesforce refuses the converted lead; the error is kept, retryable.
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.retry_later == 1
    with sf_ws.engine.connect() as conn:
        err = conn.execute(select(sync_error).where(sync_error.c.resolved_at.is_(None))).mappings().one()
    assert err["code"] == "CANNOT_UPDATE_CONVERTED_LEAD" and "converted" in err["message"]
    report = sync(sf_ws)
    assert report.pulled["Lead"].converted == 1
    row = local_lead(sf_ws, out["contactId"])
    assert row["id"] == local_id and row["sf_type"] == "Contact" and row["score"] == 80.0
    assert row["custom"]["sf_lead_id"] == lid
    assert count(sf_ws, lead) == 1  # the Contact did not become a second local lead
    assert emulator.org.records["Contact"][out["contactId"]]["Nurture_Score__c"] == 80.0
    assert count(sf_ws, sync_error, sync_error.c.resolved_at.is_(None)) == 0
    assert count(sf_ws, activity, activity.c.lead_id == local_id, activity.c.kind == "opportunity") == 1


def test_deleted_and_merged_records(sf_ws: Workspace, emulator: Emulator) -> None:
    keep = new_lead(emulator, "keep@example.com")
    loser = new_lead(emulator, "loser@example.com")
    doomed = new_lead(emulator, "doomed@example.com")
    sync(sf_ws)
    loser_local = local_lead(sf_ws, loser)["id"]
    keep_local = local_lead(sf_ws, keep)["id"]
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        conn.execute(insert(activity).values(lead_id=loser_local, kind="open", at=now, meta={}))
        conn.execute(update(lead).where(lead.c.id == loser_local).values(score=30.0))
    emulator.org.merge("Lead", keep, [loser])
    emulator.org.delete("Lead", doomed)
    report = sync(sf_ws)
    assert report.pulled["Lead"].merged == 1 and report.pulled["Lead"].deleted == 1
    with sf_ws.engine.connect() as conn:
        gone = conn.execute(select(lead).where(lead.c.id == loser_local)).mappings().one()
    moved = count(sf_ws, activity, activity.c.lead_id == keep_local)
    assert gone["sf_id"] is None and gone["custom"]["merged_into"] == keep_local and gone["status"] == "Merged"
    assert moved == 1 and local_lead(sf_ws, keep)["score"] == 30.0
    dead = local_lead(sf_ws, doomed)
    assert dead["custom"]["sf_deleted"] is True
    with write_tx(sf_ws.engine) as conn:
        outbox.enqueue_field_update(conn, dead["id"], {"score": 1.0}, now)
    report = sync(sf_ws)
    assert report.pushed is not None and report.pushed.failed == 1
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(sync_error.c.code).where(sync_error.c.resolved_at.is_(None))).scalar() == \
            "ENTITY_IS_DELETED"


def test_ten_thousand_score_changes_in_few_calls(sf_ws: Workspace, emulator: Emulator) -> None:
    emulator.org.insert_trusted("Lead", [{"LastName": f"L{i}", "Company": "C", "Email": f"p{i}@example.com"}
                                         for i in range(5000)])
    sync(sf_ws)
    now = sf_ws.clock.now()
    with sf_ws.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(lead.c.id))]
    with write_tx(sf_ws.engine) as conn:
        conn.execute(insert(sf_outbox), [{"sobject": "Lead", "op": "update", "lead_id": i, "status": "pending",
                                          "payload": {"score": float(n), "grade": "B"}, "attempts": 0,
                                          "created_at": now} for n in range(2) for i in ids])
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "pending") == 10_000
    emulator.stats.reset()
    report = sync(sf_ws, pull=False)
    calls = emulator.stats.snapshot()["api_calls"]
    assert report.ok and report.pushed is not None and report.pushed.sent == 5000
    assert calls <= 50, emulator.stats.snapshot()
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "sent") == 10_000
    assert all(r["Nurture_Score__c"] == 1.0 and r["Nurture_Grade__c"] == "B"
               for r in emulator.org.records["Lead"].values())


def test_tasks_and_campaign_members_are_pushed_once(sf_ws: Workspace, seeded: Emulator) -> None:
    sync(sf_ws)
    now = sf_ws.clock.now()
    with sf_ws.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(lead.c.id).where(lead.c.sf_type == "Lead").limit(5))]
    with write_tx(sf_ws.engine) as conn:
        for i in ids:
            outbox.enqueue_task(conn, i, "New MQL", "Opened 3 emails", None, now)
            outbox.enqueue_campaign_member(conn, i, "Summit 2026", "Sent", now)
            outbox.enqueue_campaign_member(conn, i, "Summit 2026", "Responded", now)
    before_tasks = len(seeded.org.records["Task"])
    report = sync(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.failed == 0
    assert len(seeded.org.records["Task"]) == before_tasks + 5
    members = [m for m in seeded.org.records["CampaignMember"].values()
               if m["Nurture_Key__c"] and m["LeadId"] in {local_lead_sf(sf_ws, i) for i in ids}]
    assert len(members) == 5 and all(m["HasResponded"] for m in members)
    assert count(sf_ws, sf_outbox, sf_outbox.c.status == "sent") == 15


def local_lead_sf(ws: Workspace, lead_id: int) -> str:
    with ws.engine.connect() as conn:
        return str(conn.execute(select(lead.c.sf_id).where(lead.c.id == lead_id)).scalar())


def test_pull_conflicts_are_kept_and_retried(sf_ws: Workspace, emulator: Emulator) -> None:
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:  # a local-only lead already mirrors another Salesforce lead's email
        conn.execute(insert(lead).values(email="dup@example.com", sf_id="00Q999999999999AAA", sf_type="Lead",
                                         created_at=now, updated_at=now))
    lid = new_lead(emulator, "dup@example.com")
    report = sync(sf_ws)
    assert report.pulled["Lead"].errors == 1
    with sf_ws.engine.connect() as conn:
        err = conn.execute(select(sync_error).where(sync_error.c.resolved_at.is_(None))).mappings().one()
    assert err["code"] == "DUPLICATE_EMAIL" and err["record_id"] == lid and "dup@example.com" in err["message"]
    with write_tx(sf_ws.engine) as conn:  # the operator fixes the local duplicate
        conn.execute(update(lead).where(lead.c.email == "dup@example.com").values(email="old-dup@example.com"))
    report = sync(sf_ws)  # the record did not change in Salesforce: the retry by Id picks it up
    assert local_lead(sf_ws, lid)["email"] == "dup@example.com"
    assert count(sf_ws, sync_error, sync_error.c.resolved_at.is_(None)) == 0


def test_one_sync_at_a_time_across_processes(sf_ws: Workspace, emulator: Emulator) -> None:
    import pytest

    from nurture_tui.errors import NurtureError
    from nurture_tui.salesforce.sync import LOCK_KEY
    from nurture_tui.store.tables import sync_state

    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:  # another process's sync started a minute ago
        conn.execute(insert(sync_state).values(sobject=LOCK_KEY, status="running", detail={},
                                               last_run_at=now - timedelta(minutes=1)))
    with pytest.raises(NurtureError, match="another Salesforce sync is running"):
        sync(sf_ws)
    with write_tx(sf_ws.engine) as conn:  # ... or crashed long ago: the stale lock is taken over
        conn.execute(update(sync_state).where(sync_state.c.sobject == LOCK_KEY)
                     .values(last_run_at=now - timedelta(hours=1)))
    assert sync(sf_ws).ok
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(sync_state.c.status).where(sync_state.c.sobject == LOCK_KEY)).scalar() == "idle"


def test_scheduler_hook(sf_ws: Workspace, emulator: Emulator) -> None:
    from nurture_tui.salesforce.sync import scheduler_hook
    from nurture_tui.wiring import scheduler_jobs

    new_lead(emulator, "hook@example.com")
    sf_ws.settings.salesforce.sync_interval_seconds = 45
    spec = next(h for h in scheduler_jobs(sf_ws.settings).all() if h.name == "sync")
    assert spec.interval_seconds == 5  # it ticks; a full sync runs every 45 s, pushes when due in between
    sf_ws.settings.salesforce.enabled = False
    assert spec.fn(sf_ws) is None and count(sf_ws, lead) == 0
    sf_ws.settings.salesforce.enabled = True
    report = scheduler_hook(sf_ws)
    assert report is not None and report.ok and count(sf_ws, lead) == 1
