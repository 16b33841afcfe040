"""The triage additions to the MQL service (issue 18 item 2): queue order by age, score or grade; moving an
entry to a queue; snoozing — each audited and pushed to Salesforce as a Task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from nurture_tui.errors import ValidationError
from nurture_tui.scoring import mql, service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.models import GRADES
from nurture_tui.store.tables import audit, sf_outbox
from nurture_tui.store.tables import mql as mql_t

from .helpers import add_lead, add_user


def _three(conn, ws):
    """Three MQLs an hour apart: (grade, score) = (B, 150), (A, 110), (B+, 130)."""
    rep = add_user(conn, "rita")
    ids = []
    for i, (grade, points) in enumerate((("B", 150), ("A", 110), ("B+", 130))):
        lid = add_lead(conn, f"l{i}@example.com", owner_id=rep, grade=grade, grade_rank=GRADES.index(grade))
        now = ws.clock.now() + timedelta(hours=i)
        assert service.adjust_score(conn, lid, points, "test", now, ws.settings) == [lid]
        ids.append(lid)
    return ids


def test_queue_sorts_by_age_score_and_grade(workspace):
    with write_tx(workspace.engine) as conn:
        a, b, c = _three(conn, workspace)
        later = workspace.clock.now() + timedelta(hours=5)

        def order(sort):
            return [e.lead_id for e in mql.list_queue(conn, later, workspace.settings, sort=sort)]

        assert order("age") == [a, b, c]
        assert order("score") == [a, c, b]
        assert order("grade") == [b, c, a]
        with pytest.raises(ValidationError):
            order("name")


def test_move_to_queue_and_snooze_are_audited_and_pushed(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        a, b, _c = _three(conn, workspace)
        first, second = (conn.execute(select(mql_t.c.id).where(mql_t.c.lead_id == lid)).scalar_one() for lid in (a, b))
        mql.reassign_to_queue(conn, first, "EMEA inbound", "olaf", now)
        mql.snooze(conn, second, now + timedelta(days=2), "rita", now)
        moved = conn.execute(select(mql_t.c.rep_id, mql_t.c.queue).where(mql_t.c.id == first)).one()
        assert (moved.rep_id, moved.queue) == (None, "EMEA inbound")
        actions = [r.action for r in conn.execute(select(audit.c.action).where(audit.c.entity_id.in_(
            [str(first), str(second)])).order_by(audit.c.id))]
        assert actions[-2:] == ["mql.reassign", "mql.snooze"]
        tasks = [r.payload["Subject"] for r in conn.execute(
            select(sf_outbox.c.payload).where(sf_outbox.c.sobject == "Task").order_by(sf_outbox.c.id))]
        assert tasks[-2].startswith("MQL moved to the EMEA inbound queue")
        assert tasks[-1].startswith(f"MQL snoozed until {(now + timedelta(days=2)):%Y-%m-%d %H:%M} UTC")
        with pytest.raises(ValidationError):
            mql.reassign_to_queue(conn, first, "  ", "olaf", now)
