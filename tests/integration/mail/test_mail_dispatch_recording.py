"""Issue 20 item 13: when recording send outcomes fails (a lock error), it is retried until it commits,
never skipped, and every delivered message ends up recorded as sent exactly once (SQLite and PostgreSQL,
a real aiosmtpd relay; the failure is injected at that write)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import timedelta

from mail_support import add_lead, save_template
from sqlalchemy import event, insert, select
from sqlalchemy.exc import OperationalError

from nurture_tui.mail import dispatch as dispatch_mod
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.mail.dispatch import close_dispatcher, dispatch_due
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, outbox

N = 60  # more than two flushes of outcomes (_FLUSH_EVERY = 25)


def _is_outcome_write(statement: str) -> bool:
    s = statement.lower()
    return s.lstrip().startswith("update outbox") and "sent_at" in s


def test_failed_outcome_recording_is_retried_and_each_message_recorded_once(workspace, clock, caplog) -> None:
    assert dispatch_mod._FLUSH_EVERY < N
    now = clock.now()
    save_template(workspace, now, "welcome")
    lead_ids = [add_lead(workspace, f"lead{i}@x.test", now, first_name=f"L{i}") for i in range(N)]
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(
            conn, [SendRequest(lid, "welcome", None, None, None, "s1", f"{lid}:s1:0") for lid in lead_ids],
            workspace.settings, now))

    calls = {"n": 0, "failed": 0}
    fail_on = {1, 2, 3, 5}  # the first flush fails three times, a later one once

    def inject(conn, cursor, statement, parameters, context, executemany):
        if _is_outcome_write(statement):
            calls["n"] += 1
            if calls["n"] in fail_on:
                calls["failed"] += 1
                raise OperationalError(statement, parameters, sqlite3.OperationalError("database is locked"))

    event.listen(workspace.engine, "before_cursor_execute", inject)
    with SmtpSink() as sink:
        workspace.settings.mail.smtp_url = sink.url
        workspace.settings.mail.rate_per_second = 1000
        try:
            with caplog.at_level("WARNING", logger="nurture.mail"):
                res = dispatch_due(workspace, N)
            assert calls["failed"] == len(fail_on)  # the failures really happened at that write
            assert "recording" in caplog.text and "retrying" in caplog.text
            assert (res.claimed, res.sent) == (N, N)
            assert sink.wait_for(N)
            # a later pass, after the send lease would have expired, sends nothing again
            event.remove(workspace.engine, "before_cursor_execute", inject)
            clock.advance(timedelta(seconds=workspace.settings.mail.send_lease_seconds * 2, days=1))
            assert dispatch_due(workspace, N).claimed == 0
            received = Counter(m.message()["Message-ID"] for m in sink.messages)
        finally:
            close_dispatcher(workspace)

    assert sink.count == N and len(received) == N and set(received.values()) == {1}
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.status, outbox.c.attempts, outbox.c.sent_at, outbox.c.message_id)).all()
        bounces = conn.execute(select(activity.c.id).where(activity.c.kind == "bounce")).all()
    assert Counter(r.status for r in rows) == {"sent": N}
    assert all(r.attempts == 1 and r.sent_at is not None for r in rows)
    assert {r.message_id for r in rows} == set(received)
    assert bounces == []


def test_a_retried_recording_does_not_record_a_bounce_twice(workspace, clock) -> None:
    """A retry after a commit whose success was lost (the outcome already recorded) changes nothing."""
    now = clock.now()
    save_template(workspace, now, "welcome")
    lid = add_lead(workspace, "gone@x.test", now)
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(
            conn, [SendRequest(lid, "welcome", None, None, None, "s1", f"{lid}:s1:0")], workspace.settings, now))
    with SmtpSink() as sink:
        sink.fail("gone@x.test", 550)
        workspace.settings.mail.smtp_url = sink.url
        try:
            d = dispatch_mod.get_dispatcher(workspace)
            rows, _ = d._claim(10)
            outcome = d.pool.send(d.envelope_from, rows[0]["to_email"], b"Subject: x\r\n\r\nx\r\n")
            assert outcome.status == "bounce"
            results = [(rows[0], outcome, clock.now())]
            assert d._record_until_done(results).bounced == 1
            d._record_until_done(results)  # the same outcomes recorded again, as a retry would
        finally:
            close_dispatcher(workspace)
    with workspace.engine.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalar_one() == "bounced"
        assert len(conn.execute(select(activity.c.id).where(activity.c.kind == "bounce")).all()) == 1
