"""The split report's rollups (`lead_send`, `send_cohort`: store/rollups.py) always give what a scan of the
log gives, whatever writes: sends, opens and clicks (bots too) inserted, re-flagged, re-pointed to another
message and deleted, sends re-timed, repeated and removed, goals met and lost, leads erased; both the day-cell
path (one send step per arm) and the per-lead path (several, or a segment); a rebuild gives the same tables;
`nurture init` heals a workspace made before the tables existed; and on PostgreSQL two writers of one lead's
send state committed at once leave it exact."""

from __future__ import annotations

import random
import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from nurture_tui.reports.common import make_period, resolve_scope
from nurture_tui.reports.splits import arm_rows
from nurture_tui.store import rollups
from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.tables import activity, enrollment, lead, lead_send, send_cohort
from nurture_tui.workspace import Workspace

from .report_fixture import build, d

PERIODS = ((date(2026, 2, 1), date(2026, 3, 2)), (date(2026, 2, 3), date(2026, 2, 3)),
           (date(2026, 2, 4), date(2026, 3, 2)))


def _both(ws: Workspace) -> list[tuple[Any, Any]]:
    with ws.engine.connect() as conn:
        return [(arm_rows(conn, scope), arm_rows(conn, scope, scan=True))
                for since, until in PERIODS
                for scope in [resolve_scope(conn, make_period(d(3, 2), since, until), d(3, 2))]]


def _tables(ws: Workspace) -> list[list[Any]]:
    """lead_send, and send_cohort summed over each cell's shards (cells summing to nothing left out)."""
    c = send_cohort.c
    counts = [func.sum(c[k]) for k in ("n", "opened", "clicked", "goal")]
    with ws.engine.connect() as conn:
        sends = sorted(tuple(r) for r in conn.execute(select(lead_send)))
        cells = sorted(tuple(r) for r in conn.execute(select(c.version_id, c.node_id, c.day, *counts)
                                                      .group_by(c.version_id, c.node_id, c.day)) if any(r[3:]))
    return [sends, cells]


def _assert_equal(ws: Workspace, what: str) -> None:
    for rollup, scan in _both(ws):
        assert rollup == scan, what


def test_rollup_equals_scan_through_every_kind_of_write(workspace: Workspace) -> None:
    build(workspace)
    first = _both(workspace)
    assert first[0][0] == first[0][1] and [a["n"] for a in first[0][0][0]] == [20, 20]
    rnd = random.Random(11)
    a = activity.c
    for step in range(48):
        oid = rnd.choice(range(101, 141))
        with write_tx(workspace.engine) as conn:
            lid = conn.execute(select(a.lead_id).where(a.outbox_id == oid, a.kind == "sent")).scalar()
            if lid is None:
                continue
            choice = step % 8
            if choice in (0, 1):  # a new open / click, sometimes a bot's
                conn.execute(insert(activity).values(lead_id=lid, kind=("open", "click")[choice], at=d(2, 26),
                                                     outbox_id=oid, bot=rnd.random() < 0.3, meta={}))
            elif choice == 2:  # an open or click re-flagged as a bot's, or moved to another message
                aid = conn.execute(select(a.id).where(a.outbox_id == oid, a.kind.in_(("open", "click")))
                                   .limit(1)).scalar()
                if aid is not None:
                    conn.execute(update(activity).where(a.id == aid).values(
                        bot=rnd.random() < 0.5, outbox_id=rnd.choice([oid, 101, 125])))
            elif choice == 3:  # retention pruning of a message's engagement
                conn.execute(delete(activity).where(a.outbox_id == oid, a.kind.in_(("open", "click"))))
            elif choice == 4:  # a send re-timed (into another day, sometimes out of the period)
                conn.execute(update(activity).where(a.outbox_id == oid, a.kind == "sent").values(
                    at=rnd.choice([d(2, 3, 9), d(2, 5, 9), d(1, 20, 9)])))
            elif choice == 5:  # a second send to the lead on another day (re-entry), sometimes of another step
                conn.execute(insert(activity).values(lead_id=lid, kind="sent", at=rnd.choice([d(1, 30), d(2, 8, 9)]),
                                                     outbox_id=None, sequence_id=2, version_id=2,
                                                     node_id=rnd.choice(["a1", "b1", "a2"]), meta={}))
            elif choice == 6:  # a send's activity removed
                conn.execute(delete(activity).where(a.outbox_id == oid, a.kind == "sent"))
            elif step % 16 == 7:  # the lead's goal met, or lost
                e = enrollment.c
                status = conn.execute(select(e.status).where(e.lead_id == lid, e.version_id == 2)).scalar()
                conn.execute(update(enrollment).where(e.lead_id == lid, e.version_id == 2).values(
                    status="active" if status == "goal" else "goal"))
            elif step > 30:  # erasing a lead deletes its messages, activities and enrollments (cascade)
                conn.execute(delete(lead).where(lead.c.id == lid))
        _assert_equal(workspace, f"step {step} ({choice})")
    before = _tables(workspace)
    with write_tx(workspace.engine) as conn:  # a rebuild from the log gives the same tables
        rollups.install(conn, rebuild=True)
    assert _tables(workspace) == before
    assert all(r[3] > 0 for r in before[1])  # no cell left counting no lead


