"""A small random workspace (every table a rule can touch) built from a seed, for the compiler tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from nurture_tui.scoring.decay import EPOCH_KEY
from nurture_tui.segments import service
from nurture_tui.store import meta
from nurture_tui.store.models.people import GRADES, PERSONAS, STAGES
from nurture_tui.store.models.sequences import ENROLLMENT_STATUSES
from nurture_tui.store.tables import (
    account,
    activity,
    campaign,
    campaign_member,
    enrollment,
    lead,
    lead_tag,
    mql,
    sequence,
    sequence_version,
    template,
    user,
)

HALF_LIFE = 30.0
INDUSTRIES = ["Software", "software", "Fintech", "Retail", "", None]
COUNTRIES = ["US", "us", "DE", "Germany", "", None]
COMPANIES = ["Acme Inc", "acme", "Globex", "Initech 50%", "under_score", None]
FIRST = ["Ann", "bob", "Chloé", "Dan", None]
LAST = ["Smith", "O'Neil", "lee", None]
TAGS = ["vip", "Vip", "churn-risk", "partner"]
URLS = ["https://ex.com/pricing", "https://ex.com/Pricing/plans", "https://ex.com/blog/a_b", "https://ex.com/docs",
        None]
KINDS = ["open", "click", "form", "page_view", "reply", "sent", "bounce"]
TEMPLATES = ["welcome", "Pricing-Offer"]
SEQUENCES = ["Onboarding", "nurture-b"]
CAMPAIGNS = ["Webinar Q1", "Trade Show"]
CAMPAIGN_STATUSES = ["Sent", "Responded", "responded", "Registered"]
MQL_STATUSES = ["new", "accepted", "rejected", "recycled", "snoozed"]
USERS = ["alice", "Bob", "carol"]
PLANS = ["Pro", "pro", "Free", "Enterprise Plus"]
SAVED = {
    "Big": {"field": "employees", "op": "ge", "value": 100},
    "Recent openers": {"activity": "open", "within": "14d"},
    "Nested": {"all": [{"in_segment": "Big"}, {"field": "stage", "op": "ge", "value": "consideration"}]},
}
HOT = {"Recent openers"}


def _when(rng: random.Random, now: datetime, days: int = 120) -> datetime:
    return now - timedelta(seconds=rng.randint(-2 * 86400, days * 86400), microseconds=rng.randint(0, 999999))


def _custom(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.7:
        out["plan"] = rng.choice(PLANS)
    if rng.random() < 0.6:
        out["seats"] = rng.choice([1, 5, 5.5, 20, 100, "5", None])
    if rng.random() < 0.5:
        out["beta"] = rng.choice([True, False, "true"])
    if rng.random() < 0.4:
        out["note"] = rng.choice(["", "call back", "VIP customer"])
    return out


def build(conn: Connection, seed: int, now: datetime, leads: int = 60, activities: int = 400) -> None:
    """Fill an empty workspace deterministically from `seed`."""
    rng = random.Random(seed)
    meta.put(conn, EPOCH_KEY, (now - timedelta(days=10)).isoformat())
    user_ids = [conn.execute(insert(user).values(username=u, name=u.title()).returning(user.c.id)).scalar_one()
                for u in USERS]
    account_ids = []
    for i in range(8):
        account_ids.append(conn.execute(insert(account).values(
            name=f"Account {i}", industry=rng.choice(INDUSTRIES), employees=rng.choice([None, 10, 150, 5000]),
            country=rng.choice(COUNTRIES), named_account=rng.random() < 0.3, created_at=_when(rng, now, 400),
        ).returning(account.c.id)).scalar_one())
    template_ids = [conn.execute(insert(template).values(name=n, subject="s", html="<p>x</p>")
                                 .returning(template.c.id)).scalar_one() for n in TEMPLATES]
    seq_ids, version_ids = [], []
    for name in SEQUENCES:
        sid = conn.execute(insert(sequence).values(name=name).returning(sequence.c.id)).scalar_one()
        seq_ids.append(sid)
        version_ids.append(conn.execute(insert(sequence_version).values(sequence_id=sid, number=1)
                                        .returning(sequence_version.c.id)).scalar_one())
    campaign_ids = [conn.execute(insert(campaign).values(name=n).returning(campaign.c.id)).scalar_one()
                    for n in CAMPAIGNS]
    rows = []
    for i in range(leads):
        grade = rng.choice([None, *GRADES])
        rows.append({
            "email": f"lead{i}@{rng.choice(['acme.com', 'Globex.io', 'mail.org'])}".lower(),
            "first_name": rng.choice(FIRST), "last_name": rng.choice(LAST), "company": rng.choice(COMPANIES),
            "industry": rng.choice(INDUSTRIES), "country": rng.choice(COUNTRIES),
            "employees": rng.choice([None, 5, 50, 100, 250, 10000]),
            "stage": rng.choice([None, *STAGES]), "persona": rng.choice([None, *PERSONAS]),
            "grade": grade, "grade_rank": None if grade is None else GRADES.index(grade),
            "score": rng.choice([0.0, 0.0, round(rng.uniform(0, 160), 3), 50.0, 55.0]),
            "owner_id": rng.choice([None, *user_ids]), "account_id": rng.choice([None, None, *account_ids]),
            "opted_out": rng.random() < 0.2, "bounced": rng.random() < 0.1,
            "created_at": _when(rng, now, 400), "last_activity_at": rng.choice([None, _when(rng, now, 60)]),
            "mql_at": rng.choice([None, None, _when(rng, now, 90)]), "custom": _custom(rng),
        })
    lead_ids = [conn.execute(insert(lead).values(**r).returning(lead.c.id)).scalar_one() for r in rows]
    tags = {(lid, t) for lid in lead_ids for t in TAGS if rng.random() < 0.2}
    if tags:
        conn.execute(insert(lead_tag), [{"lead_id": lid, "tag": t} for lid, t in sorted(tags)])
    acts = []
    for _ in range(activities):
        k = rng.randrange(len(SEQUENCES))
        acts.append({
            "lead_id": rng.choice(lead_ids[: max(1, leads * 3 // 4)]), "kind": rng.choice(KINDS),
            "at": _when(rng, now, 60), "template_id": rng.choice([None, *template_ids]),
            "sequence_id": rng.choice([None, seq_ids[k]]), "url": rng.choice(URLS), "bot": rng.random() < 0.1,
            "meta": {},
        })
    conn.execute(insert(activity), acts)
    enrolls = []
    for lid in lead_ids:
        for k in range(len(SEQUENCES)):
            if rng.random() < 0.3:
                enrolls.append({"lead_id": lid, "sequence_id": seq_ids[k], "version_id": version_ids[k],
                                "status": rng.choice(ENROLLMENT_STATUSES), "path": []})
    conn.execute(insert(enrollment), enrolls)
    members = [{"campaign_id": cid, "lead_id": lid, "status": rng.choice(CAMPAIGN_STATUSES)}
               for lid in lead_ids for cid in campaign_ids if rng.random() < 0.25]
    conn.execute(insert(campaign_member), members)
    mqls = []
    for lid in lead_ids:
        for cycle in range(rng.choice([0, 0, 1, 2])):
            mqls.append({"lead_id": lid, "cycle": cycle + 1, "status": rng.choice(MQL_STATUSES), "why": {}})
    if mqls:
        conn.execute(insert(mql), mqls)
    for name in ("Big", "Recent openers", "Nested"):
        service.save_segment(conn, name, SAVED[name], user="test", now=now, materialize=name in HOT,
                             half_life_days=HALF_LIFE)
