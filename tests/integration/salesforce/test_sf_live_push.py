"""Two-way sync, issue 19 items 1–3: local leads created in Salesforce (or linked by email), nurture-owned values
pushed as they change (coalesced, within the budget), opt-outs and bounces, the MQL status mapped onto Lead
Status and kept through a pull of its echo, rejected records kept and retried, grade on arrival — against the
emulator over real HTTPS with unchanged simple-salesforce, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from nurture_tui.console.sync import sync_overview
from nurture_tui.leads.importer import import_csv
from nurture_tui.mail.subscriptions import set_global_opt_out
from nurture_tui.salesforce.demo import add_lead_statuses
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.salesforce.sync import retry_errors
from nurture_tui.scoring import grading, service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import account, lead, sf_lead_sync, sync_error
from nurture_tui.store.tables import outbox as mail_outbox
from nurture_tui.workspace import Workspace

from .sf_support import count, local_lead, new_lead, sync


def sf_by_email(emu: Emulator, sobject: str, email: str) -> list[dict[str, Any]]:
    return [r for r in emu.org.records[sobject].values() if (r.get("Email") or "").lower() == email
            and not r.get("IsDeleted")]


def lead_id(ws: Workspace, email: str) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(lead.c.id).where(lead.c.email == email)).scalar_one())


def open_errors(ws: Workspace) -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(sync_error).where(sync_error.c.resolved_at.is_(None))).mappings())


def mirrored(ws: Workspace, emu: Emulator, email: str, **extra: Any) -> tuple[int, str]:
    sf_id = new_lead(emu, email, **extra)
    assert sync(ws).ok
    return lead_id(ws, email), sf_id


def test_imported_leads_are_created_linked_or_made_contacts_after_one_sync(
        sf_ws: Workspace, emulator: Emulator, tmp_path: Path) -> None:
    known = new_lead(emulator, "known@example.com")  # already in Salesforce: linked, not inserted again
    acct = emulator.org.create("Account", {"Name": "Contoso", "Website": "https://www.contoso.example"})
    assert sync(sf_ws, push=False).ok  # the account is mirrored; the known lead too (pull adopts nothing yet)
    csv = tmp_path / "leads.csv"
    csv.write_text("email,first_name,last_name,company,title\n"
                   "new@fresh.example,Nia,New,Fresh Co,CTO\n"
                   "buyer@contoso.example,Bo,Buyer,Contoso,VP\n")
    import_csv(sf_ws, csv)
    with write_tx(sf_ws.engine) as conn:  # a local-only copy of the known lead (as if imported before)
        conn.execute(update(lead).where(lead.c.email == "known@example.com").values(sf_id=None, sf_type=None))
    report = sync(sf_ws, pull=False)
    assert report.ok, report.error
    assert report.pushed is not None and report.pushed.created == 2 and report.pushed.linked == 1
    (created,) = sf_by_email(emulator, "Lead", "new@fresh.example")
    assert created["Company"] == "Fresh Co" and created["Title"] == "CTO" and created["Nurture_Score__c"] == 0
    (contact,) = sf_by_email(emulator, "Contact", "buyer@contoso.example")
    assert contact["AccountId"] == acct and not sf_by_email(emulator, "Lead", "buyer@contoso.example")
    assert len(sf_by_email(emulator, "Lead", "known@example.com")) == 1
    assert local_lead(sf_ws, created["Id"])["email"] == "new@fresh.example"
    assert local_lead(sf_ws, contact["Id"])["sf_type"] == "Contact"
    assert local_lead(sf_ws, known)["email"] == "known@example.com"
    again = sync(sf_ws)
    assert again.ok and again.pushed is not None and again.pushed.created == 0 and open_errors(sf_ws) == []


def test_create_policy_mql_only_creates_qualified_leads(sf_ws: Workspace, emulator: Emulator) -> None:
    sf_ws.settings.salesforce.create_policy = "mql"
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        conn.execute(insert(lead), [{"email": f"p{i}@example.com", "last_name": f"P{i}", "company": "C",
                                     "created_at": now, "updated_at": now} for i in range(3)])
        conn.execute(update(lead).where(lead.c.email == "p1@example.com").values(mql_at=now, status="MQL"))
    report = sync(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.created == 1
    assert [r["Email"] for r in emulator.org.records["Lead"].values()] == ["p1@example.com"]


def test_score_changes_reach_salesforce_within_one_sync_coalesced_into_one_write(
        sf_ws: Workspace, emulator: Emulator) -> None:
    lid, sf_id = mirrored(sf_ws, emulator, "ada@example.com")
    others = [mirrored(sf_ws, emulator, f"o{i}@example.com")[0] for i in range(3)]
    s = sf_ws.settings
    for i in range(50):  # 50 changes, each its own transaction, like 50 tracked clicks
        with write_tx(sf_ws.engine) as conn:
            service.adjust_score(conn, lid, 1, f"click {i}", sf_ws.clock.now(), s)
    with write_tx(sf_ws.engine) as conn:
        for other in others:
            service.adjust_score(conn, other, 7, "webinar", sf_ws.clock.now(), s)
    with sf_ws.engine.connect() as conn:
        seq = conn.execute(select(sf_lead_sync.c.seq).where(sf_lead_sync.c.lead_id == lid)).scalar_one()
    assert seq >= 50
    emulator.stats.reset()
    report = sync(sf_ws, pull=False)
    assert report.ok and report.pushed is not None and report.pushed.live_records == 4
    assert emulator.org.records["Lead"][sf_id]["Nurture_Score__c"] == 50
    routes = emulator.stats.snapshot()["by_route"]
    writes = {k: v for k, v in routes.items() if k.startswith(("PATCH", "POST")) and "/composite/" in k}
    assert sum(writes.values()) == 1, routes  # 4 leads, 53 changes: one Collections call, one record each
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(sf_lead_sync.c.dirty_since).where(sf_lead_sync.c.lead_id == lid)).scalar() is None
    emulator.stats.reset()
    assert sync(sf_ws, pull=False).ok  # nothing changed since: no write at all
    assert not any("/composite/" in k for k in emulator.stats.snapshot()["by_route"])


def test_unsubscribe_and_hard_bounce_reach_salesforce(sf_ws: Workspace, emulator: Emulator) -> None:
    opted, opted_sf = mirrored(sf_ws, emulator, "out@example.com")
    bounced, bounced_sf = mirrored(sf_ws, emulator, "gone@example.com")
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        set_global_opt_out(conn, opted, True, now)
        conn.execute(insert(mail_outbox).values(
            idempotency_key="b1", lead_id=bounced, to_email="gone@example.com", subject="Hi", status="bounced",
            last_error="550 5.1.1 user unknown", headers={}, created_at=now, sent_at=now))
        conn.execute(update(lead).where(lead.c.id == bounced).values(bounced=True, updated_at=now))
    assert sync(sf_ws).ok
    assert emulator.org.records["Lead"][opted_sf]["HasOptedOutOfEmail"] is True
    rec = emulator.org.records["Lead"][bounced_sf]
    assert rec["EmailBouncedDate"] and "550" in rec["EmailBouncedReason"]
    assert local_lead(sf_ws, opted_sf)["opted_out"] is True  # the pull of the echo keeps it (sticky)


def test_mql_status_maps_onto_lead_status_and_survives_a_pull(sf_ws: Workspace, emulator: Emulator) -> None:
    s = sf_ws.settings  # the default status_map: MQL → "Marketing Qualified", added in Setup as admins do
    add_lead_statuses(emulator.org, ["Marketing Qualified"])
    s.scoring.mql_grade = ""
    lid, sf_id = mirrored(sf_ws, emulator, "hot@example.com")
    with write_tx(sf_ws.engine) as conn:
        service.adjust_score(conn, lid, 150, "demo request", sf_ws.clock.now(), s)
    assert local_lead(sf_ws, sf_id)["status"] == "MQL"
    emulator.org.update("Lead", sf_id, {"Phone": "+1 555 0100"})  # a rep edits it before nurture's push lands
    sf_ws.clock.advance(timedelta(minutes=1))
    report = sync(sf_ws)
    assert report.ok, report.error
    rec = emulator.org.records["Lead"][sf_id]
    assert rec["Nurture_MQL_Status__c"] == "MQL" and rec["Status"] == "Marketing Qualified"
    assert local_lead(sf_ws, sf_id)["status"] == "MQL"  # the pull of the older Status did not undo it
    sf_ws.clock.advance(timedelta(minutes=1))
    assert sync(sf_ws).ok  # the echo of the push is pulled back: still MQL locally
    assert local_lead(sf_ws, sf_id)["status"] == "MQL" and local_lead(sf_ws, sf_id)["phone"] == "+1 555 0100"
    emulator.org.update("Lead", sf_id, {"Status": "Closed - Not Converted"})  # a rep's own decision wins
    sf_ws.clock.advance(timedelta(minutes=1))
    assert sync(sf_ws).ok
    assert local_lead(sf_ws, sf_id)["status"] == "Closed - Not Converted"


def test_a_status_the_org_lacks_is_not_pushed_and_said_so(sf_ws: Workspace, emulator: Emulator) -> None:
    s = sf_ws.settings
    s.salesforce.status_map = {"MQL": "Hot Lead"}
    s.scoring.mql_grade = ""
    lid, sf_id = mirrored(sf_ws, emulator, "warm@example.com")
    with write_tx(sf_ws.engine) as conn:
        service.adjust_score(conn, lid, 150, "demo request", sf_ws.clock.now(), s)
    assert sync(sf_ws).ok
    rec = emulator.org.records["Lead"][sf_id]
    assert rec["Nurture_MQL_Status__c"] == "MQL" and rec["Status"] == "Open - Not Contacted"
    (err,) = open_errors(sf_ws)
    assert err["code"] == "STATUS_NOT_IN_PICKLIST" and err["message"].startswith(
        "salesforce.status_map.MQL: 'Hot Lead' is not a Lead Status in this org (values: ")
    add_lead_statuses(emulator.org, ["Hot Lead"])  # the admin adds it in Setup; a full sync picks it up
    sf_ws.clock.advance(timedelta(minutes=1))
    assert sync(sf_ws, full=True).ok
    assert emulator.org.records["Lead"][sf_id]["Status"] == "Hot Lead" and open_errors(sf_ws) == []


def test_rejected_records_are_kept_with_their_error_and_retried_after_a_fix(
        sf_ws: Workspace, emulator: Emulator) -> None:
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:  # Salesforce requires Company on a Lead: the middle one lacks it
        conn.execute(insert(lead), [{"email": e, "last_name": "X", "company": c, "created_at": now, "updated_at": now}
                                    for e, c in (("a@example.com", "A"), ("b@example.com", None),
                                                 ("c@example.com", "C"))])
    report = sync(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.created == 2
    (err,) = open_errors(sf_ws)
    assert err["code"] == "REQUIRED_FIELD_MISSING" and err["lead_id"] == lead_id(sf_ws, "b@example.com")
    assert "b@example.com" in err["message"] and "Company" in err["message"]
    with sf_ws.engine.connect() as conn:  # shown in Sync & audit with the lead it is about
        (shown,) = sync_overview(conn).errors
    assert shown.code == "REQUIRED_FIELD_MISSING" and shown.lead_id == err["lead_id"]
    again = sync(sf_ws)  # not retried while nothing changed
    assert again.pushed is not None and again.pushed.created == 0 and len(open_errors(sf_ws)) == 1
    with write_tx(sf_ws.engine) as conn:  # the fix
        conn.execute(update(lead).where(lead.c.email == "b@example.com").values(company="B Corp"))
    fixed = sync(sf_ws)
    assert fixed.pushed is not None and fixed.pushed.created == 1 and open_errors(sf_ws) == []
    assert sf_by_email(emulator, "Lead", "b@example.com")[0]["Company"] == "B Corp"

    # A rejected field update (a validation rule) keeps its error, does not block the batch, retries on request
    ids = [lead_id(sf_ws, e) for e in ("a@example.com", "c@example.com")]
    a_sf = local_lead_by_id(sf_ws, ids[0])["sf_id"]
    emulator.faults.add("record_error", times=-1, sobject="Lead", record_ids={a_sf},
                        code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="Score cannot change on named accounts")
    with write_tx(sf_ws.engine) as conn:
        for i in ids:
            service.adjust_score(conn, i, 12, "visit", sf_ws.clock.now(), sf_ws.settings)
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.failed == 1 and report.pushed.sent == 1
    (err,) = open_errors(sf_ws)
    assert err["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and err["lead_id"] == ids[0]
    c_sf = local_lead_by_id(sf_ws, ids[1])["sf_id"]
    assert emulator.org.records["Lead"][c_sf]["Nurture_Score__c"] == 12
    emulator.faults.clear()
    assert retry_errors(sf_ws) >= 1
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.sent == 1 and open_errors(sf_ws) == []
    assert emulator.org.records["Lead"][a_sf]["Nurture_Score__c"] == 12


def local_lead_by_id(ws: Workspace, lid: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(lead).where(lead.c.id == lid)).mappings().one()


def test_faults_keep_everything_queued_and_a_lost_create_response_never_duplicates(
        sf_ws: Workspace, emulator: Emulator) -> None:
    lid, sf_id = mirrored(sf_ws, emulator, "q@example.com")
    with write_tx(sf_ws.engine) as conn:
        service.adjust_score(conn, lid, 30, "visit", sf_ws.clock.now(), sf_ws.settings)
    emulator.faults.add("request_limit", times=-1, path="/composite/")
    report = sync(sf_ws, pull=False)
    assert not report.ok
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(sf_lead_sync.c.dirty_since).where(sf_lead_sync.c.lead_id == lid)).scalar()
    emulator.faults.clear()
    assert sync(sf_ws, pull=False).ok
    assert emulator.org.records["Lead"][sf_id]["Nurture_Score__c"] == 30

    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        conn.execute(insert(lead).values(email="once@example.com", last_name="Once", company="O", created_at=now,
                                         updated_at=now))
    emulator.faults.add("unavailable", method="POST", path="/composite/sobjects$", after=True)  # created, answer lost
    report = sync(sf_ws, pull=False)
    assert not report.ok and len(sf_by_email(emulator, "Lead", "once@example.com")) == 1
    report = sync(sf_ws, pull=False)
    assert report.ok and report.pushed is not None and report.pushed.linked == 1
    assert len(sf_by_email(emulator, "Lead", "once@example.com")) == 1
    assert local_lead(sf_ws, sf_by_email(emulator, "Lead", "once@example.com")[0]["Id"]) is not None


def test_pulled_leads_are_graded_on_arrival(sf_ws: Workspace, emulator: Emulator) -> None:
    with write_tx(sf_ws.engine) as conn:
        grading.save_profiles(conn, [grading.parse_profile(
            {"name": "all", "criteria": [{"field": "title", "op": "contains", "value": ["vp"], "steps": 3}]}, "p")])
    vp = new_lead(emulator, "vp@example.com", Title="VP Sales")
    intern = new_lead(emulator, "intern@example.com", Title="Intern")
    assert sync(sf_ws, push=False).ok
    assert local_lead(sf_ws, vp)["grade"] == "C" and local_lead(sf_ws, intern)["grade"] == "D"
    emulator.org.update("Lead", intern, {"Title": "VP Marketing"})  # a changed field regrades on the next pull
    sf_ws.clock.advance(timedelta(minutes=1))
    assert sync(sf_ws).ok
    assert local_lead(sf_ws, intern)["grade"] == "C"
    assert emulator.org.records["Lead"][intern]["Nurture_Grade__c"] == "C"  # and the grade is pushed
    assert count(sf_ws, account) == 0


def test_the_scheduler_pushes_alone_within_one_push_interval(sf_ws: Workspace, emulator: Emulator) -> None:
    from nurture_tui.salesforce.sync import scheduler_hook

    cfg = sf_ws.settings.salesforce
    cfg.enabled, cfg.push_interval_seconds = True, 0.4  # (a full sync only every 120 s)
    sf_id = new_lead(emulator, "tick@example.com")
    first = scheduler_hook(sf_ws)
    assert first is not None and first.pulled  # the first tick is a full sync
    lid = local_lead(sf_ws, sf_id)["id"]
    with write_tx(sf_ws.engine) as conn:
        service.adjust_score(conn, lid, 9, "visit", sf_ws.clock.now(), sf_ws.settings)
    assert scheduler_hook(sf_ws) is None  # the change is younger than the interval minus the margin: wait
    time.sleep(0.35)
    pushed = scheduler_hook(sf_ws)
    assert pushed is not None and pushed.ok and not pushed.pulled  # a push alone
    assert emulator.org.records["Lead"][sf_id]["Nurture_Score__c"] == 9
    assert scheduler_hook(sf_ws) is None  # nothing left to push: no API call



def test_expired_sessions_and_locked_rows_keep_live_changes_queued(sf_ws: Workspace, emulator: Emulator) -> None:
    ids = [mirrored(sf_ws, emulator, f"k{i}@example.com") for i in range(3)]
    with write_tx(sf_ws.engine) as conn:
        for lid, _sf in ids:
            service.adjust_score(conn, lid, 5, "visit", sf_ws.clock.now(), sf_ws.settings)
    emulator.faults.add("expired_session", times=-1, path="/composite/")
    report = sync(sf_ws, pull=False)
    assert not report.ok and "Expired session" in (report.error or "")
    emulator.faults.clear()
    emulator.faults.add("record_error", sobject="Lead", record_ids=[ids[0][1]], code="UNABLE_TO_LOCK_ROW",
                        message="unable to obtain exclusive access to this record")
    sf_ws.settings.salesforce.retry_backoff_seconds = 0.3
    report = sync(sf_ws, pull=False)  # the locked row does not block the others and stays queued
    assert report.pushed is not None and (report.pushed.sent, report.pushed.retry_later) == (2, 1)
    report = sync(sf_ws, pull=False)  # ... but waits out its backoff
    assert report.pushed is not None and report.pushed.sent == 0
    time.sleep(0.35)
    report = sync(sf_ws, pull=False)
    assert report.pushed is not None and report.pushed.sent == 1
    assert [e["code"] for e in open_errors(sf_ws)] == ["SYNC_FAILED"]  # (the expired-session sync, acknowledged
    assert all(emulator.org.records["Lead"][sf]["Nurture_Score__c"] == 5 for _lid, sf in ids)  # by --retry-errors)


def test_leads_no_push_will_send_do_not_keep_the_scheduler_pushing(sf_ws: Workspace, emulator: Emulator) -> None:
    from nurture_tui.salesforce.live import push_due

    sf_ws.settings.salesforce.create_policy = "mql"
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        conn.execute(insert(lead).values(email="wait@example.com", last_name="W", company="C", created_at=now,
                                         updated_at=now))
        conn.execute(update(lead).where(lead.c.email == "wait@example.com").values(score=20))  # dirty, not MQL
    assert sync(sf_ws).ok
    with sf_ws.engine.connect() as conn:
        assert not push_due(conn, 1.0, time.time() + 60)  # nothing left that a push would send
    assert not emulator.org.records["Lead"]
    with write_tx(sf_ws.engine) as conn:  # it qualifies later: created by the next sync
        conn.execute(update(lead).where(lead.c.email == "wait@example.com").values(mql_at=now, status="MQL"))
    report = sync(sf_ws)
    assert report.pushed is not None and report.pushed.created == 1
