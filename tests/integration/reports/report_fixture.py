"""A small workspace whose every report figure is computed by hand in docs-style comments in the tests.

Period used by the tests: 2026-02-01 … 2026-03-02 (the clock is 2026-03-02 09:00 UTC).
- sequence "nurture" (v1: send s1 'intro' → wait_for w (yes: send s2 'followup')), leads L1…L4 enrolled;
- sequence "abtest" (v1: split ab, arm A → send a1, arm B → send b1), 20 leads per arm with a known winner;
- account A1 with two engaged contacts (L1 opens/clicks nurture mail, L2 responded to a campaign);
- L2 has two opportunities; bot opens and clicks; a hard bounce, a soft bounce, an unsubscribe, a complaint;
- three recorded adaptive decisions on abtest (the adaptive report lists recorded decisions whatever the
  split's mode now): L101 → arm A, L121 → arm B after a drift restart, and L101's send time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import (
    account,
    activity,
    adaptive_decision,
    campaign,
    campaign_member,
    enrollment,
    lead,
    mql,
    node_counter,
    opportunity,
    outbox,
    segment,
    segment_member,
    sequence,
    sequence_version,
    suppression,
    template,
    user,
)
from nurture_tui.workspace import Workspace

SINCE, UNTIL = "2026-02-01", "2026-03-02"
NURTURE_DEF = {"name": "nurture", "steps": [
    {"id": "s1", "send": {"template": "intro"}},
    {"id": "w", "wait_for": {"events": [{"kind": "click"}], "window": "7d", "mode": "up_to"},
     "yes": [{"id": "s2", "send": {"template": "followup"}}], "no": []}]}
AB_DEF = {"name": "abtest", "steps": [{"id": "ab", "split": {"arms": [
    {"name": "A", "weight": 50, "steps": [{"id": "a1", "send": {"template": "t-a"}}]},
    {"name": "B", "weight": 50, "steps": [{"id": "b1", "send": {"template": "t-b"}}]}]}}]}
ARM_A = list(range(101, 121))
ARM_B = list(range(121, 141))


def _ins(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows one by one (they do not all name the same columns; the table defaults fill the rest)."""
    for row in rows:
        conn.execute(insert(table).values(**row))


