"""Issue 19 items 4–5 over real HTTPS with unchanged simple-salesforce: a merge in Salesforce moves the loser's
enrollments, MQL entries and pending pushes to the survivor (never two live enrollments in one sequence), and
the rep's hand-off Task reads the subjects the lead actually received — never template source."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.seeding import publish_definition
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.scoring import service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, enrollment, lead, mql, sequence, sf_lead_sync, template
from nurture_tui.store.tables import outbox as mail_outbox
from nurture_tui.workspace import Workspace

from .sf_support import local_lead, new_lead, sync


def _enrollments(ws: Workspace) -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(enrollment.c.lead_id, enrollment.c.status, enrollment.c.exit_reason,
                                        sequence.c.name).join(sequence, sequence.c.id == enrollment.c.sequence_id)
                                 .order_by(enrollment.c.id)))


def test_a_salesforce_merge_moves_enrollments_mql_entries_and_pending_pushes(
        sf_ws: Workspace, emulator: Emulator) -> None:
    keep_sf = new_lead(emulator, "keep@example.com")
    gone_sf = new_lead(emulator, "gone@example.com")
    assert sync(sf_ws).ok
    keep, gone = local_lead(sf_ws, keep_sf)["id"], local_lead(sf_ws, gone_sf)["id"]
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        for name in ("nurture-a", "nurture-b"):
            publish_definition(conn, {"name": name, "steps": [{"id": "w", "wait": {"duration": "30d"}}]}, now)
        enroll_lead(conn, keep, "nurture-a", now)
        enroll_lead(conn, gone, "nurture-a", now)
        enroll_lead(conn, gone, "nurture-b", now)
        conn.execute(insert(mql).values(lead_id=gone, status="new", score=120, why={"rule": "score ≥ 100"},
                                        created_at=now))
        service.adjust_score(conn, gone, 40, "webinar", now, sf_ws.settings)  # a push still pending for the loser
    emulator.org.merge("Lead", keep_sf, [gone_sf])
    sf_ws.clock.advance(timedelta(minutes=1))
    report = sync(sf_ws)
    assert report.ok, report.error
    assert report.pulled["Lead"].merged == 1
    rows = _enrollments(sf_ws)
    assert all(r.lead_id == keep for r in rows)
    live_a = [r for r in rows if r.name == "nurture-a" and r.status in ("active", "waiting")]
    assert len(live_a) == 1, rows  # no double enrollment
    assert [r.exit_reason for r in rows if r.name == "nurture-a" and r.status == "exited"] == [
        f"merged into lead {keep}"]
    assert [r.status for r in rows if r.name == "nurture-b"] == ["active"]
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(mql.c.lead_id)).scalars().all() == [keep]
        assert conn.execute(select(lead.c.status).where(lead.c.id == gone)).scalar_one() == "Merged"
        assert conn.execute(select(sf_lead_sync.c.lead_id).where(sf_lead_sync.c.lead_id == gone)).first() is None
    # the loser's pending score went to the survivor (the higher score is kept) and out to Salesforce
    assert emulator.org.records["Lead"][keep_sf]["Nurture_Score__c"] == 40


SUBJECT_SOURCE = ("{{ lead.first_name }}, the buyer's guide we wish we had{% if account.name %} for "
                  "{{ account.name }}{% endif %}")
RENDERED = "Ada, the buyer's guide we wish we had for Acme"


def test_the_hand_off_task_shows_rendered_subjects_and_never_template_source(
        sf_ws: Workspace, emulator: Emulator) -> None:
    s = sf_ws.settings
    s.scoring.mql_grade = ""
    sf_id = new_lead(emulator, "ada@acme.example", FirstName="Ada")
    assert sync(sf_ws).ok
    lid = local_lead(sf_ws, sf_id)["id"]
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        publish_definition(conn, {"name": "guide", "steps": [{"id": "w", "wait": {"duration": "30d"}}]}, now)
        tid = int(conn.execute(insert(template).values(
            name="buyers-guide", subject=SUBJECT_SOURCE,
            html='<p>Hi</p><a href="https://acme.example/guide">Get the {% if x %}full{% endif %}guide</a>'
                 '<a href="https://acme.example/roi">Open the ROI calculator</a>')).inserted_primary_key[0])
        seq = conn.execute(select(sequence.c.id).where(sequence.c.name == "guide")).scalar_one()
        oid = int(conn.execute(insert(mail_outbox).values(
            idempotency_key="g1", lead_id=lid, sequence_id=seq, node_id="guide-email", template_id=tid,
            to_email="ada@acme.example", subject=RENDERED, status="sent", headers={}, created_at=now,
            sent_at=now)).inserted_primary_key[0])
        base = {"lead_id": lid, "sequence_id": seq, "template_id": tid, "outbox_id": oid, "meta": {}, "url": None}
        web = {"sequence_id": None, "template_id": None, "outbox_id": None, "node_id": None}
        conn.execute(insert(activity), [
            {**base, "kind": "sent", "node_id": "guide-email", "at": now},
            {**base, "kind": "open", "node_id": "guide-email", "at": now + timedelta(minutes=5)},
            {**base, "kind": "click", "node_id": "guide-email", "url": "https://acme.example/roi",
             "at": now + timedelta(minutes=6)},
            {**web, "lead_id": lid, "kind": "page_view", "url": "https://acme.example/pricing", "meta": {},
             "at": now + timedelta(minutes=7)},
            {**web, "lead_id": lid, "kind": "form", "url": "https://acme.example/demo",
             "meta": {"form": "demo-request"}, "at": now + timedelta(minutes=8)}])
        service.adjust_score(conn, lid, 150, "demo request", now + timedelta(minutes=9), s)
    report = sync(sf_ws)
    assert report.ok, report.error
    (task,) = [t for t in emulator.org.records["Task"].values() if t.get("WhoId") == sf_id
               and t["Subject"].startswith("MQL:")]
    text = task["Description"]
    assert "{%" not in text and "{{" not in text
    assert f"EMAILS RECEIVED (1)\n  {now:%Y-%m-%d %H:%M} {RENDERED}" in text
    assert f"EMAILS OPENED (1)\n  {RENDERED}" in text
    assert "Open the ROI calculator — https://acme.example/roi" in text
    assert f"{now + timedelta(minutes=7):%Y-%m-%d %H:%M} https://acme.example/pricing" in text
    assert "demo-request" in text and "WHY IT QUALIFIED" in text and "path: guide-email" in text
    assert "+150 demo request" in text


def test_a_local_lead_that_qualifies_arrives_in_salesforce_with_its_hand_off_in_one_sync(
        sf_ws: Workspace, emulator: Emulator) -> None:
    s = sf_ws.settings
    s.scoring.mql_grade = ""
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:  # a form fill: nurture knows the lead, Salesforce does not
        lid = int(conn.execute(insert(lead).values(email="form@new.example", first_name="Fay", last_name="Form",
                                                   company="New Co", created_at=now, updated_at=now))
                  .inserted_primary_key[0])
        service.adjust_score(conn, lid, 150, "demo request", now, s)
    report = sync(sf_ws)
    assert report.ok, report.error
    assert report.pushed is not None and report.pushed.created == 1 and report.pushed.deferred == 0
    sf_id = local_lead(sf_ws, next(r["Id"] for r in emulator.org.records["Lead"].values()))["sf_id"]
    rec = emulator.org.records["Lead"][sf_id]
    assert rec["Email"] == "form@new.example" and rec["Nurture_Score__c"] == 150
    assert rec["Nurture_MQL_Status__c"] == "MQL"
    (task,) = [t for t in emulator.org.records["Task"].values() if t.get("WhoId") == sf_id]
    assert task["Subject"].startswith("MQL: Fay Form (New Co)") and "WHY IT QUALIFIED" in task["Description"]