def test_sends_of_many_leads_in_one_statement(workspace: Workspace) -> None:
    """One INSERT of many sends and opens (an engine batch's COPY, a tracking batch): one recomputation for
    them all on PostgreSQL (statement-level), cells summed per (step, day)."""
    build(workspace)
    a = activity.c
    with write_tx(workspace.engine) as conn:
        rows = [{"lead_id": lid, "kind": "sent", "at": d(2, 9, 9), "sequence_id": 2, "version_id": 2,
                 "node_id": node, "meta": {}} for lid in range(101, 141) for node in ("a1", "b1")]
        conn.execute(insert(activity).values(rows))
        opens = [{"lead_id": lid, "kind": "open", "at": d(2, 26), "outbox_id": oid, "bot": False, "meta": {}}
                 for oid, lid in conn.execute(select(a.outbox_id, a.lead_id).where(a.kind == "sent",
                                                                                   a.outbox_id.is_not(None)))]
        conn.execute(insert(activity).values(opens + opens))
    _assert_equal(workspace, "a statement of many sends and opens")
    before = _tables(workspace)
    with write_tx(workspace.engine) as conn:
        rollups.install(conn, rebuild=True)
    assert _tables(workspace) == before


def test_arms_of_several_steps_count_each_lead_once(workspace: Workspace) -> None:
    """A lead sent twice from an arm (two steps, or one step twice) counts once, in the period of its first
    message; an arm of two steps makes the report group per lead (the cell path would count it twice)."""
    build(workspace)
    with write_tx(workspace.engine) as conn:  # L101 (arm A): a second message from a1 on 02-20; L121 (arm B)
        for lid, node, at in ((101, "a1", d(2, 20)), (121, "b1", d(2, 20)), (121, "b2", d(2, 21))):
            conn.execute(insert(activity).values(lead_id=lid, kind="sent", at=at, sequence_id=2, version_id=2,
                                                 node_id=node, meta={}))
    _assert_equal(workspace, "repeated sends")
    with workspace.engine.connect() as conn:
        feb = resolve_scope(conn, make_period(d(3, 2), date(2026, 2, 1), date(2026, 3, 1)), d(3, 2))
        late = resolve_scope(conn, make_period(d(3, 2), date(2026, 2, 10), date(2026, 3, 1)), d(3, 2))
        assert [a["n"] for a in arm_rows(conn, feb)[0]] == [20, 20]
        assert arm_rows(conn, late) == []  # both entered on 02-03


def test_init_creates_the_table_of_an_older_workspace(db_url: str) -> None:
    """A workspace made before `lead_send` and `send_cohort` existed: `nurture init` (migrate.upgrade) creates
    the tables, their triggers and rollups rebuilt from the log."""
    from nurture_tui.store import migrate

    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        with write_tx(engine) as conn:
            conn.execute(insert(lead).values(id=1, email="a@example.com"))
            conn.execute(insert(activity).values(lead_id=1, kind="sent", at=d(2, 2), version_id=7, node_id="x",
                                                 meta={}))
            rollups.uninstall(conn)
            conn.exec_driver_sql("DROP TABLE lead_send")
            conn.exec_driver_sql("DROP TABLE send_cohort")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert rollups.installed(conn)
            assert conn.execute(select(lead_send.c.first_day)).all() == [("2026-02-02",)]
            assert conn.execute(select(send_cohort.c.day, send_cohort.c.n)).all() == [("2026-02-02", 1)]
    finally:
        engine.dispose()