def d(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _lead(i: int, created: datetime, source: str | None = None, account_id: int | None = None,
          **kw: Any) -> dict[str, Any]:
    return {"id": i, "email": f"l{i}@example.com", "created_at": created, "lead_source": source,
            "account_id": account_id, "sf_type": kw.pop("sf_type", None), "sf_id": kw.pop("sf_id", None), **kw}


def build(ws: Workspace, *, sf: bool = False) -> None:
    """The fixture. With `sf=True` leads, campaigns and opportunities carry Salesforce ids as a synced
    workspace's would (the Campaign Influence push test uses them)."""
    def sfid(prefix: str, n: int) -> str | None:
        return f"{prefix}{n:015d}" if sf else None

    with write_tx(ws.engine) as c:
        _ins(c, user, [{"id": 1, "username": "ana"}, {"id": 2, "username": "bo"}])
        _ins(c, account, [{"id": 1, "name": "Acme", "sf_id": sfid("001", 1)}])
        leads = [
            _lead(1, d(1, 10), "web", 1, sf_type="Contact", sf_id=sfid("003", 1)),
            _lead(2, d(2, 5), "web", 1, sf_type="Contact", sf_id=sfid("003", 2)),
            _lead(3, d(2, 10), "event"),
            _lead(4, d(2, 8), "event"),
            _lead(5, d(2, 3), "web"),
            _lead(6, d(2, 4), "partner"),
            _lead(7, d(11, 1, year=2025), "web"),
            *[_lead(i, d(1, 5), "ads") for i in ARM_A + ARM_B],
        ]
        _ins(c, lead, leads)
        _ins(c, template, [{"id": i, "name": n} for i, n in
                                     ((1, "intro"), (2, "followup"), (3, "t-a"), (4, "t-b"))])
        _ins(c, sequence, [{"id": 1, "name": "nurture", "status": "active", "current_version_id": 1},
                                     {"id": 2, "name": "abtest", "status": "active", "current_version_id": 2}])
        _ins(c, sequence_version, [
            {"id": 1, "sequence_id": 1, "number": 1, "definition": NURTURE_DEF, "published_at": d(1, 1)},
            {"id": 2, "sequence_id": 2, "number": 1, "definition": AB_DEF, "published_at": d(1, 1)}])
        # enrollments: nurture L1 goal, L2 exited, L3 done, L4 active; abtest: 6 of arm A and 1 of arm B met the goal
        enr = [
            {"lead_id": 1, "status": "goal", "entered_at": d(2, 1, 10)},
            {"lead_id": 2, "status": "exited", "entered_at": d(2, 6)},
            {"lead_id": 3, "status": "done", "entered_at": d(2, 10, 8)},
            {"lead_id": 4, "status": "active", "entered_at": d(2, 12), "node_id": "w", "due_at": d(3, 5)},
        ]
        rows = [{"sequence_id": 1, "version_id": 1, **e} for e in enr]
        for i in ARM_A + ARM_B:
            won = i in ARM_A[:6] or i == ARM_B[0]
            rows.append({"lead_id": i, "sequence_id": 2, "version_id": 2, "entered_at": d(2, 2),
                         "status": "goal" if won else "done"})
        _ins(c, enrollment, rows)
        _ins(c, node_counter, [
            {"version_id": 1, "node_id": "s1", "entered": 4, "left": 4},
            {"version_id": 1, "node_id": "w", "entered": 4, "left": 3, "yes": 2, "no": 1},
            {"version_id": 1, "node_id": "s2", "entered": 2, "left": 2, "goal": 1},
        ])
        # nurture messages m1…m7 (ids 1…7)
        def msg(i: int, lid: int, node: str, tpl: int, at: datetime, status: str, err: str | None = None
                ) -> dict[str, Any]:
            return {"id": i, "idempotency_key": f"k{i}", "lead_id": lid, "sequence_id": 1, "node_id": node,
                    "template_id": tpl, "to_email": f"l{lid}@example.com", "status": status, "created_at": at,
                    "last_error": err, "category": "newsletter"}
        _ins(c, outbox, [
            msg(1, 1, "s1", 1, d(2, 10, 9), "sent"),
            msg(2, 2, "s1", 1, d(2, 10, 9), "sent"),
            msg(3, 3, "s1", 1, d(2, 11, 9), "bounced", "550 no such user"),
            msg(4, 4, "s1", 1, d(2, 11, 9), "failed", "421 try again later"),
            msg(5, 1, "s2", 2, d(2, 20, 9), "sent"),
            msg(6, 2, "s2", 2, d(1, 20, 9), "sent"),
            msg(7, 3, "s2", 2, d(2, 25, 9), "queued"),
        ])

        def act(lid: int, kind: str, at: datetime, oid: int | None = None, bot: bool = False, seq: int | None = 1,
                **kw: Any) -> dict[str, Any]:
            return {"lead_id": lid, "kind": kind, "at": at, "outbox_id": oid, "bot": bot, "sequence_id": seq,
                    "version_id": kw.pop("version_id", 1 if seq == 1 else None), "node_id": kw.pop("node_id", None),
                    "template_id": None, "url": None, "meta": kw.pop("meta", {})}
        acts = [
            act(1, "open", d(2, 10, 9, 1), 1, bot=True),
            act(1, "open", d(2, 10, 10), 1),
            act(1, "open", d(2, 11, 8), 1),
            act(1, "click", d(2, 11, 8, 5), 1),
            act(1, "click", d(2, 10, 9, 1), 1, bot=True),
            act(2, "open", d(2, 10, 9, 2), 2, bot=True),
            act(1, "open", d(2, 20, 12), 5),
            act(1, "unsubscribe", d(2, 20, 12, 5), 5, meta={"categories": ["newsletter"]}),
            act(2, "open", d(2, 12), 6),
            act(1, "stage_change", d(2, 12), seq=None, meta={"from": "awareness", "to": "consideration"}),
            act(1, "stage_change", d(2, 18), seq=None, meta={"from": "consideration", "to": "decision"}),
            act(2, "stage_change", d(1, 25), seq=None, meta={"from": "awareness", "to": "consideration"}),
        ]
        # abtest: 20 + 20 messages (ids 101…140); arm A: 15 opened, 10 clicked; arm B: 5 opened, 2 clicked
        ab_msgs = []
        for i in ARM_A + ARM_B:
            arm_a = i in ARM_A
            node, tpl = ("a1", 3) if arm_a else ("b1", 4)
            ab_msgs.append({"id": i, "idempotency_key": f"k{i}", "lead_id": i, "sequence_id": 2, "node_id": node,
                            "template_id": tpl, "to_email": f"l{i}@example.com", "status": "sent",
                            "created_at": d(2, 3, 9)})
            acts.append(act(i, "sent", d(2, 3, 9), i, seq=2, version_id=2, node_id=node))
            k = (ARM_A if arm_a else ARM_B).index(i)
            if k < (15 if arm_a else 5):
                acts.append(act(i, "open", d(2, 3, 12), i, seq=2, version_id=2, node_id=node))
            if k < (10 if arm_a else 2):
                acts.append(act(i, "click", d(2, 3, 12, 1), i, seq=2, version_id=2, node_id=node))
            acts.append(act(i, "open", d(2, 3, 9, 1), i, bot=True, seq=2, version_id=2, node_id=node))
        _ins(c, outbox, ab_msgs)
        _ins(c, activity, acts)
        _ins(c, suppression, [{"email": "l2@example.com", "lead_id": 2, "reason": "complaint",
                                         "created_at": d(2, 21)}])
        _ins(c, campaign, [{"id": 1, "name": "Webinar", "sf_id": sfid("701", 1)},
                                     {"id": 2, "name": "Trade show", "sf_id": sfid("701", 2)},
                                     {"id": 3, "name": "Ebook", "sf_id": sfid("701", 3)}])
        _ins(c, campaign_member, [
            {"campaign_id": 1, "lead_id": 2, "status": "Responded", "responded": True, "created_at": d(2, 15)},
            {"campaign_id": 2, "lead_id": 1, "status": "Attended", "responded": True, "created_at": d(2, 22)},
            {"campaign_id": 3, "lead_id": 5, "status": "Sent", "responded": False, "created_at": d(2, 10)},
        ])
        _ins(c, opportunity, [
            {"id": 1, "lead_id": 2, "account_id": 1, "name": "O1", "amount": 1000.0, "is_won": True,
             "is_closed": True, "created_at": d(2, 20), "sf_id": sfid("006", 1)},
            {"id": 2, "lead_id": 2, "account_id": 1, "name": "O2", "amount": 500.0, "created_at": d(2, 27),
             "sf_id": sfid("006", 2)},
            {"id": 3, "lead_id": 5, "name": "O3", "amount": 300.0, "is_won": True, "is_closed": True,
             "created_at": d(2, 28), "sf_id": sfid("006", 3)},
            {"id": 4, "lead_id": 6, "name": "O4", "amount": 200.0, "created_at": d(2, 24), "sf_id": sfid("006", 4)},
            {"id": 5, "lead_id": 3, "name": "O5", "amount": None, "created_at": d(2, 17), "sf_id": sfid("006", 5)},
            {"id": 6, "lead_id": 7, "name": "O6", "amount": 50.0, "created_at": d(12, 1, year=2025),
             "sf_id": sfid("006", 6)},
        ])
        _ins(c, mql, [
            {"lead_id": 1, "rep_id": 1, "status": "accepted", "created_at": d(2, 19), "decided_at": d(2, 19, 6)},
            {"lead_id": 2, "rep_id": 2, "status": "rejected", "reject_reason": "no budget", "created_at": d(2, 16),
             "decided_at": d(2, 17, 12)},
            {"lead_id": 5, "rep_id": 1, "status": "new", "created_at": d(2, 25)},
            {"lead_id": 6, "rep_id": 2, "status": "recycled", "reject_reason": "not a fit", "created_at": d(2, 26),
             "decided_at": d(2, 26, 5)},
        ])
        _ins(c, segment, [{"id": 1, "name": "account-acme", "rule": {"field": "company", "eq": "x"},
                                     "materialized": True}])
        _ins(c, segment_member, [{"segment_id": 1, "lead_id": 1}, {"segment_id": 1, "lead_id": 2}])
        arms = {"A": {"s": 3, "f": 9, "alpha": 4, "beta": 10, "mean": 0.28571, "lo": 0.08389, "hi": 0.54108,
                      "p_best": 0.8, "share": 0.78},
                "B": {"s": 1, "f": 11, "alpha": 2, "beta": 12, "mean": 0.14286, "lo": 0.01849, "hi": 0.38134,
                      "p_best": 0.2, "share": 0.22}}
        split = {"kind": "split", "sequence_id": 2, "version_id": 2, "node_id": "ab", "audience": "all"}
        _ins(c, adaptive_decision, [
            {**split, "lead_id": 101, "arm": "A", "decided_at": d(2, 3, 8), "closes_at": d(2, 6, 8),
             "detail": {"audience": "all", "floor": 0.03, "winner": None, "arms": arms, "how": "thompson",
                        "metric": "click"}},
            {**split, "lead_id": 121, "arm": "B", "decided_at": d(2, 3, 8, 1), "closes_at": d(2, 6, 8, 1),
             "detail": {"audience": "all", "floor": 0.03, "winner": None, "arms": arms, "how": "explore",
                        "metric": "click", "restart": "2026-01-30"}},
            {"kind": "send_time", "sequence_id": 2, "version_id": 2, "node_id": "a1", "lead_id": 101,
             "decided_at": d(2, 3, 8, 2), "send_at": d(2, 3, 9),
             "detail": {"hours": [0] * 9 + [3, 1] + [0] * 13, "source": "lead", "tz": "UTC",
                        "plain": d(2, 3, 8, 2).isoformat(), "chosen": d(2, 3, 9).isoformat(), "local_hour": 9}},
        ])


__all__ = ["ARM_A", "ARM_B", "SINCE", "UNTIL", "build", "d", "timedelta"]
