"""The `email_stat` rollup (store/rollups.py) always equals a scan of the log, whatever writes: inserts,
status changes, re-pointed or re-flagged activities, retention pruning, lead erasure; and on PostgreSQL two
first opens of one message committed at once count one unique open."""

from __future__ import annotations

import random
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, delete, func, insert, select, text, update

from nurture_tui.reports.common import make_period, resolve_scope
from nurture_tui.reports.emails import cohort_cells, scan_cells
from nurture_tui.store import rollups
from nurture_tui.store.engine import make_engine, write_tx
from nurture_tui.store.tables import activity, email_stat, lead, outbox
from nurture_tui.workspace import Workspace

from .report_fixture import build, d


def _cell_sums(conn: Connection) -> list[tuple[Any, ...]]:
    """email_stat summed over each cell's shards (a PostgreSQL writer adds to its own shard; a rebuild
    shards by message), cells summing to nothing left out."""
    s = email_stat.c
    key = [s.day, s.sequence_id, s.node_id, s.template_id]
    rows = conn.execute(select(*key, *[func.sum(s[c]) for c in rollups.COUNTS]).group_by(*key))
    return sorted(tuple(r) for r in rows if any(r[4:]))


def _cells(ws: Workspace) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with ws.engine.connect() as conn:
        scope = resolve_scope(conn, make_period(d(3, 2), date(2025, 12, 1), date(2026, 3, 2)), d(3, 2))

        def norm(cells: list[dict[str, object]]) -> list[dict[str, object]]:
            keep = [c for c in cells if any(v for k, v in c.items() if k not in ("sequence_id", "node_id",
                                                                                  "template_id", "day"))]
            def value(k: str, v: object) -> object:
                return int(v) if isinstance(v, (int, float, Decimal)) and k != "day" else v

            return sorted(({k: value(k, v) for k, v in c.items() if k != "complaints"} for c in keep), key=repr)

        return norm(cohort_cells(conn, scope)), norm(scan_cells(conn, scope))


def test_rollup_equals_scan_through_every_kind_of_write(workspace: Workspace) -> None:
    build(workspace)
    rollup, scan = _cells(workspace)
    assert rollup == scan and len(rollup) > 3
    rnd = random.Random(7)
    a, o = activity.c, outbox.c
    for step in range(40):
        with write_tx(workspace.engine) as conn:
            choice = step % 8
            oid = rnd.choice([1, 2, 3, 4, 5, 6, 7, *range(101, 141)])
            lid = conn.execute(select(o.lead_id).where(o.id == oid)).scalar()
            if lid is None:
                continue
            if choice in (0, 1):  # a new open / click, sometimes a bot's
                kind = ("open", "click")[choice]
                conn.execute(insert(activity).values(lead_id=lid, kind=kind, at=d(2, 26), outbox_id=oid,
                                                     bot=rnd.random() < 0.3, meta={}))
            elif choice == 2:  # an unsubscribe
                conn.execute(insert(activity).values(lead_id=lid, kind="unsubscribe", at=d(2, 26), outbox_id=oid,
                                                     meta={"categories": ["newsletter"]}))
            elif choice == 3:  # the dispatcher's outcome changes
                conn.execute(update(outbox).where(o.id == oid).values(
                    status=rnd.choice(["queued", "sending", "sent", "bounced", "failed"]),
                    last_error=rnd.choice([None, "421 later", "554 refused"])))
            elif choice == 4:  # an activity re-flagged as a bot, or moved to another message
                aid = conn.execute(select(a.id).where(a.outbox_id == oid, a.kind.in_(("open", "click")))
                                   .limit(1)).scalar()
                if aid is not None:
                    conn.execute(update(activity).where(a.id == aid).values(
                        bot=rnd.random() < 0.5, outbox_id=rnd.choice([oid, 5, 101])))
            elif choice == 5:  # retention pruning of old engagement
                conn.execute(delete(activity).where(a.outbox_id == oid, a.kind.in_(("open", "click"))))
            elif choice == 6:  # a new message
                conn.execute(insert(outbox).values(id=1000 + step, idempotency_key=f"new-{step}", lead_id=lid,
                                                   sequence_id=1, node_id="s1", template_id=1, to_email="x@example.com",
                                                   status="sent", created_at=d(2, 22, step % 24)))
            elif step > 30:  # erasing a lead deletes its messages and activities (cascade)
                conn.execute(delete(lead).where(lead.c.id == lid))
        rollup, scan = _cells(workspace)
        assert rollup == scan, f"step {step} ({choice})"
    with write_tx(workspace.engine) as conn:  # a rebuild from the log gives the same table
        before = _cell_sums(conn)
        rollups.install(conn, rebuild=True)
        after = _cell_sums(conn)
    assert before == after


