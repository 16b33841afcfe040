"""The sample library run by the real engine for 40 simulated days: every program executes without a
step error and every email renders (the samples are the demo's content, so they must really work)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from nurture_tui.sequences import service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import account, enrollment, lead, outbox, segment
from nurture_tui.workspace import Workspace

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "sequences").glob("*.yaml"))


def test_every_sample_runs_in_the_engine(sqlite_workspace: Workspace) -> None:
    engine_mod = pytest.importorskip("nurture_tui.engine.advance")
    enroll_mod = pytest.importorskip("nurture_tui.engine.enroll")
    ws = sqlite_workspace
    now = datetime(2026, 3, 2, 14, tzinfo=UTC)
    rnd = random.Random(3)
    with write_tx(ws.engine) as conn:
        conn.execute(insert(segment).values(name="named-accounts", rule={"field": "account.named_account", "eq": True}))
        conn.execute(insert(account), [{"name": f"Account {i}", "named_account": i % 3 == 0, "custom": {},
                                        "timezone": "Europe/Berlin"} for i in range(10)])
        conn.execute(insert(lead), [{
            "email": f"lead{i}@example.com", "first_name": f"Lead{i}", "company": f"Company {i % 10}",
            "account_id": 1 + i % 10, "persona": rnd.choice(["economic_buyer", "practitioner"]),
            "stage": ("awareness", "consideration", "decision", "customer")[i % 4], "grade": "B", "grade_rank": 8,
            "timezone": "America/New_York", "country": "US", "custom": {"renewal_days": rnd.randint(10, 200)},
            "created_at": now - timedelta(days=3), "last_activity_at": now - timedelta(days=rnd.randint(1, 200)),
        } for i in range(80)])
        for path in SAMPLES:
            name = service.apply_file(conn, path, user="t", now=now).name
            service.publish(conn, name, user="t", now=now)
    with write_tx(ws.engine) as conn:
        entered = enroll_mod.entry_sweep(conn, now, ws.settings)
    assert entered > 0
    for hours in range(0, 40 * 24, 6):
        engine_mod.run_batch(ws.engine, now + timedelta(hours=hours), ws.settings, 5000)
    with ws.engine.connect() as conn:
        per_sequence = dict(conn.execute(select(enrollment.c.sequence_id, func.count())
                                         .group_by(enrollment.c.sequence_id)).all())
        errors = conn.execute(select(enrollment.c.exit_reason).where(enrollment.c.exit_reason.like("error%"))).all()
        failed = conn.execute(select(outbox.c.last_error).where(outbox.c.status == "failed")).all()
        sent = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert len(per_sequence) == len(SAMPLES)  # every program enrolled someone
    assert errors == [] and failed == []
    assert sent > 100
