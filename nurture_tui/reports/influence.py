"""Pipeline influence: opportunity amount (and won amount) attributed to the sequences and Salesforce
campaigns its people engaged with before the opportunity was created — first touch, last touch and even
(linear), the models Salesforce Campaign Influence offers.

- the opportunity's people: its lead/primary contact (`opportunity.lead_id`) and every lead or contact of
  its account (`lead.account_id = opportunity.account_id`);
- a sequence touch: a non-bot open, click or reply of a message of that sequence by one of those people,
  before the opportunity was created; a campaign touch: one of them is a member of the campaign who
  responded (`campaign_member.responded`), with membership created before the opportunity was;
- first touch: 100 % to the source touched earliest; last touch: 100 % to the source touched last (each
  source's latest touch counts); even: 1/k to each of the k sources touched;
- amount: `opportunity.amount` (missing = 0); won amount: the amount of won opportunities.
Opportunities created in the period are attributed; those with no touch are counted as unattributed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select, union_all

from ..store.tables import activity, campaign, campaign_member, lead, opportunity, sequence
from .common import Report, Scope, make_report, segment_leads

NAME = "influence"
TITLE = "Pipeline influence (first touch, last touch, even)"
MODELS = ("first_touch", "last_touch", "even")
ENGAGED = ("open", "click", "reply")
COLUMNS = ["source_type", "source", "opportunities", "first_touch_amount", "last_touch_amount", "even_amount",
           "first_touch_won", "last_touch_won", "even_won"]

Source = tuple[str, int]  # ("sequence" | "campaign", local id)


@dataclass
class Touch:
    first_at: datetime
    last_at: datetime
    lead_id: int  # the person who touched it first


@dataclass
class Attribution:
    opportunity_id: int
    sf_id: str | None
    amount: float
    won: bool
    created_at: datetime
    touches: dict[Source, Touch] = field(default_factory=dict)

    def shares(self, model: str) -> dict[Source, float]:
        """Each source's share (0…1) of this opportunity under `model`."""
        if not self.touches:
            return {}
        if model == "even":
            return dict.fromkeys(self.touches, 1.0 / len(self.touches))
        if model == "first_touch":
            src = min(self.touches, key=lambda s: (self.touches[s].first_at, s))
        else:
            src = max(self.touches, key=lambda s: (self.touches[s].last_at, s))
        return {src: 1.0}


def attributions(conn: Connection, scope: Scope) -> list[Attribution]:
    p = scope.period
    o, lc = opportunity.c, lead.c
    opp_where = [o.created_at >= p.since, o.created_at < p.until]
    seg = segment_leads(conn, scope)
    if seg is not None:
        opp_where.append(or_(o.lead_id.in_(seg), o.account_id.in_(
            select(lc.account_id).where(lc.id.in_(seg), lc.account_id.is_not(None)))))
    opps = {r.id: Attribution(int(r.id), r.sf_id, float(r.amount or 0.0), bool(r.is_won), r.created_at)
            for r in conn.execute(select(o.id, o.sf_id, o.amount, o.is_won, o.created_at).where(*opp_where))}
    if not opps:
        return []
    people = union_all(
        select(o.id.label("opp_id"), o.lead_id.label("lead_id"), o.created_at.label("at"))
        .where(*opp_where, o.lead_id.is_not(None)),
        select(o.id, lc.id, o.created_at).select_from(opportunity.join(lead, lc.account_id == o.account_id))
        .where(*opp_where, o.account_id.is_not(None)),
    ).subquery()
    a, cm = activity.c, campaign_member.c
    seq_touch = (select(people.c.opp_id, a.sequence_id, a.at, a.lead_id)
                 .select_from(people.join(activity, a.lead_id == people.c.lead_id))
                 .where(a.at < people.c.at, a.kind.in_(ENGAGED), a.bot.is_(False), a.sequence_id.is_not(None)))
    for opp_id, sid, at, lid in conn.execute(seq_touch):
        _touch(opps[opp_id], ("sequence", int(sid)), at, int(lid))
    camp_touch = (select(people.c.opp_id, cm.campaign_id, cm.created_at, cm.lead_id)
                  .select_from(people.join(campaign_member, cm.lead_id == people.c.lead_id))
                  .where(cm.responded.is_(True), cm.created_at < people.c.at))
    for opp_id, cid, at, lid in conn.execute(camp_touch):
        _touch(opps[opp_id], ("campaign", int(cid)), at, int(lid))
    return sorted(opps.values(), key=lambda x: x.opportunity_id)


def _touch(att: Attribution, src: Source, at: datetime, lead_id: int) -> None:
    t = att.touches.get(src)
    if t is None:
        att.touches[src] = Touch(at, at, lead_id)
        return
    if at < t.first_at or (at == t.first_at and lead_id < t.lead_id):
        t.first_at, t.lead_id = at, lead_id
    t.last_at = max(t.last_at, at)


def load(conn: Connection, scope: Scope) -> Report:
    atts = attributions(conn, scope)
    if not atts:
        return make_report(NAME, TITLE, scope, COLUMNS, [], empty="no opportunities were created in the period")
    sums: dict[Source, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for att in atts:
        for src in att.touches:
            sums[src]["opportunities"] += 1
        for model in MODELS:
            for src, share in att.shares(model).items():
                sums[src][f"{model}_amount"] += share * att.amount
                if att.won:
                    sums[src][f"{model}_won"] += share * att.amount
    seq_names = dict(conn.execute(select(sequence.c.id, sequence.c.name)).all())
    camp_names = dict(conn.execute(select(campaign.c.id, campaign.c.name)).all())
    rows: list[dict[str, Any]] = []
    for (kind, sid), vals in sorted(sums.items(), key=lambda kv: (-kv[1]["even_amount"], kv[0])):
        if scope.sequence_id is not None and (kind, sid) != ("sequence", scope.sequence_id):
            continue
        name = (seq_names if kind == "sequence" else camp_names).get(sid, f"{kind} {sid}")
        rows.append({"source_type": kind, "source": name, "opportunities": int(vals["opportunities"]),
                     **{c: round(vals[c], 2) for c in COLUMNS[3:]}})
    untouched = [a for a in atts if not a.touches]
    total = sum(a.amount for a in atts)
    won = sum(a.amount for a in atts if a.won)
    summary = [f"{len(atts):,} opportunities created in the period, amount {total:,.2f} (won {won:,.2f}); "
               f"{len(atts) - len(untouched):,} had a touch before creation, {len(untouched):,} "
               f"(amount {sum(a.amount for a in untouched):,.2f}) had none and are unattributed"]
    return make_report(NAME, TITLE, scope, COLUMNS, rows, summary=summary, notes=[
        "touch = a non-bot open/click/reply of a sequence's message, or a responded campaign membership, by the "
        "opportunity's lead or any contact of its account, before the opportunity was created",
        "first/last touch: 100 % to the earliest/latest source; even: 1/k to each of k sources",
    ], empty="no opportunity in the period had a touch" + (f" from {scope.sequence_name!r}"
                                                          if scope.sequence_name else ""))


