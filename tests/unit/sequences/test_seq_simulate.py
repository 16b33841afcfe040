"""The simulator: a lead's timeline (windows, holidays, caps, branches, outcomes, subjects) and a segment
sample's reach per node — and that neither writes anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from seq_support import SAMPLES, add_account, add_lead, row_counts
from sqlalchemy import insert, update

from nurture_tui.errors import NotFoundError, ValidationError
from nurture_tui.sequences import service, simulate
from nurture_tui.sequences.model import choose_arm
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead, outbox
from nurture_tui.workspace import Workspace

NY = ZoneInfo("America/New_York")
SAMPLE = {p.stem: p for p in SAMPLES}


def setup_welcome(ws: Workspace, **lead_fields: object) -> int:
    with write_tx(ws.engine) as conn:
        service.apply_file(conn, SAMPLE["welcome"], user="t", now=ws.clock.now())
        service.publish(conn, "welcome", user="t", now=ws.clock.now())
        acct = add_account(conn, name="Acme Corp", timezone="Europe/Berlin")
        fields = {"timezone": "America/New_York", "country": "US", "industry": "Software", "stage": "awareness",
                  "account_id": acct, **lead_fields}
        return add_lead(conn, "dana@acme.example", ws.clock.now(), **fields)


def run(ws: Workspace, name: str = "welcome", start: datetime | None = None, **kw: object) -> simulate.LeadSimulation:
    with ws.engine.connect() as conn:
        return simulate.simulate_lead(conn, name, "Dana@Acme.example", settings=ws.settings,
                                      start=start or ws.clock.now(), **kw)  # type: ignore[arg-type]


def test_timeline_applies_windows_holidays_and_explains_branches(workspace: Workspace) -> None:
    setup_welcome(workspace)
    sim = run(workspace, start=datetime(2026, 12, 24, 16, 30, tzinfo=NY))
    assert (sim.timezone, sim.country, sim.outcome, sim.sends) == ("America/New_York", "US", "done", 3)
    got = [(e.local, e.node_id, e.text, e.why) for e in sim.events]
    assert got[1] == ("Thu 2026-12-24 16:30 EST", "welcome-email",
                      "sends welcome-hello: “Welcome to Northwind, Dana 👋”", "")
    assert got[2][:3] == ("Sun 2026-12-27 16:30 EST", "opened-welcome", "waits 3d for open of welcome-email: no")
    assert got[2][3] == "no outcome given: assumes no engagement"
    assert got[3][:3] == ("Mon 2026-12-28 09:00 EST", "welcome-resend",
                          "sends welcome-resend: “Dana, quick question about your pipeline”")
    assert got[3][3].startswith("deferred: outside the send window (mon/tue/wed/thu/fri 09:00–17:00)")
    assert got[5][1:3] == ("engaged", "branch: no")
    assert got[5][3] == ("rule on the lead's data: score ≥ 30 OR clicked any email within 14d OR "
                         "submitted a form within 14d")
    assert got[6][:2] == ("Mon 2027-01-04 09:00 EST", "best-of-blog")
    assert got[6][3].startswith("deferred: 2027-01-01 is a holiday in US")
    assert got[-1][2] == "reaches the end of the sequence"
    assert sim.lines()[0] == "welcome (v1) for dana@acme.example — times in America/New_York, holidays: US"


def test_given_outcomes_and_real_data_branches(workspace: Workspace) -> None:
    lead_id = setup_welcome(workspace)
    start = datetime(2026, 3, 2, 10, 0, tzinfo=NY)  # Monday
    sim = run(workspace, start=start, outcomes="yes,yes")
    texts = [(e.node_id, e.text) for e in sim.events]
    assert ("opened-welcome", "waits for open of welcome-email: yes") in texts
    assert ("getting-started", "sends welcome-getting-started: “Your first 30 minutes with Northwind”") in texts
    assert ("engaged", "branch: yes") in texts and sim.outcome == "exited"
    assert texts[-1] == ("welcome-done", "exits: moved to consideration nurture")
    # caps: one a day, so the second email waits for the next day
    sends = [e for e in sim.events if e.kind == "send"]
    assert sends[1].at - sends[0].at == timedelta(days=1) and "frequency cap reached" in sends[1].why

    # the branch on real data: a recent click makes the lead "engaged"
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(activity).values(lead_id=lead_id, kind="click", at=start - timedelta(days=1)))
    sim = run(workspace, start=start, outcomes="engaged=auto,opened-welcome=no")
    branch = next(e for e in sim.events if e.node_id == "engaged")
    assert branch.text == "branch: yes" and branch.why.startswith("rule on the lead's data")


def test_goal_met_by_real_data_ends_the_run(workspace: Workspace) -> None:
    setup_welcome(workspace, stage="decision")
    sim = run(workspace)
    assert sim.outcome == "goal" and sim.events[-1].kind == "goal"
    assert sim.events[-1].why.startswith("stage in")


def test_caps_count_the_leads_real_recent_sends(workspace: Workspace) -> None:
    lead_id = setup_welcome(workspace)
    start = datetime(2026, 3, 4, 10, 0, tzinfo=NY)
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(outbox).values(idempotency_key="other", lead_id=lead_id, to_email="dana@acme.example",
                                           created_at=start - timedelta(hours=2)))
    first = next(e for e in run(workspace, start=start).events if e.kind == "send")
    assert first.at == datetime(2026, 3, 5, 9, 0, tzinfo=NY)  # 24h after 08:00 → next day at the opening
    assert "frequency cap reached" in first.why


def test_suppressed_lead_skips_sends(workspace: Workspace) -> None:
    setup_welcome(workspace, opted_out=True)
    sim = run(workspace)
    sends = [e for e in sim.events if e.kind == "send"]
    assert sends and all(e.text.startswith("skips") and "suppressed for 'marketing'" in e.text for e in sends)
    assert sim.sends == 0


def test_split_arm_is_deterministic_and_matches_the_engine(workspace: Workspace) -> None:
    with write_tx(workspace.engine) as conn:
        service.apply_file(conn, SAMPLE["cold-lead-reengagement"], user="t", now=workspace.clock.now())
        lead_id = add_lead(conn, "dana@acme.example", workspace.clock.now(), timezone="Europe/London")
    with workspace.engine.connect() as conn:
        sim = simulate.simulate_lead(conn, "cold-lead-reengagement", "dana@acme.example", settings=workspace.settings,
                                     start=workspace.clock.now(), draft=True)
        node = simulate._compiled(conn, "cold-lead-reengagement", True)[0].nodes["opener-test"]
    split = next(e for e in sim.events if e.node_id == "opener-test")
    assert split.text == f"split: arm {choose_arm(node, lead_id)}"
    assert sim.version == "draft"
    counts = {"curiosity": 0, "value": 0}
    for lid in range(1, 2001):
        counts[choose_arm(node, lid)] += 1
    assert 900 < counts["curiosity"] < 1100  # 50/50 weights
    executors = pytest.importorskip("nurture_tui.engine.executors")
    assert all(executors.split_arm(lid, node)[0] == choose_arm(node, lid) for lid in range(1, 500))


def test_errors_are_clear(workspace: Workspace) -> None:
    with write_tx(workspace.engine) as conn:
        service.apply_file(conn, SAMPLE["welcome"], user="t", now=workspace.clock.now())
        add_lead(conn, "dana@acme.example", workspace.clock.now())
    with pytest.raises(NotFoundError, match="not published yet"):
        run(workspace)
    with pytest.raises(NotFoundError, match="no lead with that email"), workspace.engine.connect() as conn:
        simulate.simulate_lead(conn, "welcome", "ghost@x.example", settings=workspace.settings,
                               start=workspace.clock.now(), draft=True)
    with pytest.raises(ValidationError, match="expected yes or no"):
        run(workspace, draft=True, outcomes="maybe")


def test_every_sample_simulates(samples_ws: Workspace) -> None:
    ws = samples_ws
    with write_tx(ws.engine) as conn:
        acct = add_account(conn, name="Initech", named_account=True, timezone="America/Chicago", industry="Fintech")
        add_lead(conn, "dana@acme.example", ws.clock.now(), account_id=acct, persona="economic_buyer",
                 stage="consideration", custom={"renewal_days": 80}, country="US", timezone="America/Chicago")
        for path in SAMPLES:
            name = service.apply_file(conn, path, user="t", now=ws.clock.now()).name
            service.publish(conn, name, user="t", now=ws.clock.now())
    for path in SAMPLES:
        with ws.engine.connect() as conn:
            sim = simulate.simulate_lead(conn, path.stem, "dana@acme.example", settings=ws.settings,
                                         start=ws.clock.now(), outcomes="auto")
        assert sim.outcome in ("done", "exited", "goal"), (path.name, sim.lines())
        assert sim.sends >= 1 or sim.outcome == "goal", path.name
        assert all("not renderable" not in e.text for e in sim.events), sim.lines()


def _seed_abm(ws: Workspace) -> list[int]:
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        from seq_support import add_segment

        add_segment(conn, "named-accounts", {"field": "account.named_account", "eq": True})
        named = add_account(conn, name="Initech", named_account=True)
        other = add_account(conn, name="Globex", named_account=False)
        ids = []
        for i in range(40):
            persona = "economic_buyer" if i % 4 == 0 else "practitioner"
            ids.append(add_lead(conn, f"n{i}@initech.example", now, account_id=named, persona=persona,
                                title="Engineer"))
        for i in range(10):
            add_lead(conn, f"o{i}@globex.example", now, account_id=other, persona="economic_buyer")
        # observed engagement: 20 emails sent, 5 clicks (25%), 2 page views on customer stories
        for i in range(20):
            conn.execute(insert(activity).values(lead_id=ids[i], kind="sent", at=now - timedelta(days=3)))
        for i in range(5):
            conn.execute(insert(activity).values(lead_id=ids[i], kind="click", at=now - timedelta(days=2),
                                                 url="https://northwind.example/pricing"))
        for i in range(2):
            conn.execute(insert(activity).values(lead_id=ids[i], kind="page_view", at=now - timedelta(days=2),
                                                 url="https://northwind.example/customers/contoso"))
        conn.execute(insert(activity).values(lead_id=ids[0], kind="click", at=now, bot=True, url="https://x"))
        service.apply_file(conn, SAMPLE["abm-named-accounts"], user="t", now=now)
        service.publish(conn, "abm-named-accounts", user="t", now=now)
    return ids


def test_segment_sample_predicts_reach_from_real_data(workspace: Workspace) -> None:
    _seed_abm(workspace)
    with workspace.engine.connect() as conn:
        sim = simulate.simulate_segment(conn, "abm-named-accounts", "named-accounts", settings=workspace.settings,
                                        now=workspace.clock.now(), n=1000)
    reach = {n.node_id: n for n in sim.nodes}
    assert (sim.members, sim.sample) == (40, 40)
    assert reach["abm-campaign"].reach == 40
    assert reach["exec-brief"].reach == 10 and reach["practitioner-playbook"].reach == 30  # persona data
    p = 1 - (1 - 5 / 20) * (1 - 2 / 20)  # click 25% observed, page views on */customers/* 10% observed
    assert reach["abm-points"].reach == pytest.approx(40 * p)
    assert reach["abm-peer-proof"].reach == pytest.approx(40 * (1 - p))
    assert reach["abm-gap"].reach == pytest.approx(40)
    assert "observed" in reach["account-engaged"].basis
    rsvp = reach["abm-rsvp"].basis
    assert "form 0.0% observed" in rsvp and "reply 0.0% observed" in rsvp
    assert reach["abm-tag"].reach == pytest.approx(40)
    assert sim.finished == pytest.approx(40)
    assert sim.lines()[0].startswith("abm-named-accounts (v1) — sample of 40 of 40 leads")


def test_segment_sample_drops_leads_meeting_goal_or_exit_rules(workspace: Workspace) -> None:
    ids = _seed_abm(workspace)
    with write_tx(workspace.engine) as conn:
        conn.execute(update(lead).where(lead.c.id == ids[1]).values(opted_out=True))  # exit_when: opted out
        conn.execute(insert(activity).values(lead_id=ids[2], kind="meeting", at=workspace.clock.now()))  # goal
    with workspace.engine.connect() as conn:
        sim = simulate.simulate_segment(conn, "abm-named-accounts", "named-accounts", settings=workspace.settings,
                                        now=workspace.clock.now())
    assert sim.left_at_entry == 2
    assert {n.node_id: n.reach for n in sim.nodes}["abm-campaign"] == 38
    assert sim.lines()[1] == "2 already meet the goal or an exit rule and leave at once"


def test_naive_start_is_the_leads_local_time(workspace: Workspace) -> None:
    setup_welcome(workspace)
    sim = run(workspace, start=datetime(2026, 3, 4, 10, 0))  # no offset: 10:00 in New York
    assert sim.events[0].local == "Wed 2026-03-04 10:00 EST"


def test_segment_sample_is_spread_and_bounded(workspace: Workspace) -> None:
    _seed_abm(workspace)
    with workspace.engine.connect() as conn:
        sim = simulate.simulate_segment(conn, "abm-named-accounts", "named-accounts", settings=workspace.settings,
                                        now=workspace.clock.now(), n=8)
    assert sim.sample == 8 and sim.members == 40
    assert {n.node_id: n.reach for n in sim.nodes}["abm-campaign"] == 8


def test_simulations_write_nothing(workspace: Workspace) -> None:
    _seed_abm(workspace)
    with write_tx(workspace.engine) as conn:
        service.apply_file(conn, SAMPLE["welcome"], user="t", now=workspace.clock.now())
        service.publish(conn, "welcome", user="t", now=workspace.clock.now())
    with workspace.engine.connect() as conn:
        before = row_counts(conn)
    with workspace.engine.connect() as conn:
        simulate.simulate_lead(conn, "welcome", "n0@initech.example", settings=workspace.settings,
                               start=datetime(2026, 3, 6, 16, 0, tzinfo=UTC), outcomes="yes,no")
        simulate.simulate_lead(conn, "abm-named-accounts", "n1@initech.example", settings=workspace.settings,
                               start=workspace.clock.now())
        simulate.simulate_segment(conn, "abm-named-accounts", "named-accounts", settings=workspace.settings,
                                  now=workspace.clock.now())
        conn.commit()  # even committing the simulation's connection must not persist anything
    with workspace.engine.connect() as conn:
        assert row_counts(conn) == before


def test_consideration_nurture_paths(workspace: Workspace) -> None:
    """Six emails over five weeks; a high-intent click fast-tracks; no opens → re-engagement, then out."""
    with write_tx(workspace.engine) as conn:
        service.apply_file(conn, SAMPLE["consideration-nurture"], user="t", now=workspace.clock.now())
        add_lead(conn, "dana@acme.example", workspace.clock.now(), timezone="America/New_York", country="US")
    start = datetime(2026, 3, 2, 9, 0, tzinfo=NY)

    def sends(sim: simulate.LeadSimulation) -> list[str]:
        return [e.node_id or "" for e in sim.events if e.kind == "send"]

    base = run(workspace, "consideration-nurture", start=start, draft=True, outcomes="opened-1=yes")
    emails = [e for e in base.events if e.kind == "send"]
    assert sends(base) == ["email-1", "email-2", "email-3", "email-4", "email-5", "email-6"]
    assert timedelta(days=34) <= emails[-1].at - emails[0].at <= timedelta(days=36)
    assert base.events[-1].text == "exits: completed consideration nurture"

    fast = run(workspace, "consideration-nurture", start=start, draft=True, outcomes="opened-1=yes,intent-1=yes")
    assert sends(fast) == ["email-1", "email-2", "fast-track"]
    assert [e.node_id for e in fast.events if e.kind == "action"] == [
        "flag-intent-1", "intent-points", "to-decision", "tell-rep"]

    cold = run(workspace, "consideration-nurture", start=start, draft=True, outcomes="opened-1=no,reengaged=no")
    assert sends(cold) == ["email-1", "reengage"]
    assert cold.events[-1].text == "exits: no opens in consideration nurture"
    assert any(e.node_id == "to-cold" and e.text == "enrolls in cold-lead-reengagement" for e in cold.events)
