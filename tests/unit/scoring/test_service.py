"""Incremental scoring: rules, filters, caps, one-time and negative rules, decay, adjust/reset, history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from nurture_tui.errors import NotFoundError, ValidationError
from nurture_tui.scoring import rules as R
from nurture_tui.scoring import service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import sequence, template

from .helpers import add_lead, record


def _live(ws, conn, lead_id):
    return service.live_score(conn, lead_id, ws.clock.now(), ws.settings)


def test_default_rules_score_every_kind(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        record(conn, workspace.settings, now,
               {"lead_id": lid, "kind": "open"}, {"lead_id": lid, "kind": "click", "url": "https://x.io/blog"},
               {"lead_id": lid, "kind": "click", "url": "https://x.io/Pricing?plan=pro"},
               {"lead_id": lid, "kind": "form", "meta": {"form": "demo request"}},
               {"lead_id": lid, "kind": "reply"}, {"lead_id": lid, "kind": "sent"})
        # open 1 + click 3 + (click 3 + pricing 10) + form 15 + reply 10; `sent` scores nothing
        assert _live(workspace, conn, lid) == pytest.approx(42)


def test_bot_activities_do_not_score(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        record(conn, workspace.settings, now, {"lead_id": lid, "kind": "click", "bot": True})
        assert _live(workspace, conn, lid) == 0


def test_negative_and_once_rules(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        record(conn, workspace.settings, now, {"lead_id": lid, "kind": "form"})
        record(conn, workspace.settings, now, {"lead_id": lid, "kind": "unsubscribe"},
               {"lead_id": lid, "kind": "unsubscribe"})
        record(conn, workspace.settings, now, {"lead_id": lid, "kind": "unsubscribe"})
        assert _live(workspace, conn, lid) == pytest.approx(15 - 20)  # one-time: only the first counts


def test_cap_per_window_across_batches(workspace):
    clock = workspace.clock
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        workspace.settings.scoring.half_life_days = 0  # isolate the cap from decay
        for _ in range(3):
            record(conn, workspace.settings, clock.now(), *[{"lead_id": lid, "kind": "open"}] * 2)
        assert _live(workspace, conn, lid) == pytest.approx(5)  # open cap: 5 points per 7 days
        clock.advance(timedelta(days=7))
        record(conn, workspace.settings, clock.now(), *[{"lead_id": lid, "kind": "open"}] * 3)
        assert _live(workspace, conn, lid) == pytest.approx(8)  # a new window


def test_filters_template_sequence_form(workspace):
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        ins = insert(template).values(name="case-study", subject="Case study")
        tid = int(conn.execute(ins).inserted_primary_key[0])
        sid = int(conn.execute(insert(sequence).values(name="decision")).inserted_primary_key[0])
        R.save_rules(conn, [R.parse_rule(r) for r in [
            {"name": "case study click", "kind": "click", "template": "case-study", "points": 7},
            {"name": "decision reply", "kind": "reply", "sequence": ["decision"], "points": 20},
            {"name": "demo form", "kind": "form", "form": "demo*", "points": 40},
        ]], replace=True)
        lid = add_lead(conn)
        record(conn, workspace.settings, now,
               {"lead_id": lid, "kind": "click", "template_id": tid},
               {"lead_id": lid, "kind": "click", "template_id": tid + 1},
               {"lead_id": lid, "kind": "reply", "sequence_id": sid},
               {"lead_id": lid, "kind": "reply"},
               {"lead_id": lid, "kind": "form", "meta": {"form": "Demo Request"}},
               {"lead_id": lid, "kind": "form", "meta": {"form": "newsletter"}})
        assert _live(workspace, conn, lid) == pytest.approx(67)


def test_decay_halves_per_half_life(workspace):
    clock = workspace.clock
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        record(conn, workspace.settings, clock.now(), {"lead_id": lid, "kind": "form"},
               {"lead_id": lid, "kind": "meeting"})
        assert _live(workspace, conn, lid) == pytest.approx(45)
        clock.advance(timedelta(days=30))
        assert _live(workspace, conn, lid) == pytest.approx(22.5)
        record(conn, workspace.settings, clock.now(), {"lead_id": lid, "kind": "form"})
        assert _live(workspace, conn, lid) == pytest.approx(37.5)
        clock.advance(timedelta(days=60))
        assert _live(workspace, conn, lid) == pytest.approx(37.5 / 4)


def test_adjust_reset_and_history(workspace):
    clock = workspace.clock
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        record(conn, workspace.settings, clock.now(), {"lead_id": lid, "kind": "form"},
               {"lead_id": lid, "kind": "unsubscribe"})
        service.adjust_score(conn, lid, 12.5, "webinar attended", clock.now(), workspace.settings)
        assert _live(workspace, conn, lid) == pytest.approx(7.5)
        clock.advance(timedelta(hours=1))
        service.reset_score(conn, lid, 0, "recycled", clock.now(), workspace.settings)
        clock.advance(timedelta(hours=1))
        record(conn, workspace.settings, clock.now(), {"lead_id": lid, "kind": "unsubscribe"})  # new cycle
        changes = service.history(conn, lid)
        assert [(c.kind, c.points, c.reason) for c in changes] == [
            ("rule", 15, "form submission"), ("rule", -20, "unsubscribe"), ("adjust", 12.5, "webinar attended"),
            ("reset", 0, "recycled"), ("rule", -20, "unsubscribe"),
        ]
        sc = service.scale(conn, clock.now(), workspace.settings)
        assert service.recompute_stored(changes, sc) == pytest.approx(service_stored(conn, lid))
        assert _live(workspace, conn, lid) == pytest.approx(-20)
        with pytest.raises(NotFoundError):
            service.adjust_score(conn, 999_999, 1, "x", clock.now(), workspace.settings)
        with pytest.raises(ValidationError):
            service.adjust_score(conn, lid, float("nan"), "x", clock.now(), workspace.settings)


def service_stored(conn, lid):
    from .helpers import stored

    return stored(conn, lid)


def test_stored_order_is_live_order(workspace):
    clock = workspace.clock
    with write_tx(workspace.engine) as conn:
        old = add_lead(conn, "old@example.com")
        record(conn, workspace.settings, clock.now(), {"lead_id": old, "kind": "form"})
        clock.advance(timedelta(days=45))
        new = add_lead(conn, "new@example.com")
        record(conn, workspace.settings, clock.now(), {"lead_id": new, "kind": "click"},
               {"lead_id": new, "kind": "click"})
        # 15 decayed 1.5 half-lives ≈ 5.3 < 6 fresh points; the stored column orders the same way
        assert _live(workspace, conn, old) < _live(workspace, conn, new)
        assert service_stored(conn, old) < service_stored(conn, new)


@pytest.mark.parametrize("bad, where", [
    ({"name": "x", "kind": "sent", "points": 1}, "rule.kind"),
    ({"name": "x", "kind": "open", "points": "lots"}, "rule.points"),
    ({"name": "x", "kind": "open", "points": 1, "cap": {"points": 5, "per": "soon"}}, "rule.cap.per"),
    ({"name": "x", "kind": "open", "points": 1, "colour": "red"}, "rule.colour"),
    ({"name": "x", "kind": "open", "points": 1, "once": True, "cap": {"points": 3}}, "rule.once"),
    ({"name": "", "kind": "open", "points": 1}, "rule.name"),
])
def test_rule_validation_names_the_field(bad, where):
    with pytest.raises(ValidationError) as err:
        R.parse_rule(bad)
    assert err.value.where == where


def test_scheduler_hook_rebases_after_many_half_lives(workspace):
    clock = workspace.clock
    with write_tx(workspace.engine) as conn:
        lid = add_lead(conn)
        service.adjust_score(conn, lid, 1e6, "huge", clock.now(), workspace.settings)
    assert service.decay_job(workspace)["rebased"] is False
    clock.advance(timedelta(days=30 * 151))
    with workspace.engine.connect() as conn:
        before = _live(workspace, conn, lid)
    assert service.decay_job(workspace) == {"rebased": True, "epoch": clock.now().isoformat(), "new_mqas": 0}
    with workspace.engine.connect() as conn:
        assert _live(workspace, conn, lid) == pytest.approx(before, rel=1e-9)
        assert service_stored(conn, lid) == pytest.approx(before, rel=1e-9)  # factor 1 at the new epoch
