"""Account score (an aggregate of its leads' scores) and the account-level MQL ("MQA") for ABM.

`account.score` is on the same workspace score scale as `lead.score`: every lead decays by the same
factor, so the sum of the top N stored scores (or their max) times f(now) is the same aggregate of the
live scores. Named accounts (`account.named_account`, the ABM list) whose live score reaches
`scoring.mqa_score` become MQAs: one queue entry per cycle (`account.mqa_at` marks the open cycle),
attached to the account's top lead and assigned like a lead MQL (the account owner first for ABM).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from ..batching import chunks
from ..config import ScoringSettings, Settings
from ..store import audit
from ..store.tables import account, lead, mql
from . import assign as assigning
from . import handoff
from .scale import scale, scoring_settings

SYSTEM_USER = "nurture"


def _aggregate(scores: list[float], settings: ScoringSettings) -> float:
    if not scores:
        return 0.0
    if settings.account_aggregate == "max":
        return max(scores)
    return float(sum(heapq.nlargest(settings.account_top_n, scores)))


def aggregate_scores(conn: Connection, account_ids: Sequence[int] | None,
                     settings: ScoringSettings) -> dict[int, float]:
    """Stored-scale aggregate per account. For a list of accounts (the hot path, after a scoring batch)
    the leads' scores are fetched through `ix_lead_account_id` and aggregated here; for every account (after
    a rescore) one windowed SQL pass does it. Accounts without leads get 0 in the first form only."""
    if account_ids is not None:
        by_account: dict[int, list[float]] = {int(a): [] for a in account_ids}
        for part in chunks(sorted(by_account)):
            for aid, score in conn.execute(select(lead.c.account_id, lead.c.score).where(lead.c.account_id.in_(part))):
                by_account[int(aid)].append(float(score))
        return {aid: _aggregate(v, settings) for aid, v in by_account.items()}
    base = select(lead.c.account_id, lead.c.score).where(lead.c.account_id.is_not(None))
    if settings.account_aggregate == "max":
        sub = base.subquery()
        q = select(sub.c.account_id, func.max(sub.c.score)).group_by(sub.c.account_id)
    else:
        ranked = base.add_columns(
            func.row_number().over(partition_by=lead.c.account_id, order_by=lead.c.score.desc()).label("rn")
        ).subquery()
        q = (select(ranked.c.account_id, func.sum(ranked.c.score))
             .where(ranked.c.rn <= settings.account_top_n).group_by(ranked.c.account_id))
    return {int(a): float(v or 0.0) for a, v in conn.execute(q)}


def refresh(conn: Connection, account_ids: Sequence[int] | None, now: datetime,
            settings: Settings | ScoringSettings) -> list[int]:
    """Recompute account scores (all accounts when `account_ids` is None), write the ones that changed,
    and open MQAs; returns the ids of accounts that became MQAs."""
    s = scoring_settings(settings)
    scores = aggregate_scores(conn, account_ids, s)
    if account_ids is None:
        scores.update({int(a): 0.0 for (a,) in conn.execute(select(account.c.id).where(account.c.score != 0))
                       if int(a) not in scores})
    threshold = scale(conn, now, s).stored_threshold(s.mqa_score, now)
    changed: list[dict[str, Any]] = []
    candidates: list[int] = []
    ids = sorted(scores)
    parts: list[Sequence[int] | None] = list(chunks(ids)) if account_ids is not None else [None]
    for part in parts:
        q = select(account.c.id, account.c.score, account.c.named_account, account.c.mqa_at)
        if part is not None:
            q = q.where(account.c.id.in_(part))
        for aid, old, named, mqa_at in conn.execute(q):
            new = scores.get(int(aid))
            if new is None:
                continue
            if abs(new - float(old or 0.0)) > 1e-9 * (1 + abs(new)):
                changed.append({"aid": int(aid), "s": new})
            if named and mqa_at is None and new >= threshold:
                candidates.append(int(aid))
    if changed:
        stmt = update(account).where(account.c.id == bindparam("aid")).values(score=bindparam("s"))
        conn.execute(stmt, changed)
    for aid in sorted(candidates):
        open_mqa(conn, aid, now, s)
    return sorted(candidates)


def refresh_for_leads(conn: Connection, lead_ids: Sequence[int], now: datetime,
                      settings: Settings | ScoringSettings) -> list[int]:
    """After a scoring batch: refresh the *named* accounts of these leads (they drive MQAs, so they are
    kept exact at once). Other accounts' scores are refreshed by the hourly scoring job and after a
    rescore (`refresh(conn, None, …)`), which keeps bursts cheap: most accounts are not in the ABM list."""
    account_ids: set[int] = set()
    for part in chunks(sorted(set(lead_ids))):
        q = (select(lead.c.account_id).join(account, account.c.id == lead.c.account_id)
             .where(lead.c.id.in_(part), account.c.named_account == True).distinct())  # noqa: E712
        account_ids.update(int(r[0]) for r in conn.execute(q))
    return refresh(conn, sorted(account_ids), now, settings) if account_ids else []


def open_mqa(conn: Connection, account_id: int, now: datetime, settings: ScoringSettings) -> int:
    sc = scale(conn, now, settings)
    acct = conn.execute(select(account.c.name, account.c.score, account.c.owner_id)
                        .where(account.c.id == account_id)).one()
    top = conn.execute(select(lead.c.id, lead.c.email, lead.c.score, lead.c.grade)
                       .where(lead.c.account_id == account_id).order_by(lead.c.score.desc())
                       .limit(settings.account_top_n)).all()
    live = round(sc.live(float(acct.score), now), 2)
    order = ["account_owner", *[x for x in settings.assign_order if x != "account_owner"]]
    who = assigning.assign(conn, int(top[0].id), settings.model_copy(update={"assign_order": order}))
    label = "sum of top " + str(settings.account_top_n) if settings.account_aggregate == "top_n_sum" else "max"
    why: dict[str, Any] = {
        "rule": f"account score ({label}) ≥ {settings.mqa_score:g}", "score": live, "account": acct.name,
        "leads": [{"id": int(t.id), "email": t.email, "score": round(sc.live(float(t.score), now), 1)} for t in top],
        "assigned": who.how,
    }
    cycle = conn.execute(select(func.count()).select_from(mql).where(mql.c.account_id == account_id)).scalar_one() + 1
    mql_id = int(conn.execute(insert(mql).values(
        lead_id=int(top[0].id), account_id=account_id, cycle=cycle, status="new", rep_id=who.rep_id,
        queue=who.queue, score=live, grade=top[0].grade, why=why, created_at=now).returning(mql.c.id)).scalar_one())
    conn.execute(update(account).where(account.c.id == account_id).values(mqa_at=now, updated_at=now))
    audit.record(conn, at=now, user=SYSTEM_USER, action="mql.mqa", entity="account", entity_id=account_id,
                 before=None, after={"mql_id": mql_id, **why})
    handoff.hand_off(conn, mql_id, now, settings)
    return mql_id


def close_mqa(conn: Connection, account_id: int) -> None:
    """End the account's MQA cycle (its entry was rejected), so it can qualify again later."""
    conn.execute(update(account).where(account.c.id == account_id).values(mqa_at=None))


def account_live_score(conn: Connection, account_id: int, now: datetime, settings: Settings | ScoringSettings) -> float:
    stored = conn.execute(select(account.c.score).where(account.c.id == account_id)).scalar_one()
    return scale(conn, now, settings).live(float(stored), now)
