"""The engine's driver-level PostgreSQL path (issue 21): claim, bulk inserts and the advance go through
psycopg 3 on the SQLAlchemy connection's own transaction. Both backends: the same results either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nurture_tui.engine.advance import run_batch
from nurture_tui.engine.bulk import insert_rows, insert_with_ids
from nurture_tui.engine.claim import claim
from nurture_tui.engine.seeding import seed_due
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, enrollment, outbox
from nurture_tui.workspace import Workspace

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)




def _outbox_row(key: str, lead_id: int) -> dict[str, object]:
    return {"idempotency_key": key, "lead_id": lead_id, "category": "marketing", "to_email": "a@example.com",
            "subject": "s", "html": "<p>h</p>", "text": "t", "headers": {"X-K": key}, "status": "queued",
            "attempts": 0, "next_try_at": T0, "created_at": T0}


def test_insert_with_ids_in_order_and_values_round_trip(workspace: Workspace) -> None:
    seed_due(workspace.engine, 3, T0)
    with write_tx(workspace.engine) as conn:
        rows = [_outbox_row(f"k{i}", 1 + i % 3) for i in range(7)]
        ids = insert_with_ids(conn, outbox, rows)
        assert ids == sorted(ids) and len(set(ids)) == 7
        assert [r["id"] for r in rows] == ids
        insert_rows(conn, activity, [{"lead_id": 1, "kind": "sent", "at": T0 + timedelta(seconds=i),
                                      "outbox_id": ids[i], "bot": False, "meta": {"i": i}} for i in range(3)])
    with workspace.engine.connect() as conn:
        got = conn.execute(select(outbox.c.id, outbox.c.idempotency_key, outbox.c.headers, outbox.c.next_try_at)
                           .where(outbox.c.id.in_(ids)).order_by(outbox.c.id)).all()
        acts = conn.execute(select(activity.c.outbox_id, activity.c.meta, activity.c.at)
                            .where(activity.c.kind == "sent").order_by(activity.c.id)).all()
    assert [(g.id, g.idempotency_key, g.headers) for g in got] == [(i, f"k{n}", {"X-K": f"k{n}"})
                                                                   for n, i in enumerate(ids)]
    assert all(g.next_try_at == T0 for g in got)
    assert [(a.outbox_id, a.meta, a.at) for a in acts] == [(ids[i], {"i": i}, T0 + timedelta(seconds=i))
                                                           for i in range(3)]


def test_driver_errors_come_out_as_sqlalchemy_errors(workspace: Workspace) -> None:
    seed_due(workspace.engine, 1, T0)
    with pytest.raises(IntegrityError), write_tx(workspace.engine) as conn:
        insert_with_ids(conn, outbox, [_outbox_row("dup", 1), _outbox_row("dup", 1)])
    with workspace.engine.connect() as conn:
        assert conn.execute(select(outbox.c.id)).first() is None  # rolled back


def test_claim_converts_like_core_and_two_open_claims_are_disjoint(workspace: Workspace) -> None:
    seed_due(workspace.engine, 6, T0)
    engine = workspace.engine
    with write_tx(engine) as conn:
        first = claim(conn, T0, 3)
        assert len(first) == 3
        for r in first:
            assert r.due_at == T0 and r.due_at.tzinfo is not None and r.due_at.utcoffset() == timedelta(0)
            assert r.node_entered_at is not None and r.node_entered_at.astimezone(UTC) == T0
            assert r.status == "active" and r.steps == 0 and r.node_id == "s1"
        if engine.dialect.name == "postgresql":  # SKIP LOCKED: a second worker gets the other rows
            with write_tx(engine) as other:
                second = claim(other, T0, 6)
            assert {r.id for r in second}.isdisjoint({r.id for r in first}) and len(second) == 3
        assert claim(conn, T0, 10, paused=[first[0].sequence_id]) == []


def test_batch_advance_writes_every_column(workspace: Workspace) -> None:
    seed_due(workspace.engine, 5, T0)
    res = run_batch(workspace.engine, T0, workspace.settings, 10)
    assert res.claimed == 5 and res.sends == 5
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(enrollment.c.node_id, enrollment.c.status, enrollment.c.due_at,
                                   enrollment.c.node_entered_at, enrollment.c.steps, enrollment.c.wait_for,
                                   enrollment.c.exited_at)).all()
        sent = conn.execute(select(activity.c.outbox_id).where(activity.c.kind == "sent")).scalars().all()
        boxed = conn.execute(select(outbox.c.id)).scalars().all()
    assert {(r.node_id, r.due_at, r.node_entered_at, r.steps, r.wait_for, r.exited_at) for r in rows} == {
        ("w1", T0 + timedelta(days=3), T0, 1, None, None)}
    assert sorted(sent) == sorted(boxed) and len(boxed) == 5
