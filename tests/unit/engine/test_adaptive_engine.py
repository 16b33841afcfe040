"""Adaptive splits and optimal send times run by the engine, on SQLite and PostgreSQL: each decision is
the pure allocation's (determinism), recorded with its posterior; delayed rewards; the restart at a change
of rates; per-audience learning; winner; STO inside the window and caps, at most 24 h after the plain schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from engine_helpers import make_leads, publish, run, state, tx
from sqlalchemy import insert, select

from nurture_tui.clock import VirtualClock
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.mail.templates import upsert_template
from nurture_tui.sequences.adaptive import ArmCounts, build_allocation, decide, settings_of
from nurture_tui.sequences.adaptive_store import arm_counts
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.store.tables import activity, adaptive_decision, outbox, sequence_version
from nurture_tui.workspace import Workspace

SPLIT: dict[str, Any] = {"mode": "adaptive", "metric": "click", "window": "1d", "floor": 0.1, "seed": 5, "arms": [
    {"name": "a", "steps": [{"id": "in-a", "wait": {"duration": "30d"}}]},
    {"name": "b", "steps": [{"id": "in-b", "wait": {"duration": "30d"}}]},
]}


def _definition(**split: Any) -> dict[str, Any]:
    return {"name": "ad", "steps": [{"id": "ab", "split": {**SPLIT, **split}}]}


def _setup(ws: Workspace, definition: dict[str, Any], n: int, **lead_fields: Any) -> tuple[int, list[int], list[int]]:
    now = ws.clock.now()
    with tx(ws) as conn:
        vid = publish(conn, definition, now)
        leads = make_leads(conn, n, now, **lead_fields)
        eids = [enroll_lead(conn, lid, definition["name"], now) for lid in leads]
    return vid, leads, [e for e in eids if e is not None]


def _decisions(ws: Workspace, kind: str = "split") -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(adaptive_decision).where(adaptive_decision.c.kind == kind)
                                 .order_by(adaptive_decision.c.lead_id)).mappings())


def _click(ws: Workspace, lead_id: int, at: Any, *, bot: bool = False, sequence_id: int = 1) -> None:
    with tx(ws) as conn:
        conn.execute(insert(activity).values(lead_id=lead_id, kind="click", at=at, bot=bot, sequence_id=sequence_id,
                                             meta={}))


def test_engine_allocates_as_the_pure_function_and_records_the_posterior(workspace: Workspace) -> None:
    definition = _definition()
    _vid, leads, eids = _setup(workspace, definition, 40)
    run(workspace)
    rows = _decisions(workspace)
    assert len(rows) == 40
    spec = SequenceDef.model_validate(definition).steps[0].split
    assert spec is not None
    settings = settings_of(spec)
    alloc = build_allocation(["a", "b"], {}, None, settings)
    expected = [decide(alloc, 5, "ab", lid)[0] for lid in leads]
    assert [r["arm"] for r in rows] == expected
    assert [state(workspace, e).node_id for e in eids] == [f"in-{arm}" for arm in expected]
    first = rows[0]
    assert first["audience"] == "all" and first["closes_at"] == first["decided_at"] + timedelta(days=1)
    arm_a = first["detail"]["arms"]["a"]
    assert (arm_a["mean"], arm_a["lo"], arm_a["hi"], arm_a["s"], arm_a["f"]) == (0.5, 0.02441, 0.97559, 0, 0)
    assert first["detail"]["how"] in ("explore", "thompson") and first["detail"]["metric"] == "click"


def test_delayed_reward_counts_a_failure_only_after_the_window(workspace: Workspace, clock: VirtualClock) -> None:
    _setup(workspace, _definition(), 20)
    run(workspace)
    rows = _decisions(workspace)
    seq_id = rows[0]["sequence_id"]
    on_a = [r["lead_id"] for r in rows if r["arm"] == "a"]
    on_b = [r["lead_id"] for r in rows if r["arm"] == "b"]
    assert on_a and on_b
    start = clock.now()
    _click(workspace, on_a[0], start + timedelta(hours=2), sequence_id=seq_id)
    _click(workspace, on_b[0], start + timedelta(hours=3), bot=True, sequence_id=seq_id)  # machine: no
    _click(workspace, on_b[0], start + timedelta(hours=3), sequence_id=seq_id + 99)  # another sequence: no
    _click(workspace, on_b[-1], start + timedelta(days=2), sequence_id=seq_id)  # after the window: no
    with workspace.engine.connect() as conn:
        at_3h = arm_counts(conn, seq_id, "ab", "click", start + timedelta(hours=3))
        at_2d = arm_counts(conn, seq_id, "ab", "click", start + timedelta(days=2))
        # a lookback that ends before the decisions leaves nothing
        later = arm_counts(conn, seq_id, "ab", "click", start + timedelta(days=9), timedelta(days=5))
    assert at_3h["all"] == {"a": ArmCounts(1, 0), "b": ArmCounts(0, 0)}  # the rest are pending
    assert at_2d["all"] == {"a": ArmCounts(1, len(on_a) - 1), "b": ArmCounts(0, len(on_b))}
    assert later == {}


def test_after_a_change_of_rates_only_the_evidence_since_the_change_counts(workspace: Workspace) -> None:
    """12 days of decisions at 20 % clicks, then 8 days at 1 % (100 a day, window 1d), stored on each
    backend: with drift (the default) the counts restart at the change day, computed from UTC decision
    days; without it they hold everything."""
    start = workspace.clock.now().replace(hour=9, minute=0, second=0, microsecond=0)
    with tx(workspace) as conn:
        leads = make_leads(conn, 100, start)
        decisions, clicks = [], []
        for day in range(20):
            at = start + timedelta(days=day)
            for i, lid in enumerate(leads):
                decisions.append({"kind": "split", "sequence_id": 7, "version_id": 1, "node_id": "ab",
                                  "lead_id": lid, "decided_at": at, "arm": "a", "audience": "all",
                                  "closes_at": at + timedelta(days=1), "detail": {}})
                if i < (20 if day < 12 else 1):
                    clicks.append({"lead_id": lid, "kind": "click", "at": at + timedelta(hours=2), "bot": False,
                                   "sequence_id": 7, "meta": {}})
        conn.execute(insert(adaptive_decision), decisions)
        conn.execute(insert(activity), clicks)
    now = start + timedelta(days=21)
    with workspace.engine.connect() as conn:
        restarted = arm_counts(conn, 7, "ab", "click", now, drift=True)
        everything = arm_counts(conn, 7, "ab", "click", now)
    assert restarted == {"all": {"a": ArmCounts(8, 792)}}
    assert everything == {"all": {"a": ArmCounts(12 * 20 + 8, 2000 - 248)}}


def test_audiences_learn_separately_with_pooling(workspace: Workspace) -> None:
    now = workspace.clock.now()
    definition = _definition(audience="persona", pool=10)
    with tx(workspace) as conn:
        publish(conn, definition, now)
        econ = make_leads(conn, 6, now, persona="economic_buyer")
        tech = make_leads(conn, 6, now, persona="technical_evaluator")
        bare = make_leads(conn, 2, now)
        for lid in econ + tech + bare:
            enroll_lead(conn, lid, "ad", now)
    run(workspace)
    rows = _decisions(workspace)
    by_lead = {r["lead_id"]: r["audience"] for r in rows}
    assert {by_lead[i] for i in econ} == {"economic_buyer"}
    assert {by_lead[i] for i in tech} == {"technical_evaluator"}
    assert {by_lead[i] for i in bare} == {"(none)"}
    assert rows[0]["detail"]["audience"] == rows[0]["audience"]


def _settled_history(ws: Workspace, seq_id: int, version_id: int, rates: dict[str, tuple[int, int]],
                     audience: str = "all") -> None:
    """Decisions a week old with closed windows: per arm (clicks, non-clicks)."""
    now = ws.clock.now()
    decided = now - timedelta(days=7)
    with tx(ws) as conn:
        total = sum(s + f for s, f in rates.values())
        ids = make_leads(conn, total, decided)
        k = 0
        for arm, (s, f) in rates.items():
            for j in range(s + f):
                lid = ids[k]
                k += 1
                conn.execute(insert(adaptive_decision).values(
                    kind="split", sequence_id=seq_id, version_id=version_id, node_id="ab", lead_id=lid,
                    decided_at=decided, arm=arm, audience=audience, closes_at=decided + timedelta(days=1),
                    detail={}))
                if j < s:
                    conn.execute(insert(activity).values(lead_id=lid, kind="click", at=decided + timedelta(hours=1),
                                                         sequence_id=seq_id, bot=False, meta={}))


def test_winner_takes_all_traffic(workspace: Workspace) -> None:
    definition = _definition(winner=True)
    vid, seq_id = _published(workspace, definition)
    _settled_history(workspace, seq_id, vid, {"a": (5, 145), "b": (30, 120)})
    fresh = set(_enroll_new(workspace, 15, definition))
    run(workspace)
    new = [r for r in _decisions(workspace) if r["lead_id"] in fresh]
    assert len(new) == 15 and {(r["arm"], r["detail"]["how"]) for r in new} == {("b", "winner")}
    assert new[0]["detail"]["winner"] == "b" and new[0]["detail"]["arms"]["b"]["p_best"] >= 0.95


def _published(ws: Workspace, definition: dict[str, Any]) -> tuple[int, int]:
    with tx(ws) as conn:
        vid = publish(conn, definition, ws.clock.now())
        seq_id = conn.execute(select(sequence_version.c.sequence_id).where(sequence_version.c.id == vid)).scalar_one()
    return vid, seq_id


def _enroll_new(ws: Workspace, n: int, definition: dict[str, Any], **fields: Any) -> list[int]:
    now = ws.clock.now()
    with tx(ws) as conn:
        fresh = make_leads(conn, n, now, **fields)
        for lid in fresh:
            enroll_lead(conn, lid, definition["name"], now)
    return fresh


def test_exploration_floor_holds_in_the_engine(workspace: Workspace) -> None:
    definition = _definition(floor=0.2)
    vid, seq_id = _published(workspace, definition)
    _settled_history(workspace, seq_id, vid, {"a": (5, 145), "b": (30, 120)})  # b is clearly better
    fresh = set(_enroll_new(workspace, 200, definition))
    run(workspace)
    new = [r for r in _decisions(workspace) if r["lead_id"] in fresh]
    on_a = [r for r in new if r["arm"] == "a"]
    assert 25 <= len(on_a) <= 60  # ≈ the floor's 20 % of 200, though Thompson sampling never picks a here
    assert {r["detail"]["how"] for r in on_a} == {"explore"}
    assert new[0]["detail"]["arms"]["a"]["share"] == pytest.approx(0.2, abs=0.01)


def test_per_audience_learning_converges_on_different_arms(workspace: Workspace) -> None:
    definition = _definition(audience="persona", floor=0.05)
    vid, seq_id = _published(workspace, definition)
    _settled_history(workspace, seq_id, vid, {"a": (30, 120), "b": (5, 145)}, audience="economic_buyer")
    _settled_history(workspace, seq_id, vid, {"a": (5, 145), "b": (30, 120)}, audience="technical_evaluator")
    econ = set(_enroll_new(workspace, 60, definition, persona="economic_buyer"))
    tech = set(_enroll_new(workspace, 60, definition, persona="technical_evaluator"))
    run(workspace)
    rows = _decisions(workspace)
    econ_a = sum(r["arm"] == "a" for r in rows if r["lead_id"] in econ)
    tech_b = sum(r["arm"] == "b" for r in rows if r["lead_id"] in tech)
    assert econ_a >= 50 and tech_b >= 50  # each audience on its own best arm (≥ 95 % − floor)
    econ_row = next(r for r in rows if r["lead_id"] in econ)
    # the pooled posterior: prior from everyone (35/300 clicks on a) worth min(20, 300) observations
    mu = 36 / 302
    assert econ_row["detail"]["arms"]["a"]["alpha"] == pytest.approx(1 + 20 * mu + 30, abs=1e-3)


# -- send_time: optimal ------------------------------------------------------------------------------

NY = ZoneInfo("America/New_York")
STO = {"name": "sto", "send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00",
                                      "holidays": False},
       "caps": {"per_day": 1},
       "steps": [{"id": "s1", "send": {"template": "welcome", "send_time": "optimal"}},
                 {"id": "w1", "wait": {"duration": "30d"}}]}


def test_optimal_send_waits_for_the_leads_best_hour_in_the_window(workspace: Workspace, clock: VirtualClock) -> None:
    clock.set(clock.now().replace(hour=15))  # Monday 10:00 in New York
    now = clock.now()
    with tx(workspace) as conn:
        upsert_template(conn, name="welcome", subject="Hi", html="<p>Hi</p>", user="t", now=now)
        publish(conn, STO, now)
        keen, fresh, capped = make_leads(conn, 3, now, timezone="America/New_York")
        for days in (3, 4, 5, 6):  # keen opened at 14:xx New York time; a machine open at 11:00 is ignored
            conn.execute(insert(activity).values(lead_id=keen, kind="open", bot=False, meta={},
                                                 at=now - timedelta(days=days) + timedelta(hours=4, minutes=20)))
        conn.execute(insert(activity).values(lead_id=keen, kind="open", bot=True, meta={}, at=now + timedelta(hours=1)
                                             - timedelta(days=8)))
        for days in (3, 4, 5):  # capped: clicks at 09:00, and was sent something 20 hours ago (cap 1/day)
            conn.execute(insert(activity).values(lead_id=capped, kind="click", bot=False, meta={},
                                                 at=now - timedelta(days=days, hours=1)))
        conn.execute(insert(outbox).values(lead_id=capped, to_email="x@example.com", subject="s", status="sent",
                                           idempotency_key="old", created_at=now - timedelta(hours=20)))
        eids = [enroll_lead(conn, lid, "sto", now) for lid in (keen, fresh, capped)]
    run(workspace)
    keen_e, fresh_e, capped_e = (state(workspace, e) for e in eids)
    assert keen_e.status == "waiting" and keen_e.wait_for["deferred"] == "optimal"
    assert keen_e.due_at.astimezone(NY).hour == 14 and keen_e.due_at - now == timedelta(hours=4)
    assert fresh_e.node_id == "w1"  # no history anywhere: the plain schedule, sent now
    # capped: the cap frees at 14:00 New York (its last send was 20 h ago); the send waits for that first
    assert capped_e.status == "waiting" and capped_e.wait_for == {"deferred": "cap"}
    assert capped_e.due_at.astimezone(NY).hour == 14
    decisions = {r["lead_id"]: r for r in _decisions(workspace, "send_time")}
    assert decisions[keen]["detail"]["source"] == "lead"
    assert decisions[keen]["detail"]["hours"][14] == 4 and sum(decisions[keen]["detail"]["hours"]) == 4
    assert decisions[fresh]["detail"]["source"] == "window" and decisions[fresh]["send_at"] == now
    clock.set(keen_e.due_at)
    run(workspace)
    assert state(workspace, eids[0]).node_id == "w1"  # sent at its best hour, not deferred again
    # capped, from its plain slot 14:00: its best hour 09:00 is tomorrow, 19 h later (≤ 24 h), under the cap
    capped_e = state(workspace, eids[2])
    assert capped_e.wait_for["deferred"] == "optimal"
    assert capped_e.due_at.astimezone(NY).hour == 9 and capped_e.due_at - clock.now() == timedelta(hours=19)
    with workspace.engine.connect() as conn:
        sent = conn.execute(select(outbox.c.created_at).where(outbox.c.lead_id == keen)).scalars().all()
    assert sent == [keen_e.due_at]
    for row in _decisions(workspace, "send_time"):
        assert row["send_at"] - row["decided_at"] <= timedelta(hours=24)


def test_an_optimal_time_is_chosen_once_even_when_a_cap_defers_it(workspace: Workspace, clock: VirtualClock) -> None:
    clock.set(clock.now().replace(hour=15))  # Monday 10:00 in New York
    now = clock.now()
    with tx(workspace) as conn:
        upsert_template(conn, name="welcome", subject="Hi", html="<p>Hi</p>", user="t", now=now)
        publish(conn, STO, now)
        (keen,) = make_leads(conn, 1, now, timezone="America/New_York")
        for days in (3, 4, 5):  # opens at 14:xx New York time
            conn.execute(insert(activity).values(lead_id=keen, kind="open", bot=False, meta={},
                                                 at=now - timedelta(days=days) + timedelta(hours=4, minutes=20)))
        eid = enroll_lead(conn, keen, "sto", now)
    run(workspace)
    assert state(workspace, eid).due_at - now == timedelta(hours=4)  # 14:00 New York
    with tx(workspace) as conn:  # meanwhile another program emails the lead at 13:00: the daily cap is used
        conn.execute(insert(outbox).values(lead_id=keen, to_email="x@example.com", subject="s", status="sent",
                                           idempotency_key="other", created_at=now + timedelta(hours=3)))
    clock.set(now + timedelta(hours=4))
    run(workspace)
    st = state(workspace, eid)
    assert st.wait_for == {"deferred": "cap", "sto": True}  # the cap frees at 13:00 tomorrow
    assert st.due_at == now + timedelta(hours=3, days=1)
    clock.set(st.due_at)
    run(workspace)
    assert state(workspace, eid).node_id == "w1"  # sent then, not moved to 14:00 again
    assert len(_decisions(workspace, "send_time")) == 1


def test_without_own_history_the_personas_hours_are_used(workspace: Workspace, clock: VirtualClock) -> None:
    clock.set(clock.now().replace(hour=14))  # Monday 09:00 in New York
    now = clock.now()
    with tx(workspace) as conn:
        upsert_template(conn, name="welcome", subject="Hi", html="<p>Hi</p>", user="t", now=now)
        publish(conn, STO, now)
        peers = make_leads(conn, 7, now, timezone="America/New_York", persona="economic_buyer")
        others = make_leads(conn, 7, now, timezone="America/New_York", persona="technical_evaluator")
        for i, lid in enumerate(peers):  # economic buyers open at 11:xx New York time (3 each: 21 events)
            for days in (2, 3, 4):
                conn.execute(insert(activity).values(lead_id=lid, kind="open", bot=False, meta={},
                                                     at=now - timedelta(days=days) + timedelta(hours=2, minutes=i)))
        for lid in others:  # technical evaluators at 15:xx
            for days in (2, 3, 4):
                conn.execute(insert(activity).values(lead_id=lid, kind="open", bot=False, meta={},
                                                     at=now - timedelta(days=days) + timedelta(hours=6)))
        (new,) = make_leads(conn, 1, now, timezone="America/New_York", persona="economic_buyer")
        eid = enroll_lead(conn, new, "sto", now)
    run(workspace)
    st = state(workspace, eid)
    assert st.wait_for["deferred"] == "optimal" and st.due_at.astimezone(NY).hour == 11
    (row,) = [r for r in _decisions(workspace, "send_time") if r["lead_id"] == new]
    assert row["detail"]["source"] == "persona:economic_buyer" and row["detail"]["hours"][11] == 21
