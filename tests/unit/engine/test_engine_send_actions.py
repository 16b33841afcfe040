"""send (render, suppression skip/exit, window, caps), branch, goal/exit rules, actions — both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine_helpers import make_leads, publish, run, state, tx
from sqlalchemy import func, insert, select

from nurture_tui.activity import ActivityEvent
from nurture_tui.clock import VirtualClock
from nurture_tui.engine.enroll import enroll_lead, entry_sweep
from nurture_tui.engine.events import record_events
from nurture_tui.engine.node_stats import node_counts
from nurture_tui.mail.suppression import suppress
from nurture_tui.mail.templates import upsert_template
from nurture_tui.scoring import grading
from nurture_tui.store.tables import (
    activity,
    campaign_member,
    lead,
    lead_tag,
    outbox,
    rep_group,
    sf_outbox,
    user,
    webhook_outbox,
)
from nurture_tui.workspace import Workspace


def _template(conn: Any, now: Any, name: str = "welcome") -> None:
    upsert_template(conn, name=name, subject="Hi {{ lead.first_name }}", html="<p>Hello {{ lead.first_name }}</p>",
                    user="test", now=now)


def _count(ws: Workspace, table: Any, *where: Any) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


SEND_WAIT = {"name": "drip", "steps": [
    {"id": "s1", "send": {"template": "welcome"}},
    {"id": "w1", "wait": {"duration": "2d"}},
    {"id": "s2", "send": {"template": "welcome"}},
]}


def test_send_renders_outbox_activity_and_advances(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    with tx(workspace) as conn:
        _template(conn, now)
        vid = publish(conn, SEND_WAIT, now)
        leads = make_leads(conn, 3, now)
        eids = [enroll_lead(conn, lid, "drip", now) for lid in leads]
    assert run(workspace) == 3  # one send step each (parking at the wait is part of it)
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.subject, outbox.c.idempotency_key, outbox.c.status)
                            .order_by(outbox.c.id)).all()
    assert [r.subject for r in rows] == ["Hi Lead0", "Hi Lead1", "Hi Lead2"]
    assert rows[0].idempotency_key == f"e{eids[0]}:s1:0" and rows[0].status == "queued"
    assert _count(workspace, activity, activity.c.kind == "sent") == 3
    assert state(workspace, eids[0]).node_id == "w1"
    assert run(workspace) == 0  # nothing due: no duplicate sends
    clock.advance(timedelta(days=2))
    run(workspace)
    assert _count(workspace, outbox) == 6
    assert {state(workspace, e).status for e in eids} == {"done"}
    with workspace.engine.connect() as conn:
        counts = node_counts(conn, [vid])
    assert counts["s1"].entered == 3 and counts["s2"].entered == 3 and counts["w1"].waiting == 0


def test_suppressed_skip_or_exit(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    with tx(workspace) as conn:
        _template(conn, now)
        publish(conn, SEND_WAIT, now)
        publish(conn, {**SEND_WAIT, "name": "strict", "suppressed": "exit"}, now)
        (lid,) = make_leads(conn, 1, now)
        e1 = enroll_lead(conn, lid, "drip", now)
        e2 = enroll_lead(conn, lid, "strict", now)
        email = conn.execute(select(lead.c.email).where(lead.c.id == lid)).scalar_one()
        suppress(conn, email=email, lead_id=lid, reason="manual", detail="test", now=now)
    run(workspace)
    assert _count(workspace, outbox) == 0
    assert state(workspace, e1).node_id == "w1"  # skipped the send, carried on
    st = state(workspace, e2)
    assert (st.status, st.exit_reason) == ("exited", "suppressed")


def test_the_programs_category_governs_its_sends_unless_a_step_names_one(
        workspace: Workspace, clock: VirtualClock) -> None:
    from nurture_tui.mail.subscriptions import set_category

    program = {"name": "news", "category": "newsletter", "steps": [
        {"id": "s1", "send": {"template": "welcome"}},
        {"id": "s2", "send": {"template": "welcome", "category": "product"}}]}
    now = clock.now()
    with tx(workspace) as conn:
        _template(conn, now)
        publish(conn, program, now)
        (lid,) = make_leads(conn, 1, now)
        set_category(conn, lid, "newsletter", False, now)  # opted out of the program's category only
        enroll_lead(conn, lid, "news", now)
    run(workspace)
    with workspace.engine.connect() as conn:
        sent = conn.execute(select(outbox.c.node_id, outbox.c.category)).all()
    assert [tuple(r) for r in sent] == [("s2", "product")]  # s1 (newsletter) skipped, s2 names its own


def test_send_window_defers_and_caps_defer_never_drop(workspace: Workspace, clock: VirtualClock) -> None:
    windowed = {**SEND_WAIT, "name": "windowed",
                "send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "12:00",
                                "holidays": False}}
    capped = {"name": "capped", "caps": {"per_day": 1}, "steps": [
        {"id": "a", "send": {"template": "welcome"}}, {"id": "b", "send": {"template": "welcome"}}]}
    now = clock.now()  # Monday 09:00 UTC
    with tx(workspace) as conn:
        _template(conn, now)
        publish(conn, windowed, now)
        publish(conn, capped, now)
        (l1,) = make_leads(conn, 1, now, timezone="Europe/Berlin")  # 10:00 local: inside
        (l2,) = make_leads(conn, 1, now, timezone="America/New_York")  # 04:00 local: before the window
        (l3,) = make_leads(conn, 1, now)
        e1 = enroll_lead(conn, l1, "windowed", now)
        e2 = enroll_lead(conn, l2, "windowed", now)
        e3 = enroll_lead(conn, l3, "capped", now)
    run(workspace)
    assert state(workspace, e1).node_id == "w1"
    st2 = state(workspace, e2)
    assert (st2.node_id, st2.status, st2.wait_for["deferred"]) == ("s1", "waiting", "window")
    assert st2.due_at.isoformat() == "2026-03-02T15:00:00+00:00"  # 10:00 EST
    st3 = state(workspace, e3)
    assert (st3.node_id, st3.status, st3.wait_for["deferred"]) == ("b", "waiting", "cap")
    assert st3.due_at == now + timedelta(days=1)
    clock.set(st2.due_at)
    run(workspace)
    assert state(workspace, e2).node_id == "w1"
    clock.set(now + timedelta(days=1))
    run(workspace)
    assert state(workspace, e3).status == "done"
    assert _count(workspace, outbox, outbox.c.lead_id == l3) == 2


def test_branch_goal_and_exit_rules(workspace: Workspace, clock: VirtualClock) -> None:
    definition = {"name": "br", "goal": {"field": "stage", "op": "eq", "value": "decision"},
                  "exit_when": [{"field": "industry", "op": "eq", "value": "Banned"}],
                  "steps": [
                      {"id": "b", "branch": {"rule": {"field": "country", "op": "eq", "value": "DE"}},
                       "yes": [{"id": "de", "wait": {"duration": "1d"}}],
                       "no": [{"id": "other", "wait": {"duration": "1d"}}]},
                  ]}
    now = clock.now()
    with tx(workspace) as conn:
        vid = publish(conn, definition, now)
        l_de, l_fr, l_goal = make_leads(conn, 3, now, country="DE")
        conn.execute(lead.update().where(lead.c.id == l_fr).values(country="FR"))
        eids = [enroll_lead(conn, x, "br", now) for x in (l_de, l_fr, l_goal)]
    run(workspace)
    assert [state(workspace, e).node_id for e in eids] == ["de", "other", "de"]
    with tx(workspace) as conn:  # the lead reaches the goal: checked when the next event arrives
        conn.execute(lead.update().where(lead.c.id == l_goal).values(stage="decision"))
        record_events(conn, [ActivityEvent(lead_id=l_goal, kind="page_view", url="https://x.test/")],
                      clock.now(), workspace.settings)
        conn.execute(lead.update().where(lead.c.id == l_fr).values(industry="Banned"))
    assert state(workspace, eids[2]).status == "goal"
    clock.advance(timedelta(days=1))
    run(workspace)  # exit rule checked at the step
    st = state(workspace, eids[1])
    assert (st.status, st.exit_reason) == ("exited", "exit_when[0]")
    assert state(workspace, eids[0]).status == "done"
    with workspace.engine.connect() as conn:
        counts = node_counts(conn, [vid])
    assert (counts["b"].yes, counts["b"].no) == (2, 1)
    assert counts["de"].goal == 1 and counts["other"].exited == 1


def test_actions(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    definition = {"name": "acts", "steps": [
        {"id": "f", "action": {"type": "update_field", "field": "title", "value": "CTO"}},
        {"id": "c", "action": {"type": "update_field", "field": "custom.fav_color", "value": "green"}},
        {"id": "st", "action": {"type": "set_stage", "value": "consideration"}},
        {"id": "sc", "action": {"type": "adjust_score", "points": 15}},
        {"id": "camp", "action": {"type": "add_to_campaign", "campaign": "Webinar", "status": "Invited"}},
        {"id": "own", "action": {"type": "assign_owner", "owner": "group:emea"}},
        {"id": "task", "action": {"type": "create_task", "subject": "Call them"}},
        {"id": "note", "action": {"type": "notify_rep"}},
        {"id": "tag", "action": {"type": "add_tag", "tag": "vip"}},
        {"id": "untag", "action": {"type": "remove_tag", "tag": "cold"}},
        {"id": "hook", "action": {"type": "webhook", "url": "https://hooks.example.com/x"}},
        {"id": "more", "action": {"type": "enroll", "sequence": "next"}},
        {"id": "bad", "action": {"type": "assign_owner", "owner": "nobody"}},
    ]}
    with tx(workspace) as conn:
        publish(conn, definition, now)
        publish(conn, {"name": "next", "steps": [{"id": "w", "wait": {"duration": "1d"}}]}, now)
        u1 = conn.execute(insert(user).values(username="ann", email="ann@example.com")).inserted_primary_key[0]
        u2 = conn.execute(insert(user).values(username="bob", email="bob@example.com")).inserted_primary_key[0]
        conn.execute(insert(rep_group).values(name="emea", member_ids=[u1, u2], rr_cursor=0, rules={}))
        grading.save_profiles(conn, [grading.parse_profile({"name": "execs", "criteria": [
            {"field": "title", "op": "contains", "value": "CTO", "steps": 6}]}, "p")])
        l1, l2 = make_leads(conn, 2, now)
        conn.execute(insert(lead_tag).values(lead_id=l1, tag="cold"))
        e1 = enroll_lead(conn, l1, "acts", now)
        enroll_lead(conn, l2, "acts", now)
    run(workspace)
    with workspace.engine.connect() as conn:
        row = conn.execute(select(lead).where(lead.c.id == l1)).one()
        owners = conn.execute(select(lead.c.owner_id).order_by(lead.c.id)).scalars().all()
        tags = conn.execute(select(lead_tag.c.tag).where(lead_tag.c.lead_id == l1)).scalars().all()
        sf = conn.execute(select(sf_outbox.c.sobject, func.count()).group_by(sf_outbox.c.sobject)).all()
        notify = conn.execute(select(outbox.c.to_email, outbox.c.category)).all()
    assert row.title == "CTO" and row.custom == {"fav_color": "green"} and row.stage == "consideration"
    assert row.grade == "B"  # D + 6 thirds: the fit grade follows the title change
    assert row.score > 0
    assert owners == [u1, u2]  # round robin
    assert tags == ["vip"]
    assert dict(sf) == {"Lead": 4, "Task": 2, "CampaignMember": 2}  # stage + owner per lead
    assert sorted(notify) == [("ann@example.com", "transactional"), ("bob@example.com", "transactional")]
    assert _count(workspace, campaign_member) == 2 and _count(workspace, webhook_outbox) == 2
    st = state(workspace, e1)
    assert st.status == "exited" and "nobody" in st.exit_reason
    assert _count(workspace, activity, activity.c.kind == "stage_change") == 2


def test_entry_sweep_and_event_entry(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    with tx(workspace) as conn:
        publish(conn, {"name": "seg", "entry": {"type": "segment", "rule": {"field": "country", "op": "eq",
                                                                              "value": "DE"}},
                       "steps": [{"id": "w", "wait": {"duration": "1d"}}]}, now)
        publish(conn, {"name": "ev", "reentry": "anytime",
                       "entry": {"type": "event", "event": {"kind": "form", "form": "demo-*"}},
                       "steps": [{"id": "w", "wait": {"duration": "1d"}}]}, now)
        de = make_leads(conn, 3, now, country="DE")
        (fr,) = make_leads(conn, 1, now, country="FR")
        assert entry_sweep(conn, now) == 3
        assert entry_sweep(conn, now) == 0
        conn.execute(lead.update().where(lead.c.id == fr).values(country="DE"))
        record_events(conn, [ActivityEvent(lead_id=fr, kind="form", meta={"form": "demo-request"},
                              dedupe_key="sub-1")], now, workspace.settings)
        record_events(conn, [ActivityEvent(lead_id=fr, kind="form", meta={"form": "demo-request"},
                              dedupe_key="sub-1")], now, workspace.settings)  # a replay
        record_events(conn, [ActivityEvent(lead_id=de[0], kind="form", meta={"form": "newsletter"})],
                      now, workspace.settings)
    from nurture_tui.store.tables import enrollment, sequence

    with workspace.engine.connect() as conn:
        per = dict(conn.execute(select(sequence.c.name, func.count()).join(
            enrollment, enrollment.c.sequence_id == sequence.c.id).group_by(sequence.c.name)).all())
    assert per == {"seg": 4, "ev": 1}


def test_window_skip_policy_and_holidays(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()  # Monday 2026-03-02 09:00 UTC
    skip = {**SEND_WAIT, "name": "skipper",
            "send_window": {"start": "10:00", "end": "12:00", "outside": "skip", "holidays": False}}
    holiday = {**SEND_WAIT, "name": "hol", "send_window": {"start": "00:00", "end": "23:59", "holidays": True}}
    with tx(workspace) as conn:
        _template(conn, now)
        publish(conn, skip, now)
        publish(conn, holiday, now)
        (l1,) = make_leads(conn, 1, now)  # UTC: 09:00 is outside 10-12 → skipped, not deferred
        (l2,) = make_leads(conn, 1, now, country="US")
        e1 = enroll_lead(conn, l1, "skipper", now)
    run(workspace)
    st = state(workspace, e1)
    assert st.node_id == "w1" and _count(workspace, outbox, outbox.c.lead_id == l1) == 0
    clock.set(datetime(2026, 12, 25, 12, 0, tzinfo=UTC))  # Christmas (a Friday): closed in the US
    with tx(workspace) as conn:
        e2 = enroll_lead(conn, l2, "hol", clock.now())
    run(workspace)
    st2 = state(workspace, e2)
    assert (st2.node_id, st2.status) == ("s1", "waiting")
    assert st2.due_at.date().isoformat() == "2026-12-28"  # next open weekday after the holiday weekend


def test_branch_on_saved_segment_and_wait_for_click_on_send_step(workspace: Workspace, clock: VirtualClock) -> None:
    from nurture_tui.segments.service import save_segment

    definition = {"name": "combo", "steps": [
        {"id": "mail", "send": {"template": "welcome"}},
        {"id": "clicked", "wait_for": {"events": [{"kind": "click", "node": "mail"}], "window": "2d"},
         "yes": [{"id": "is-de", "branch": {"segment": "Germans"},
                  "yes": [{"id": "de", "exit": {"reason": "de"}}], "no": [{"id": "nde", "exit": {"reason": "other"}}]}],
         "no": [{"id": "cold", "exit": {"reason": "cold"}}]},
    ]}
    now = clock.now()
    with tx(workspace) as conn:
        _template(conn, now)
        save_segment(conn, "Germans", {"field": "country", "op": "eq", "value": "DE"}, user="t", now=now)
        vid = publish(conn, definition, now)
        l_de, l_other = make_leads(conn, 2, now, country="DE")
        conn.execute(lead.update().where(lead.c.id == l_other).values(country="FR"))
        e_de = enroll_lead(conn, l_de, "combo", now)
        e_other = enroll_lead(conn, l_other, "combo", now)
    run(workspace)
    with tx(workspace) as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.lead_id, outbox.c.template_id)).all()
        for oid, lid, tid in rows:  # both click the email that step "mail" sent; a click elsewhere doesn't count
            record_events(conn, [ActivityEvent(lead_id=lid, kind="click", url="https://example.com/x", outbox_id=oid,
                                  template_id=tid, sequence_id=None, node_id="mail")],
                          clock.now(), workspace.settings)
    assert state(workspace, e_de).status == "waiting"  # sequence_id missing: not this sequence's send
    with tx(workspace) as conn:
        seq_id = state(workspace, e_de).sequence_id
        for oid, lid, tid in rows:
            record_events(conn, [ActivityEvent(lead_id=lid, kind="click", url="https://example.com/x", outbox_id=oid,
                                  template_id=tid, sequence_id=seq_id, node_id="mail")],
                          clock.now(), workspace.settings)
    run(workspace)
    assert state(workspace, e_de).exit_reason == "de"
    assert state(workspace, e_other).exit_reason == "other"
    with workspace.engine.connect() as conn:
        counts = node_counts(conn, [vid])
    assert (counts["clicked"].yes, counts["is-de"].yes, counts["is-de"].no) == (2, 1, 1)


def test_paused_sequence_holds_its_leads(workspace: Workspace, clock: VirtualClock) -> None:
    from nurture_tui.store.tables import sequence

    now = clock.now()
    with tx(workspace) as conn:
        _template(conn, now)
        publish(conn, SEND_WAIT, now)
        (lid,) = make_leads(conn, 1, now)
        eid = enroll_lead(conn, lid, "drip", now)
        conn.execute(sequence.update().values(status="paused"))
    assert run(workspace) == 0
    assert state(workspace, eid).node_id == "s1"
    with tx(workspace) as conn:
        conn.execute(sequence.update().values(status="active"))
    assert run(workspace) == 1
