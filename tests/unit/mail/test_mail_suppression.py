"""Suppression and subscription categories."""

from __future__ import annotations

from mail_support import add_lead

from nurture_tui.mail import subscriptions, suppression
from nurture_tui.store.engine import write_tx


def test_suppressed_ids_by_reason_and_category(workspace, clock) -> None:
    now = clock.now()
    ids = {name: add_lead(workspace, f"{name}@x.test", now) for name in
           ("ok", "optout", "bounced", "complaint", "leftnews", "byemail")}
    with write_tx(workspace.engine) as conn:
        subscriptions.set_global_opt_out(conn, ids["optout"], True, now)
        for email, lead_id, reason in (("bounced@x.test", ids["bounced"], "bounce"),
                                       ("complaint@x.test", ids["complaint"], "complaint"),
                                       ("BYEMAIL@x.test", None, "manual")):
            suppression.suppress(conn, email=email, lead_id=lead_id, reason=reason, detail="", now=now)
        assert subscriptions.set_category(conn, ids["leftnews"], "newsletter", False, now)
        assert not subscriptions.set_category(conn, ids["leftnews"], "newsletter", False, now)
    all_ids = list(ids.values())
    with workspace.engine.connect() as conn:
        marketing = suppression.suppressed_ids(conn, all_ids, "marketing")
        news = suppression.suppressed_ids(conn, all_ids, "newsletter")
        trans = suppression.suppressed_ids(conn, all_ids, "transactional")
    hard = {ids["bounced"], ids["complaint"], ids["byemail"]}
    assert marketing == hard | {ids["optout"]}
    assert news == marketing | {ids["leftnews"]}  # left one category, still in the others
    assert trans == hard


def test_preferences_roundtrip(workspace, clock) -> None:
    now = clock.now()
    lid = add_lead(workspace, "p@x.test", now)
    mail = workspace.settings.mail
    with write_tx(workspace.engine) as conn:
        prefs = subscriptions.get_preferences(conn, lid, mail)
        assert prefs.categories == dict.fromkeys(mail.categories, True) and not prefs.opted_out
        changed = subscriptions.apply_preferences(conn, lid, {"events": False, "marketing": True}, True, now)
        assert changed == ["events", "*"]
        prefs = subscriptions.get_preferences(conn, lid, mail)
    assert prefs.categories["events"] is False and prefs.opted_out
    with write_tx(workspace.engine) as conn:
        assert suppression.lift(conn, "nobody@x.test") == 0


def test_suppressed_ids_chunks_large_lists(workspace, clock) -> None:
    now = clock.now()
    lid = add_lead(workspace, "z@x.test", now)
    with write_tx(workspace.engine) as conn:
        subscriptions.set_global_opt_out(conn, lid, True, now)
    with workspace.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [*range(100_000, 102_000), lid], "marketing") == {lid}