@pytest.mark.pg
def test_concurrent_first_opens_mark_the_send_once(pg_url: str, workspace: Workspace) -> None:
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    build(workspace)
    engine = make_engine(workspace.settings.db_url)
    with engine.connect() as conn:  # a message of arm B nobody opened
        oid, lid = conn.execute(text(
            "SELECT s.outbox_id, s.lead_id FROM activity s WHERE s.kind = 'sent' AND s.node_id = 'b1' AND NOT "
            "EXISTS (SELECT 1 FROM activity x WHERE x.outbox_id = s.outbox_id AND x.kind = 'open' AND NOT x.bot) "
            "LIMIT 1")).one()
    row = {"lead_id": lid, "kind": "open", "at": d(2, 26), "outbox_id": oid, "bot": False, "meta": {}}
    first = engine.connect()
    tx = first.begin()
    first.execute(insert(activity).values(**row))
    done = threading.Event()

    def second() -> None:
        with write_tx(engine) as conn:  # waits for the message's lock until the first commits
            conn.execute(insert(activity).values(**row))
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(0.5)
    tx.commit()
    first.close()
    t.join(10)
    assert done.is_set()
    with engine.connect() as conn:
        assert conn.execute(select(lead_send.c.opened).where(lead_send.c.lead_id == lid)).scalar_one() == 1
    engine.dispose()
    _assert_equal(workspace, "after two concurrent first opens")


def test_init_replaces_triggers_made_by_other_code(db_url: str) -> None:
    """Trigger definitions from another release (their fingerprint differs) are replaced by `nurture init`,
    and the rollups rebuilt from the log."""
    from nurture_tui.store import meta, migrate

    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        with write_tx(engine) as conn:
            conn.execute(insert(lead).values(id=1, email="a@example.com"))
            conn.execute(delete(lead_send))
            meta.put(conn, rollups.DDL_KEY, "0000")
            assert not rollups.installed(conn)
            conn.execute(insert(activity).values(lead_id=1, kind="sent", at=d(2, 2), version_id=7, node_id="x",
                                                 meta={}))
            conn.execute(delete(lead_send))  # as if the older trigger had not kept it
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert rollups.installed(conn)
            assert conn.execute(select(lead_send.c.first_day)).all() == [("2026-02-02",)]
    finally:
        engine.dispose()


@pytest.mark.pg
def test_two_writers_of_one_send_step_do_not_wait_for_each_other(pg_url: str, workspace: Workspace) -> None:
    """Each PostgreSQL transaction adds to its own shard of a send_cohort cell (store/rollups.py): two engine
    workers sending from one step on one day write different rows, and the report sums them."""
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    build(workspace)
    engine = make_engine(workspace.settings.db_url)

    def sent(lid: int) -> dict[str, Any]:
        return {"lead_id": lid, "kind": "sent", "at": d(2, 3, 10), "sequence_id": 2, "version_id": 2,
                "node_id": "a1", "meta": {}}

    first = engine.connect()
    tx = first.begin()
    mine = first.execute(text("SELECT txid_current() % 8")).scalar_one()
    first.execute(insert(activity).values(sent(102)))  # not committed yet
    second = engine.connect()
    while True:  # (another test's transactions may have taken the txids between: pick a different shard)
        tx2 = second.begin()
        if second.execute(text("SELECT txid_current() % 8")).scalar_one() != mine:
            break
        tx2.rollback()
    second.execute(text("SET LOCAL lock_timeout = '2s'"))
    second.execute(insert(activity).values(sent(104)))  # would time out queueing behind the first's cell row
    tx2.commit()
    tx.commit()
    first.close()
    second.close()
    engine.dispose()
    _assert_equal(workspace, "after two concurrent sends of one step")

