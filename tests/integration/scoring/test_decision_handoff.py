"""Done-when of the scoring issue: a demo lead that clicks through the decision-stage sequence crosses the
MQL threshold, lands in its rep's queue with the engagement summary, the hand-off is queued in sf_outbox,
and the sync pushes the rep's Task (and the MQL fields) to the Salesforce emulator over real HTTP.

Real parts end to end: the sample `sequences/decision-stage.yaml` applied and published, the engine
running due steps on a VirtualClock, clicks recorded through `engine.events.record_events`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from nurture_tui.activity import ActivityEvent
from nurture_tui.clock import VirtualClock
from nurture_tui.engine.advance import run_due
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.events import record_events
from nurture_tui.salesforce.demo import start_demo_org
from nurture_tui.salesforce.sync import run_sync
from nurture_tui.scoring import grading, mql, service
from nurture_tui.sequences import service as sequences
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import enrollment, lead, sequence, sf_outbox, sync_error, template, user
from nurture_tui.workspace import Workspace

DECISION = Path(__file__).resolve().parents[3] / "sequences" / "decision-stage.yaml"
REP = "rita@corp.example"  # the org's Username too, so the first sync links the local rep to it
PROFILE = {"name": "buyers", "criteria": [
    {"field": "title", "op": "contains", "value": ["vp", "director", "head"], "steps": 3},
    {"field": "industry", "op": "in", "value": ["Software"], "steps": 2},
]}


def _enrollment(ws: Workspace, lead_id: int):
    with ws.engine.connect() as conn:
        return conn.execute(select(enrollment).where(enrollment.c.lead_id == lead_id)).one()


def _run_until(ws: Workspace, clock: VirtualClock, lead_id: int, node: str, max_hours: int = 24 * 14) -> None:
    """Advance the clock hour by hour, running due steps, until the enrollment waits at `node`."""
    for _ in range(max_hours):
        run_due(ws.engine, ws.clock.now, ws.settings)
        row = _enrollment(ws, lead_id)
        if row.node_id == node and row.status == "waiting":
            return
        assert row.status in ("active", "waiting"), f"finished before {node}: {row.status}"
        clock.advance(timedelta(hours=1))
    raise AssertionError(f"never reached {node}")


def _click(ws: Workspace, lead_id: int, seq_id: int, node: str, template_name: str, url: str) -> None:
    """A click as the tracking web app records it: the message's sequence, node and template, the URL."""
    with write_tx(ws.engine) as conn:
        tid = conn.execute(select(template.c.id).where(template.c.name == template_name)).scalar_one()
        record_events(conn, [ActivityEvent(lead_id=lead_id, kind="click", sequence_id=seq_id, node_id=node,
                              template_id=tid, url=url)], ws.clock.now(), ws.settings)


def test_decision_sequence_click_through_hands_off_to_rep(workspace: Workspace, clock: VirtualClock) -> None:
    ws = workspace
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        rep = int(conn.execute(insert(user).values(username=REP, name="Rita Rep", email=REP))
                  .inserted_primary_key[0])
        lid = int(conn.execute(insert(lead).values(
            email="dana@fabrikam.example", first_name="Dana", last_name="Buyer", title="VP Operations",
            company="Fabrikam", industry="Software", country="United States", timezone="America/New_York",
            stage="decision", owner_id=rep, created_at=now, updated_at=now)).inserted_primary_key[0])
        grading.save_profiles(conn, [grading.parse_profile(PROFILE, "profile")])
        grading.regrade(conn, [lid], now, ws.settings)
        service.adjust_score(conn, lid, 45, "webinar attended", now, ws.settings)  # earlier engagement
        sequences.apply_file(conn, DECISION, user="admin", now=now)
        sequences.publish(conn, "decision-stage", user="admin", now=now)
        seq_id = conn.execute(select(sequence.c.id).where(sequence.c.name == "decision-stage")).scalar_one()
        assert enroll_lead(conn, lid, "decision-stage", now) is not None

    _run_until(ws, clock, lid, "read-case")
    _click(ws, lid, seq_id, "case-study", "ds-case-study", "https://northwind.example/customers/fabrikam")
    _run_until(ws, clock, lid, "used-roi")
    _click(ws, lid, seq_id, "roi", "ds-roi", "https://northwind.example/roi")
    for _ in range(48):
        run_due(ws.engine, ws.clock.now, ws.settings)
        if _enrollment(ws, lid).status not in ("active", "waiting"):
            break
        clock.advance(timedelta(hours=1))

    with ws.engine.connect() as conn:
        assert _enrollment(ws, lid).status in ("done", "exited")
        entries = mql.list_queue(conn, ws.clock.now(), ws.settings, rep=REP)
        assert [e.lead_id for e in entries] == [lid], "the lead is in its rep's queue"
        e = entries[0]
        assert e.score >= 100 and e.grade == "B-" and e.why["rule"] == "score ≥ 100 AND grade ≥ B-"
        assert e.why["assigned"] == "owner"
        for expected in ("decision-stage", "Read the Fabrikam case study — https://northwind.example/customers/fabrikam",
                         "Open the ROI calculator — https://northwind.example/roi", "EMAILS OPENED",
                         "webinar attended", "sequence decision-stage: mql-points", "WHY IT QUALIFIED"):
            assert expected in e.summary, expected
        tasks = conn.execute(select(sf_outbox.c.payload).where(sf_outbox.c.lead_id == lid,
                                                               sf_outbox.c.sobject == "Task")).scalars().all()
        handoff = [t for t in tasks if t["Subject"].startswith("MQL: Dana Buyer (Fabrikam)")]
        assert len(handoff) == 1 and handoff[0]["Description"] == e.summary and handoff[0]["owner"] == rep
        fields = conn.execute(select(sf_outbox.c.payload).where(sf_outbox.c.lead_id == lid,
                                                                sf_outbox.c.sobject == "Lead")).scalars().all()
        assert {"mql_status": "MQL", "score": round(e.score), "grade": "B-", "owner": rep} in fields
        status = conn.execute(select(lead.c.status, lead.c.mql_at).where(lead.c.id == lid)).one()
        assert status.status == "MQL" and status.mql_at is not None

    # The sync pushes the hand-off to the (emulated) org: the rep's Task with the summary, the MQL fields.
    emu = start_demo_org(ws)
    try:
        report = run_sync(ws)
        assert report.ok, report.error
        # everything lands, including the sequence's campaign step (the demo org mirrors its campaigns)
        with ws.engine.connect() as conn:
            errs = conn.execute(select(sync_error.c.sobject, sync_error.c.message)).all()
        assert report.pushed is not None and report.pushed.failed == 0, errs
        with ws.engine.connect() as conn:
            sf_lead = conn.execute(select(lead.c.sf_id).where(lead.c.id == lid)).scalar_one()
            sf_rep = conn.execute(select(user.c.sf_id).where(user.c.id == rep)).scalar_one()
        tasks = [t for t in emu.org.records["Task"].values() if t.get("WhoId") == sf_lead]
        mql_tasks = [t for t in tasks if t["Subject"].startswith("MQL: Dana Buyer")]
        assert len(mql_tasks) == 1
        assert mql_tasks[0]["Description"] == e.summary and mql_tasks[0]["OwnerId"] == sf_rep
        sf_fields = emu.org.records["Lead"][sf_lead]
        assert sf_fields["Nurture_MQL_Status__c"] == "MQL" and sf_fields["Nurture_Grade__c"] == "B-"
        assert sf_fields["OwnerId"] == sf_rep
    finally:
        emu.stop()