@pytest.mark.pg
def test_concurrent_first_opens_count_once(pg_url: str, workspace: Workspace) -> None:
    if workspace.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    build(workspace)
    engine = make_engine(workspace.settings.db_url)
    row = {"lead_id": 3, "kind": "open", "at": d(2, 26), "outbox_id": 3, "bot": False, "meta": {}}
    first = engine.connect()
    tx = first.begin()
    first.execute(insert(activity).values(**row))  # the first open, not committed yet
    done = threading.Event()

    def second() -> None:
        with write_tx(engine) as conn:  # blocks on the message's lock until the first commits
            conn.execute(insert(activity).values(**row))
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(0.5)  # waiting for the first transaction
    tx.commit()
    first.close()
    t.join(10)
    assert done.is_set()
    with engine.connect() as conn:
        uniq, total = conn.execute(select(func.sum(email_stat.c.unique_opens), func.sum(email_stat.c.total_opens))
                                   .where(email_stat.c.node_id == "s1", email_stat.c.day == "2026-02-11")).one()
        assert (uniq, total) == (1, 2)
        assert conn.execute(text("SELECT count(*) FROM activity WHERE outbox_id = 3")).scalar_one() == 2
    engine.dispose()


def test_first_opens_in_one_statement_count_once(workspace: Workspace) -> None:
    """One INSERT of several rows (the tracking writer's batch): two first opens and two first clicks of one
    message count one unique open and one unique click (on PostgreSQL the rollup is kept once per statement)."""
    build(workspace)
    rows = [{"lead_id": 3, "kind": kind, "at": d(2, 26), "outbox_id": 3, "bot": bot, "meta": {}}
            for kind, bot in (("open", False), ("open", False), ("open", True), ("click", False), ("click", False))]
    with write_tx(workspace.engine) as conn:
        conn.execute(text("DELETE FROM activity WHERE outbox_id = 3 AND kind IN ('open', 'click')"))
        conn.execute(insert(activity).values(rows))
    rollup, scan = _cells(workspace)
    assert rollup == scan
    with workspace.engine.connect() as conn:
        s = email_stat.c
        got = conn.execute(select(*[func.sum(s[c]) for c in ("unique_opens", "total_opens", "bot_opens",
                                                              "unique_clicks", "total_clicks")])
                           .where(s.node_id == "s1", s.day == "2026-02-11")).one()
    assert [int(v) for v in got] == [1, 2, 1, 1, 2]


def test_init_installs_the_triggers_and_backfills(db_url: str) -> None:
    """`nurture init` (migrate.upgrade): a workspace upgraded with mail already in it gets the triggers and a
    rollup rebuilt from its log; later writes keep it."""
    from nurture_tui.store import migrate

    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        with write_tx(engine) as conn:
            assert rollups.installed(conn)
            conn.execute(insert(lead).values(id=1, email="a@example.com"))
            conn.execute(insert(outbox).values(id=1, idempotency_key="k", lead_id=1, to_email="a@example.com",
                                               status="sent", created_at=d(2, 1)))
            conn.execute(insert(activity).values(lead_id=1, kind="open", at=d(2, 2), outbox_id=1, meta={}))
            conn.exec_driver_sql("DROP TRIGGER email_stat_outbox_ins" + (" ON outbox" if "postgresql" in db_url
                                                                          else ""))
            conn.execute(delete(email_stat))
        migrate.upgrade(engine)  # re-creates the missing trigger and rebuilds from the log
        with engine.connect() as conn:
            assert rollups.installed(conn)
            assert conn.execute(select(email_stat.c.sent, email_stat.c.unique_opens)).one() == (1, 1)
    finally:
        engine.dispose()
