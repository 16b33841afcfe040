"""Retention of adaptive decisions (docs/adaptive.md "Retention"), on SQLite and PostgreSQL: the maintenance
job folds a split's closed decisions older than `engine.adaptive_decision_retention_days` into per-day counts
(`adaptive_daily`) and deletes them, and the counts the posteriors and the change test read are exactly the
same before and after; a lookback's rows, open windows and recent decisions stay; send-time decisions and
those of a node no version has are deleted."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from engine_helpers import make_leads, publish, tx
from sqlalchemy import func, insert, select

from nurture_tui.clock import VirtualClock
from nurture_tui.engine.maintenance import prune_adaptive_decisions, run_maintenance
from nurture_tui.sequences.adaptive_store import arm_evidence, daily_counts, fold_old_decisions
from nurture_tui.store.tables import activity, adaptive_daily, adaptive_decision, sequence
from nurture_tui.workspace import Workspace


def _definition(name: str, **split: Any) -> dict[str, Any]:
    return {"name": name, "steps": [{"id": "ab", "split": {
        "mode": "adaptive", "metric": "click", "window": "1d", "audience": "persona", **split, "arms": [
            {"name": "a", "steps": [{"id": "in-a", "wait": {"duration": "30d"}}]},
            {"name": "b", "steps": [{"id": "in-b", "wait": {"duration": "30d"}}]}]}}]}


def _history(ws: Workspace, name: str, days: int, now: datetime, **split: Any) -> int:
    """`days` days of split decisions (two personas, two arms, 6 a day each, at random minutes), a third of
    them clicked inside the window and some clicked after it; plus one old send-time decision a day.
    Returns the sequence id."""
    rnd = random.Random(days)
    with tx(ws) as conn:
        vid = publish(conn, _definition(name, **split), now)
        seq_id = conn.execute(select(sequence.c.id).where(sequence.c.name == name)).scalar_one()
        leads = make_leads(conn, 24, now - timedelta(days=days + 1))
        decisions, clicks = [], []
        for day in range(days):
            for k, lid in enumerate(leads):
                at = now - timedelta(days=days - day) + timedelta(minutes=rnd.randrange(180, 1380))
                decisions.append({"kind": "split", "sequence_id": seq_id, "version_id": vid, "node_id": "ab",
                                  "lead_id": lid, "decided_at": at, "arm": "ab"[k % 2],
                                  "audience": ("economic_buyer", "executive")[k // 12],
                                  "closes_at": at + timedelta(days=1), "send_at": None, "detail": {}})
                roll = rnd.random()
                if roll < 0.35:  # within the window (a success), or after it (still a failure)
                    late = roll > 0.3
                    clicks.append({"lead_id": lid, "kind": "click", "bot": False, "sequence_id": seq_id,
                                   "meta": {}, "at": at + timedelta(hours=30 if late else 3)})
            decisions.append({"kind": "send_time", "sequence_id": seq_id, "version_id": vid, "node_id": "s",
                              "lead_id": leads[0], "decided_at": now - timedelta(days=days - day), "arm": None,
                              "audience": None, "closes_at": None, "send_at": now - timedelta(days=days - day),
                              "detail": {}})
        conn.execute(insert(adaptive_decision), decisions)
        conn.execute(insert(activity), [c for c in clicks if c["at"] <= now])
    return int(seq_id)


def _plain(daily: Any) -> dict[str, dict[str, dict[int, tuple[float, float]]]]:
    return {g: {a: {d: (c.successes, c.failures) for d, c in per_day.items() if c.n}
                for a, per_day in per_arm.items()} for g, per_arm in daily.items()}


def _counts(ws: Workspace, seq_id: int, now: datetime, lookback: timedelta | None = None) -> Any:
    with ws.engine.connect() as conn:
        settled, closed = daily_counts(conn, seq_id, "ab", "click", now, lookback)
        evidence = arm_evidence(conn, seq_id, "ab", "click", now, lookback, drift=True)
    return _plain(settled), _plain(closed), evidence


def _rows(ws: Workspace, seq_id: int, kind: str = "split") -> list[datetime]:
    d = adaptive_decision.c
    with ws.engine.connect() as conn:
        return list(conn.execute(select(d.decided_at).where(d.sequence_id == seq_id, d.kind == kind)).scalars())


def test_folding_keeps_every_count_the_posteriors_read(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    seq_id = _history(workspace, "keep", 150, now)
    with tx(workspace) as conn:  # an old decision whose (long) window is still open is not folded
        conn.execute(insert(adaptive_decision).values(
            kind="split", sequence_id=seq_id, version_id=1, node_id="ab", lead_id=1, arm="a", audience="executive",
            decided_at=now - timedelta(days=100), closes_at=now + timedelta(hours=1), detail={}))
    before = _counts(workspace, seq_id, now)
    later = now + timedelta(hours=2)  # ... and is counted as a failure once it closes, folded or not
    before_later = _counts(workspace, seq_id, later)
    assert sum(c[0] for per_arm in before[0].values() for per_day in per_arm.values() for c in per_day.values()) > 0

    workspace.settings.engine.adaptive_decision_retention_days = 90
    pruned = prune_adaptive_decisions(workspace)
    cutoff = now - timedelta(days=90)
    kept = _rows(workspace, seq_id)
    assert [t for t in kept if t < cutoff] == [now - timedelta(days=100)]  # only the open window
    assert len(kept) == 24 * 90 + 1
    assert all(t >= cutoff for t in _rows(workspace, seq_id, "send_time"))
    assert len(_rows(workspace, seq_id, "send_time")) == 90
    assert pruned == 24 * 60 + 60  # 60 days of split decisions folded, 60 send-time decisions deleted
    with workspace.engine.connect() as conn:
        folded = conn.execute(select(func.sum(adaptive_daily.c.successes + adaptive_daily.c.failures))).scalar()
    assert folded == 24 * 60
    assert _counts(workspace, seq_id, now) == before
    clock.set(later)
    assert _counts(workspace, seq_id, later) == before_later
    assert prune_adaptive_decisions(workspace) == 2  # the long window has closed; a send time aged out
    assert _counts(workspace, seq_id, later) == before_later
    assert prune_adaptive_decisions(workspace) == 0


def test_folding_in_small_chunks_adds_to_the_days_already_folded(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    seq_id = _history(workspace, "chunks", 20, now)
    before = _counts(workspace, seq_id, now)
    total = 0
    while True:  # 7 at a time: most days are split over several chunks (the update path)
        with tx(workspace) as conn:
            n = fold_old_decisions(conn, seq_id, "ab", "click", now - timedelta(days=5), now, 7)
        total += n
        if n < 7:
            break
    assert total == 24 * 15
    assert _counts(workspace, seq_id, now) == before


def test_a_lookback_keeps_its_rows_and_its_counts(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    seq_id = _history(workspace, "look", 60, now, lookback="30d", drift=False)
    lookback = timedelta(days=30)
    before = _counts(workspace, seq_id, now, lookback)
    workspace.settings.engine.adaptive_decision_retention_days = 20
    prune_adaptive_decisions(workspace)
    kept = _rows(workspace, seq_id)
    assert min(kept) >= now - lookback - timedelta(days=1)  # the lookback (+ 1 day) stays row by row
    assert len(kept) < 24 * 60 and any(t < now - timedelta(days=20) for t in kept)
    assert _counts(workspace, seq_id, now, lookback) == before
    later = now + timedelta(days=3)
    assert _counts(workspace, seq_id, later, lookback)[2][0]  # still counting as time moves on


def test_orphans_send_times_and_retention_off(workspace: Workspace, clock: VirtualClock) -> None:
    now = clock.now()
    seq_id = _history(workspace, "orphan", 10, now)
    with tx(workspace) as conn:  # a node no version has (the step was renamed): nothing reads its counts
        conn.execute(insert(adaptive_decision).values(
            kind="split", sequence_id=seq_id, version_id=1, node_id="gone", lead_id=1, arm="a", audience="all",
            decided_at=now - timedelta(days=9), closes_at=now - timedelta(days=8), detail={}))
    workspace.settings.engine.adaptive_decision_retention_days = 0
    assert prune_adaptive_decisions(workspace) == 0
    workspace.settings.engine.adaptive_decision_retention_days = 5
    res = run_maintenance(workspace)
    assert res.decisions_pruned == 24 * 5 + 1 + 5
    d = adaptive_decision.c
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(d.node_id == "gone")).scalar() == 0
        nodes = set(conn.execute(select(adaptive_daily.c.node_id).distinct()).scalars())
    assert nodes == {"ab"}
