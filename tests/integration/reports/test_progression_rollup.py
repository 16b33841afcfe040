"""The progression rollups (`lead_milestone`, `lead_cohort`: store/rollups.py) always give what a scan of the
log gives, whatever writes: stage changes, MQLs, opportunities and enrollments inserted, updated (re-timed,
re-pointed to another lead or sequence, re-statused) and deleted, leads created, re-dated and erased; and on
PostgreSQL writers of one lead's enrollments or milestones committed at once."""

from __future__ import annotations

import random
import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from nurture_tui.reports.common import make_period, resolve_scope
from nurture_tui.reports.progression import awareness, reached
from nurture_tui.store import rollups
from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.tables import activity, enrollment, lead, lead_cohort, lead_milestone, mql, opportunity
from nurture_tui.workspace import Workspace

from .report_fixture import build, d

PERIODS = ((date(2026, 2, 1), date(2026, 3, 2)), (date(2026, 2, 15), date(2026, 2, 20)),
           (date(2025, 11, 1), date(2026, 1, 31)))


def _both(ws: Workspace) -> list[tuple[Any, Any]]:
    """(rollup, scan) of every figure the report reads, for several periods, all sequences and each one."""
    out = []
    with ws.engine.connect() as conn:
        for since, until in PERIODS:
            for seq in (None, "nurture", "abtest"):
                scope = resolve_scope(conn, make_period(d(3, 2), since, until), d(3, 2), seq)
                out.append(((reached(conn, scope, None, from_rollup=True),
                             awareness(conn, scope, None, from_rollup=True)),
                            (reached(conn, scope, None, from_rollup=False),
                             awareness(conn, scope, None, from_rollup=False))))
    return out


def _assert_equal(ws: Workspace, what: str) -> None:
    for rollup, scan in _both(ws):
        assert rollup == scan, what


def _some(conn: Any, col: Any, *where: Any) -> Any:
    return conn.execute(select(col).where(*where).order_by(col).limit(1)).scalar()


def test_rollup_equals_scan_through_every_kind_of_write(workspace: Workspace) -> None:
    build(workspace)
    first = _both(workspace)
    assert all(r == s for r, s in first)
    assert any(r[0] for r, _ in first) and first[0][0][1][0] == 47  # not vacuous: milestones, 47 leads by 03-02
    rnd = random.Random(17)
    a, m, o, e = activity.c, mql.c, opportunity.c, enrollment.c
    leads = [1, 2, 3, 4, 5, 6, 7, *range(101, 141)]

    def when() -> Any:
        return d(rnd.choice([1, 2, 2, 2, 3]), rnd.randint(1, 28), rnd.randint(0, 23))

    for step in range(90):
        lid = rnd.choice(leads)
        kind = step % 9
        with write_tx(workspace.engine) as conn:
            if not conn.execute(select(lead.c.id).where(lead.c.id == lid)).first():
                continue
            if kind == 0:  # a stage change (to a milestone stage or not)
                to = rnd.choice(["consideration", "decision", "customer"])
                conn.execute(insert(activity).values(id=10_000 + step, lead_id=lid, kind="stage_change", at=when(),
                                                     meta={"from": "awareness", "to": to}))
            elif kind == 1:  # re-dated, re-targeted, turned into another kind, moved to another lead; or deleted
                aid = _some(conn, a.id, a.kind == "stage_change", a.lead_id == lid) or _some(
                    conn, a.id, a.kind == "stage_change")
                if aid is None:
                    continue
                if rnd.random() < 0.3:
                    conn.execute(delete(activity).where(a.id == aid))
                else:
                    conn.execute(update(activity).where(a.id == aid).values(**rnd.choice([
                        {"at": when()}, {"meta": {"to": rnd.choice(["consideration", "decision"])}},
                        {"kind": "page_view"}, {"lead_id": rnd.choice(leads[:7])}])))
            elif kind == 2:  # an MQL, sometimes decided
                status = rnd.choice(["new", "accepted", "rejected"])
                conn.execute(insert(mql).values(id=10_000 + step, lead_id=lid, status=status, created_at=when(),
                                                decided_at=None if status == "new" else when()))
            elif kind == 3:  # an MQL decided, re-dated or moved; or deleted
                mid = _some(conn, m.id, m.lead_id == lid) or _some(conn, m.id)
                if mid is None:
                    continue
                if rnd.random() < 0.3:
                    conn.execute(delete(mql).where(m.id == mid))
                else:
                    conn.execute(update(mql).where(m.id == mid).values(**rnd.choice([
                        {"status": "accepted", "decided_at": when()}, {"status": "rejected"},
                        {"created_at": when()}, {"lead_id": rnd.choice(leads[:7])}])))
            elif kind == 4:  # an opportunity (sometimes of no lead)
                conn.execute(insert(opportunity).values(id=10_000 + step, lead_id=lid if rnd.random() < 0.8 else None,
                                                        name=f"o{step}", created_at=when()))
            elif kind == 5:  # an opportunity re-dated, detached, moved; or deleted
                oid = _some(conn, o.id, o.lead_id == lid) or _some(conn, o.id)
                if rnd.random() < 0.3:
                    conn.execute(delete(opportunity).where(o.id == oid))
                else:
                    conn.execute(update(opportunity).where(o.id == oid).values(**rnd.choice([
                        {"created_at": when()}, {"lead_id": None}, {"lead_id": rnd.choice(leads)}])))
            elif kind == 6:  # an enrollment (a second one in a sequence, or a first)
                seq = rnd.choice([1, 2])
                conn.execute(insert(enrollment).values(id=10_000 + step, lead_id=lid, sequence_id=seq, version_id=seq,
                                                       status="active", entered_at=when()))
            elif kind == 7:  # an enrollment re-dated, moved to another sequence or lead, advanced; or deleted
                eid = _some(conn, e.id, e.lead_id == lid) or _some(conn, e.id)
                if rnd.random() < 0.3:
                    conn.execute(delete(enrollment).where(e.id == eid))
                else:
                    seq = rnd.choice([1, 2])
                    conn.execute(update(enrollment).where(e.id == eid).values(**rnd.choice([
                        {"entered_at": when()}, {"sequence_id": seq, "version_id": seq},
                        {"lead_id": rnd.choice(leads)}, {"status": "goal", "node_id": "s2"}])))
            else:  # a new lead, a lead re-dated, a lead erased (its rows go by cascade)
                choice = rnd.random()
                if choice < 0.4:
                    new = 1000 + step
                    conn.execute(insert(lead).values(id=new, email=f"n{step}@example.com", created_at=when()))
                    leads.append(new)
                elif choice < 0.7 or step < 60:
                    conn.execute(update(lead).where(lead.c.id == lid).values(created_at=when()))
                else:
                    conn.execute(delete(lead).where(lead.c.id == lid))
        _assert_equal(workspace, f"step {step} ({kind})")
    with write_tx(workspace.engine) as conn:  # a rebuild from the log gives the same tables
        before = [sorted(tuple(r) for r in conn.execute(select(t))) for t in (lead_milestone, lead_cohort)]
        rollups.install(conn, rebuild=True)
        after = [sorted(tuple(r) for r in conn.execute(select(t))) for t in (lead_milestone, lead_cohort)]
    assert before[0] == after[0]
    assert [r for r in before[1] if r[2]] == [r for r in after[1] if r[2]]


