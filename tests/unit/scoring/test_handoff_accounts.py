"""Hand-off summary content, rep e-mail, recycle into a sequence, account score and MQAs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from nurture_tui.engine.seeding import publish_definition
from nurture_tui.scoring import accounts, mql, service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.models import GRADES
from nurture_tui.store.tables import account, enrollment, outbox, sequence, template

from .helpers import add_lead, add_user, record

B = GRADES.index("B")


def test_summary_lists_sequences_opens_clicks_forms_history(workspace):
    s = workspace.settings
    clock = workspace.clock
    with write_tx(workspace.engine) as conn:
        rep = add_user(conn, "rita")
        sid = int(conn.execute(insert(sequence).values(name="decision-stage")).inserted_primary_key[0])
        tid = int(conn.execute(insert(template).values(name="ds-roi", subject="Your ROI")).inserted_primary_key[0])
        lid = add_lead(conn, owner_id=rep, grade="B+", grade_rank=GRADES.index("B+"), title="CFO",
                       company="Fabrikam", industry="Software", country="Germany")
        record(conn, s, clock.now(),
               {"lead_id": lid, "kind": "sent", "sequence_id": sid, "node_id": "roi", "template_id": tid},
               {"lead_id": lid, "kind": "open", "sequence_id": sid, "node_id": "roi", "template_id": tid},
               {"lead_id": lid, "kind": "open", "sequence_id": sid, "node_id": "roi", "template_id": tid},
               {"lead_id": lid, "kind": "click", "sequence_id": sid, "node_id": "roi", "template_id": tid,
                "url": "https://x.io/pricing", "meta": {"title": "See pricing"}},
               {"lead_id": lid, "kind": "form", "meta": {"form": "roi-calculator"}, "url": "https://x.io/roi"})
        clock.advance(timedelta(hours=2))
        s.scoring.notify_rep_email = True
        service.adjust_score(conn, lid, 80, "webinar attended", clock.now(), s)
        (e,) = mql.list_queue(conn, clock.now(), s)
        text = e.summary
        assert text.startswith("Ada Lovelace <ada@example.com>, CFO at Fabrikam")
        assert "decision-stage: 1 steps completed, 1 emails sent" in text
        assert "EMAILS OPENED (2)\n  Your ROI ×2" in text
        assert "See pricing — https://x.io/pricing" in text
        assert "FORMS (1)" in text and "roi-calculator" in text
        assert "+10 pricing page click" in text and "+80 webinar attended" in text
        assert "rule: score ≥ 100 AND grade ≥ B-; score 110, grade B+; assigned by owner" in text
        mail = conn.execute(select(outbox.c.to_email, outbox.c.text, outbox.c.category)).one()
        assert mail.to_email == "rita@corp.example" and mail.text == text and mail.category == "internal"


def test_reject_recycles_into_the_configured_sequence(workspace):
    s = workspace.settings
    s.scoring.recycle_sequence = "recycle"
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        publish_definition(conn, {"name": "recycle", "steps": [{"id": "w", "wait": {"duration": "30d"}}]}, now)
        lid = add_lead(conn, grade="B", grade_rank=B)
        service.adjust_score(conn, lid, 150, "x", now, s)
        (e,) = mql.list_queue(conn, now, s)
        assert mql.reject(conn, e.id, "timing", "rita", now, s) == "recycled"
        assert conn.execute(select(enrollment.c.lead_id)).scalars().all() == [lid]
        assert mql.get(conn, e.id, now, s).status == "recycled"
        assert service.live_score(conn, lid, now, s) == 0


@pytest.mark.parametrize("aggregate, expected", [("top_n_sum", 100 + 90 + 80), ("max", 100)])
def test_account_score_aggregates(workspace, aggregate, expected):
    s = workspace.settings
    s.scoring.account_aggregate = aggregate
    s.scoring.mql_score = 10_000
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        aid = int(conn.execute(insert(account).values(name="Acme")).inserted_primary_key[0])
        for i, pts in enumerate([100, 90, 80, 70]):
            service.adjust_score(conn, add_lead(conn, f"p{i}@acme.io", account_id=aid), pts, "x", now, s)
        assert accounts.account_live_score(conn, aid, now, s) == 0  # not a named account: refreshed hourly
    service.decay_job(workspace)
    with write_tx(workspace.engine) as conn:
        assert accounts.account_live_score(conn, aid, now, s) == pytest.approx(expected)
        workspace.clock.advance(timedelta(days=30))
        assert accounts.account_live_score(conn, aid, workspace.clock.now(), s) == pytest.approx(expected / 2)


def test_named_account_becomes_mqa_once(workspace):
    s = workspace.settings
    s.scoring.mql_score = 10_000  # only the account-level threshold in play
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        owner = add_user(conn, "abm-owner")
        aid = int(conn.execute(insert(account).values(name="Acme", owner_id=owner, named_account=True))
                  .inserted_primary_key[0])
        other = int(conn.execute(insert(account).values(name="NotNamed")).inserted_primary_key[0])
        leads = [add_lead(conn, f"p{i}@acme.io", account_id=aid) for i in range(3)]
        service.adjust_score(conn, add_lead(conn, "x@nn.io", account_id=other), 400, "x", now, s)
        for lid in leads:
            service.adjust_score(conn, lid, 90, "webinar", now, s)
        service.adjust_score(conn, leads[0], 50, "more", now, s)
        entries = mql.list_queue(conn, now, s)
        assert len(entries) == 1
        e = entries[0]
        assert e.account_id == aid and e.rep == "abm-owner" and e.lead_id == leads[0]
        assert e.why["rule"] == "account score (sum of top 3) ≥ 250" and e.why["score"] == 270
        mql.reject(conn, e.id, "not now", "abm-owner", now, s)
        assert conn.execute(select(account.c.mqa_at).where(account.c.id == aid)).scalar() is None
        assert service.live_score(conn, leads[0], now, s) == 140  # lead scores untouched by an MQA reject


@pytest.mark.parametrize("aggregate", ["top_n_sum", "max"])
def test_account_refresh_paths_agree(workspace, aggregate):
    """The per-batch path (Python aggregate) and the after-rescore path (one SQL pass) agree."""
    s = workspace.settings
    s.scoring.account_aggregate = aggregate
    s.scoring.mql_score = 10_000
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        aids = [int(conn.execute(insert(account).values(name=f"A{i}")).inserted_primary_key[0]) for i in range(3)]
        for i in range(10):
            lid = add_lead(conn, f"p{i}@x.io", account_id=aids[i % 2])
            service.adjust_score(conn, lid, 7 * i - 20, "x", now, s)
        batch = accounts.aggregate_scores(conn, aids, s.scoring)
        full = accounts.aggregate_scores(conn, None, s.scoring)
        assert batch == {**full, aids[2]: 0.0}
        conn.execute(account.update().values(score=123.0))
        accounts.refresh(conn, None, now, s)
        stored = dict(conn.execute(select(account.c.id, account.c.score)).all())
        assert stored == pytest.approx({**full, aids[2]: 0.0})


def test_mqa_summary_names_the_account_and_its_top_leads(workspace):
    s = workspace.settings
    s.scoring.mql_score = 10_000
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        aid = int(conn.execute(insert(account).values(name="Acme", named_account=True)).inserted_primary_key[0])
        for i, pts in enumerate([200, 60]):
            service.adjust_score(conn, add_lead(conn, f"p{i}@acme.io", account_id=aid), pts, "event", now, s)
        (e,) = mql.list_queue(conn, now, s)
        assert "account Acme: top leads p0@acme.io (200), p1@acme.io (60)" in e.summary
