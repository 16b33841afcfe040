"""Threshold → MQL (once per cycle), queue, SLA, accept / reject → recycle / reassign / snooze, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from nurture_tui.errors import ValidationError
from nurture_tui.scoring import mql, service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.models import GRADES
from nurture_tui.store.tables import activity, audit, lead, rep_group, sf_outbox
from nurture_tui.store.tables import mql as mql_t

from .helpers import add_lead, add_user, record

B = GRADES.index("B")


def _cross(conn, ws, lid):
    return service.adjust_score(conn, lid, 120, "test push over the threshold", ws.clock.now(), ws.settings)


def test_crossing_creates_one_entry_per_cycle(workspace):
    with write_tx(workspace.engine) as conn:
        rep = add_user(conn, "rita")
        lid = add_lead(conn, owner_id=rep, grade="B", grade_rank=B)
        other = add_lead(conn, "low@example.com", grade="C", grade_rank=GRADES.index("C"))
        assert _cross(conn, workspace, other) == []  # grade below B-
        assert _cross(conn, workspace, lid) == [lid]
        assert _cross(conn, workspace, lid) == []  # still in the open cycle
        entries = mql.list_queue(conn, workspace.clock.now(), workspace.settings)
        assert [(e.lead_id, e.cycle, e.status, e.rep) for e in entries] == [(lid, 1, "new", "rita")]
        e = entries[0]
        assert e.why["rule"] == "score ≥ 100 AND grade ≥ B-" and e.why["grade"] == "B" and e.score == 120
        row = conn.execute(select(lead.c.status, lead.c.mql_at).where(lead.c.id == lid)).one()
        assert row.status == "MQL" and row.mql_at == workspace.clock.now()
        n_mql = select(func.count()).where(activity.c.kind == "mql", activity.c.lead_id == lid)
        assert conn.execute(n_mql).scalar() == 1
        pushes = conn.execute(select(sf_outbox.c.sobject, sf_outbox.c.payload).where(sf_outbox.c.lead_id == lid)
                              .order_by(sf_outbox.c.id)).all()
        assert pushes[0].sobject == "Lead"
        assert pushes[0].payload == {"mql_status": "MQL", "score": 120, "grade": "B", "owner": rep}
        assert pushes[1].sobject == "Task" and pushes[1].payload["owner"] == rep
        assert pushes[1].payload["Subject"].startswith("MQL: Ada Lovelace")
        assert "WHY IT QUALIFIED" in pushes[1].payload["Description"]


def test_score_only_threshold_when_grade_is_blank(workspace):
    workspace.settings.scoring.mql_grade = ""
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        assert _cross(conn, workspace, lid) == [lid]


def test_incoming_activities_qualify(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn, grade="A", grade_rank=GRADES.index("A"))
        changed = record(conn, workspace.settings, now, *[{"lead_id": lid, "kind": "form"}] * 6,
                         {"lead_id": lid, "kind": "reply"})
        assert changed == [lid]


def test_sla_overdue_and_snooze(workspace):
    clock = workspace.clock
    s = workspace.settings
    with write_tx(workspace.engine) as conn:
        add_user(conn, "rita")
        lid = add_lead(conn, grade="B", grade_rank=B)
        _cross(conn, workspace, lid)
        (entry,) = mql.list_queue(conn, clock.now(), s)
        assert not entry.overdue
        clock.advance(timedelta(hours=25))
        assert mql.list_queue(conn, clock.now(), s, overdue_only=True)[0].id == entry.id
        mql.snooze(conn, entry.id, clock.now() + timedelta(days=2), "rita", clock.now())
        assert mql.list_queue(conn, clock.now(), s) == []  # hidden while snoozed
        assert mql.list_queue(conn, clock.now(), s, status="snoozed")[0].id == entry.id
        clock.advance(timedelta(days=2, hours=1))
        back = mql.list_queue(conn, clock.now(), s)
        assert [e.id for e in back] == [entry.id] and not back[0].overdue  # SLA restarts after the snooze
        clock.advance(timedelta(hours=24))
        assert mql.list_queue(conn, clock.now(), s)[0].overdue
        with pytest.raises(ValidationError):
            mql.snooze(conn, entry.id, clock.now() - timedelta(hours=1), "rita", clock.now())


def test_accept(workspace):
    s = workspace.settings
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn, grade="B", grade_rank=B)
        _cross(conn, workspace, lid)
        mid = mql.list_queue(conn, workspace.clock.now(), s)[0].id
        mql.accept(conn, mid, "rita", workspace.clock.now(), s)
        assert conn.execute(select(lead.c.status).where(lead.c.id == lid)).scalar() == "Sales Accepted"
        assert mql.get(conn, mid, workspace.clock.now(), s).status == "accepted"
        with pytest.raises(ValidationError):
            mql.accept(conn, mid, "rita", workspace.clock.now(), s)
        last = conn.execute(select(sf_outbox.c.payload).order_by(sf_outbox.c.id.desc()).limit(1)).scalar()
        assert last == {"mql_status": "Sales Accepted"}
        acts = [r.action for r in conn.execute(select(audit.c.action).order_by(audit.c.id))]
        assert acts == ["mql.qualify", "mql.accept"]


def test_reject_recycles_and_next_cycle(workspace):
    clock = workspace.clock
    s = workspace.settings
    s.scoring.recycle_score_factor = 0.25
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn, grade="B", grade_rank=B)
        _cross(conn, workspace, lid)
        mid = mql.list_queue(conn, clock.now(), s)[0].id
        with pytest.raises(ValidationError):
            mql.reject(conn, mid, "  ", "rita", clock.now(), s)
        assert mql.reject(conn, mid, "no budget this year", "rita", clock.now(), s) == "rejected"
        row = conn.execute(select(lead.c.status, lead.c.mql_at).where(lead.c.id == lid)).one()
        assert row.status == "Recycled" and row.mql_at is None
        assert service.live_score(conn, lid, clock.now(), s) == pytest.approx(30)
        entry = mql.get(conn, mid, clock.now(), s)
        assert entry.status == "rejected" and entry.reject_reason == "no budget this year"
        clock.advance(timedelta(days=1))
        assert _cross(conn, workspace, lid) == [lid]  # a new cycle may qualify again
        cycles = [r.cycle for r in conn.execute(select(mql_t.c.cycle).where(mql_t.c.lead_id == lid)
                                                .order_by(mql_t.c.id))]
        assert cycles == [1, 2]


def test_reassign_pushes_owner_and_task(workspace):
    s = workspace.settings
    with write_tx(workspace.engine) as conn:
        rita = add_user(conn, "rita")
        sam = add_user(conn, "sam")
        lid = add_lead(conn, owner_id=rita, grade="B", grade_rank=B)
        _cross(conn, workspace, lid)
        mid = mql.list_queue(conn, workspace.clock.now(), s)[0].id
        with pytest.raises(ValidationError):
            mql.reassign(conn, mid, "nobody", "rita", workspace.clock.now(), s)
        mql.reassign(conn, mid, "sam", "rita", workspace.clock.now(), s)
        assert conn.execute(select(lead.c.owner_id).where(lead.c.id == lid)).scalar() == sam
        assert mql.get(conn, mid, workspace.clock.now(), s).rep == "sam"
        rows = conn.execute(select(sf_outbox.c.sobject, sf_outbox.c.payload).order_by(sf_outbox.c.id.desc())
                            .limit(2)).all()
        assert rows[1].payload == {"owner": sam}
        assert rows[0].sobject == "Task" and rows[0].payload["owner"] == sam
        a = conn.execute(select(audit.c.before, audit.c.after).where(audit.c.action == "mql.reassign")).one()
        assert a.before["rep_id"] == rita and a.after["rep_id"] == sam


def test_round_robin_assignment_is_fair(workspace):
    s = workspace.settings
    s.scoring.assign_order = ["group"]
    s.scoring.assign_group = "inside"
    with write_tx(workspace.engine) as conn:
        ids = [add_user(conn, n) for n in ("a1", "a2", "a3")]
        off = add_user(conn, "gone", active=False)
        conn.execute(insert(rep_group).values(name="inside", member_ids=[*ids, off]))
        for i in range(9):
            _cross(conn, workspace, add_lead(conn, f"l{i}@example.com", grade="B", grade_rank=B))
        reps = [e.rep for e in mql.list_queue(conn, workspace.clock.now(), s)]
        assert reps == ["a1", "a2", "a3"] * 3


def test_territory_then_queue(workspace):
    s = workspace.settings
    s.scoring.assign_order = ["owner", "territory", "queue"]
    with write_tx(workspace.engine) as conn:
        de = add_user(conn, "dieter")
        conn.execute(insert(rep_group).values(name="dach", member_ids=[de], rules={"country": ["Germany", "Austria"]}))
        l1 = add_lead(conn, "a@example.de", country="germany", grade="B", grade_rank=B)
        l2 = add_lead(conn, "b@example.fr", country="France", grade="B", grade_rank=B)
        _cross(conn, workspace, l1)
        _cross(conn, workspace, l2)
        by_lead = {e.lead_id: e for e in mql.list_queue(conn, workspace.clock.now(), s)}
        assert (by_lead[l1].rep, by_lead[l1].why["assigned"]) == ("dieter", "territory:dach")
        assert (by_lead[l2].rep, by_lead[l2].queue) == (None, "MQL queue")


def test_account_owner_strategy(workspace):
    from nurture_tui.store.tables import account

    s = workspace.settings
    with write_tx(workspace.engine) as conn:
        owner = add_user(conn, "abm")
        aid = int(conn.execute(insert(account).values(name="Acme", owner_id=owner)).inserted_primary_key[0])
        lid = add_lead(conn, account_id=aid, grade="B", grade_rank=B)
        _cross(conn, workspace, lid)
        (e,) = mql.list_queue(conn, workspace.clock.now(), s)
        assert (e.rep, e.why["assigned"]) == ("abm", "account_owner")


def test_concurrent_crossings_open_one_entry(workspace):
    """Two workers see the same lead cross the threshold; exactly one entry is opened."""
    import threading
    import time

    s = workspace.settings
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn, grade="B", grade_rank=B)
        conn.execute(lead.update().where(lead.c.id == lid).values(score=500.0))
    results: dict[str, list[int]] = {}
    with write_tx(workspace.engine) as first:
        results["first"] = mql.check(first, [lid], now, s)

        def second() -> None:
            with write_tx(workspace.engine) as conn:
                results["second"] = mql.check(conn, [lid], now, s)

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)  # the second worker is now waiting for the first one's transaction
    t.join(30)
    assert results == {"first": [lid], "second": []}
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(mql_t)).scalar() == 1