def test_engine_steps_fire_nothing(workspace: Workspace) -> None:
    """Advancing an enrollment (node, status, due time) and other activity kinds leave the rollups alone."""
    build(workspace)
    with write_tx(workspace.engine) as conn:
        before = [sorted(tuple(r) for r in conn.execute(select(t))) for t in (lead_milestone, lead_cohort)]
        conn.execute(update(enrollment).values(status="goal", node_id="s2", due_at=d(3, 1)))
        conn.execute(insert(activity).values(id=901, lead_id=5, kind="page_view", at=d(2, 1), meta={"to": "decision"}))
        after = [sorted(tuple(r) for r in conn.execute(select(t))) for t in (lead_milestone, lead_cohort)]
    assert before == after


@pytest.mark.pg
@pytest.mark.parametrize("write", ["enrollment", "milestone"])
def test_concurrent_writers_of_one_lead(pg_url: str, workspace: Workspace, write: str) -> None:
    """Two transactions change one lead's first entry (or its milestones) at once: the second waits for the
    first's lock on the lead, then sees its row, so the rollup stays exact."""
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    build(workspace)
    engine = make_engine(workspace.settings.db_url)

    def first_write(conn: Any) -> None:
        if write == "enrollment":  # L5 was never enrolled: both would be its first entry in nurture
            conn.execute(insert(enrollment).values(id=901, lead_id=5, sequence_id=1, version_id=1, entered_at=d(2, 20)))
        else:  # L4 has no milestone: each transaction alone would write a row without the other's
            conn.execute(insert(mql).values(id=901, lead_id=4, status="accepted", created_at=d(2, 20),
                                            decided_at=d(2, 21)))

    def second_write(conn: Any) -> None:
        if write == "enrollment":
            conn.execute(insert(enrollment).values(id=902, lead_id=5, sequence_id=1, version_id=1, entered_at=d(2, 10)))
        else:
            conn.execute(insert(opportunity).values(id=901, lead_id=4, name="o", created_at=d(2, 25)))

    done = threading.Event()

    def second() -> None:
        with write_tx(engine) as conn:
            second_write(conn)
        done.set()

    t = threading.Thread(target=second)
    first = engine.connect()
    try:
        with first.begin():
            first_write(first)  # not committed until the block ends
            t.start()
            waited = not done.wait(0.5)  # the second waits for the first transaction's lock on the lead
    finally:
        first.close()
        t.join(10)
        engine.dispose()
    assert waited and done.is_set()
    _assert_equal(workspace, write)
    with workspace.engine.connect() as conn:
        if write == "enrollment":
            assert conn.execute(select(lead_cohort.c.n).where(lead_cohort.c.day == "2026-02-20",
                                                              lead_cohort.c.sequence_id == 1)).scalar() in (None, 0)
        else:
            assert conn.execute(select(lead_milestone.c.mql_at, lead_milestone.c.opportunity_at)
                                .where(lead_milestone.c.lead_id == 4)).one() == (d(2, 20), d(2, 25))
