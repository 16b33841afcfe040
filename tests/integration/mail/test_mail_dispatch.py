"""The dispatcher against a real aiosmtpd server on loopback: multipart + compliance headers, 4xx retry,
5xx bounce → suppression, suppression at send time, and no re-send after a restart."""

from __future__ import annotations

from datetime import timedelta

from mail_support import add_people, save_template
from sqlalchemy import insert, select

from nurture_tui.mail import subscriptions
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.mail.dispatch import close_dispatcher, dispatch_due
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead, outbox, suppression


def _queue(ws, names, now, template="welcome"):
    ids = add_people(ws, now)
    save_template(ws, now, template)
    sends = [SendRequest(ids[n], template, None, None, None, "s1", f"{n}:s1:0") for n in names]
    with write_tx(ws.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(conn, sends, ws.settings, now))
    return ids


def _status(ws):
    with ws.engine.connect() as conn:
        return {r.to_email: r for r in conn.execute(select(outbox))}


def test_message_is_finalised_when_sent_not_when_queued(ws, sink, clock) -> None:
    """Tokens expire token_ttl_days after the send, and settings changed while queued apply."""
    import re

    from nurture_tui.mail.tokens import TokenSigner

    queued_at = clock.now()
    _queue(ws, ["bob"], queued_at)
    with ws.engine.connect() as conn:
        stored = conn.execute(select(outbox.c.html, outbox.c.headers)).one()
    assert "/c/" not in stored.html and "/o/" not in stored.html and "1 Main Street" not in stored.html
    assert stored.headers == {"To": "Bob Stone <bob@acme.test>"}  # the name only; no tokens or footer
    clock.advance(timedelta(days=2))
    ws.settings.mail.postal_address = "New Address 9, Springfield"
    assert dispatch_due(ws).sent == 1 and sink.wait_for(1)
    html = sink.messages[0].message().get_body(("html",)).get_content()
    assert "New Address 9, Springfield" in html and "1 Main Street" not in html
    click = re.search(r'href="http://127\.0\.0\.1:8080/c/([^"]+)"', html).group(1)
    data = TokenSigner(ws.settings.mail.secret_key.get_secret_value()).verify(click, clock.now(), kind="click")
    assert data.expires == clock.now() + timedelta(days=ws.settings.mail.token_ttl_days)


def test_delivers_multipart_with_compliance_headers(ws, sink, clock) -> None:
    _queue(ws, ["bob", "bare"], clock.now())
    res = dispatch_due(ws)
    assert (res.claimed, res.sent) == (2, 2)
    assert sink.wait_for(2)
    got = {m.rcpt_tos[0]: m for m in sink.messages}
    assert set(got) == {"bob@acme.test", "bare@nowhere.test"}
    msg = got["bob@acme.test"].message()
    assert got["bob@acme.test"].mail_from == "marketing@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == "Hello Bob" and msg["From"] == "Nurture Demo <marketing@example.com>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    lu = str(msg["List-Unsubscribe"])
    assert lu.startswith("<mailto:unsubscribe@example.com?subject=") and "http://127.0.0.1:8080/u/" in lu
    rows = _status(ws)
    assert msg["Message-ID"] == rows["bob@acme.test"].message_id
    assert msg["Date"]
    html = msg.get_body(("html",)).get_content()
    assert "Example Inc., 1 Main Street" in html and "/o/" in html
    assert all(r.status == "sent" and r.sent_at == clock.now() for r in rows.values())
    # a restart never re-sends a committed message
    close_dispatcher(ws)
    assert dispatch_due(ws).claimed == 0
    clock.advance(timedelta(days=1))
    assert dispatch_due(ws).claimed == 0 and sink.count == 2


def test_4xx_is_retried_with_backoff_then_sent(ws, sink, clock) -> None:
    sink.fail("bob@acme.test", 451, times=1)
    _queue(ws, ["bob"], clock.now())
    res = dispatch_due(ws)
    assert (res.retried, res.sent) == (1, 0)
    row = _status(ws)["bob@acme.test"]
    assert row.status == "queued" and row.attempts == 1 and "451" in row.last_error
    assert row.next_try_at == clock.now() + timedelta(seconds=60)
    assert dispatch_due(ws).claimed == 0  # not due yet
    clock.advance(timedelta(seconds=61))
    assert dispatch_due(ws).sent == 1
    row = _status(ws)["bob@acme.test"]
    assert row.status == "sent" and row.attempts == 2
    assert sink.wait_for(1) and sink.count == 1


def test_5xx_bounces_and_suppresses(ws, sink, clock) -> None:
    sink.fail("bob@acme.test", 550)
    ids = _queue(ws, ["bob", "bare"], clock.now())
    res = dispatch_due(ws)
    assert (res.bounced, res.sent) == (1, 1)
    with ws.engine.connect() as conn:
        bob = conn.execute(select(lead.c.bounced, lead.c.bounced_at, lead.c.bounce_reason)
                           .where(lead.c.id == ids["bob"])).one()
        assert bob.bounced is True and bob.bounced_at == clock.now()  # Salesforce's EmailBouncedDate/Reason
        assert bob.bounce_reason.startswith("550") and "bob@acme.test" not in bob.bounce_reason.lower()
        sup = conn.execute(select(suppression)).one()
        assert (sup.email, sup.reason) == ("bob@acme.test", "bounce") and "550" in sup.detail
        kinds = conn.execute(select(activity.c.kind, activity.c.meta).where(activity.c.lead_id == ids["bob"])).all()
    assert [k for k, _ in kinds] == ["bounce"] and kinds[0][1]["code"] == 550
    assert _status(ws)["bob@acme.test"].status == "bounced"
    # the next message to a bounced lead is suppressed before it reaches SMTP
    save_template(ws, clock.now(), "second")
    with write_tx(ws.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(
            conn, [SendRequest(ids["bob"], "second", idempotency_key="bob:s2:0")], ws.settings, clock.now()))
    res = dispatch_due(ws)
    assert (res.suppressed, res.sent) == (1, 0) and sink.count == 1


def test_unsubscribe_between_queue_and_send_stops_the_message(ws, sink, clock) -> None:
    ids = _queue(ws, ["bob", "bare"], clock.now())
    with write_tx(ws.engine) as conn:
        subscriptions.set_category(conn, ids["bob"], "marketing", False, clock.now())
    res = dispatch_due(ws)
    assert (res.suppressed, res.sent) == (1, 1)
    assert _status(ws)["bob@acme.test"].status == "suppressed"
    assert sink.wait_for(1) and [m.rcpt_tos for m in sink.messages] == [["bare@nowhere.test"]]


def test_crashed_send_lease_is_the_only_resend_window(ws, sink, clock) -> None:
    _queue(ws, ["bob"], clock.now())
    # a previous process claimed the row and died before recording the outcome
    with write_tx(ws.engine) as conn:
        conn.execute(outbox.update().values(status="sending", attempts=1,
                                            next_try_at=clock.now() + timedelta(seconds=600)))
    assert dispatch_due(ws).claimed == 0  # lease still held: not sent twice while it may be in flight
    clock.advance(timedelta(seconds=601))
    assert dispatch_due(ws).sent == 1 and _status(ws)["bob@acme.test"].attempts == 2


def test_unreachable_relay_is_a_temporary_failure_and_defers_the_rest(workspace, clock) -> None:
    workspace.settings.mail.smtp_url = "smtp://127.0.0.1:9?timeout=2"
    workspace.settings.mail.max_connections = 1
    try:
        _queue(workspace, ["bob", "bare"], clock.now())
        res = dispatch_due(workspace)
        assert (res.retried, res.deferred) == (1, 1)
        rows = _status(workspace)
        assert {r.status for r in rows.values()} == {"queued"}
        assert sorted(r.attempts for r in rows.values()) == [0, 1]  # the deferred one kept its attempts
        assert all(r.next_try_at == clock.now() + timedelta(seconds=60) for r in rows.values())
    finally:
        close_dispatcher(workspace)


def test_rows_queued_outside_compose_get_from_and_message_id(ws, sink, clock) -> None:
    """The engine's rep notifications are plain-text rows without headers."""
    ids = add_people(ws, clock.now())
    with write_tx(ws.engine) as conn:
        conn.execute(insert(outbox).values(
            idempotency_key="notify:1", lead_id=ids["bob"], category="transactional", to_email="ann@example.com",
            subject="Bob reached s2", html="", text="Bob <bob@acme.test> reached step s2.", headers={},
            status="queued", attempts=0, next_try_at=clock.now(), created_at=clock.now()))
    assert dispatch_due(ws).sent == 1 and sink.wait_for(1)
    msg = sink.messages[0].message()
    assert msg.get_content_type() == "text/plain" and msg["From"] == "Nurture Demo <marketing@example.com>"
    assert msg["Message-ID"].startswith("<outbox.") and msg["List-Unsubscribe"] is None
    assert msg.get_content().strip() == "Bob <bob@acme.test> reached step s2."


def test_two_dispatchers_on_one_database_send_each_message_once(ws, sink, clock) -> None:
    """Two processes' worth of dispatchers (separate engines) racing over the same outbox."""
    import threading

    from nurture_tui.store.engine import make_engine
    from nurture_tui.workspace import Workspace

    now = clock.now()
    add_people(ws, now)
    save_template(ws, now)
    from nurture_tui.store.tables import lead as lead_t

    with write_tx(ws.engine) as conn:
        conn.execute(insert(lead_t), [{"email": f"r{i}@race.test", "created_at": now, "updated_at": now}
                                      for i in range(60)])
        ids = conn.execute(select(lead_t.c.id).where(lead_t.c.email.like("r%@race.test"))).scalars().all()
        rows = compose_outbox_rows(conn, [SendRequest(i, "welcome", idempotency_key=f"race:{i}") for i in ids],
                                   ws.settings, now)
        conn.execute(insert(outbox), rows)
    other = Workspace(settings=ws.settings, engine=make_engine(ws.settings.db_url), clock=clock)
    results = []
    try:
        threads = [threading.Thread(target=lambda w=w: results.append(dispatch_due(w, 1000))) for w in (ws, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        close_dispatcher(other)
        other.close()
    assert sum(r.sent for r in results) == 60
    assert sink.wait_for(60) and sink.count == 60
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == sorted(f"r{i}@race.test" for i in range(60))


def test_a_fast_virtual_clock_never_expires_an_in_flight_send(ws, sink, clock) -> None:
    """The demo runs its clock thousands of times faster than real time; the send lease is wall-clock time,
    so a message still on the wire is not claimed (and delivered) a second time."""
    from nurture_tui.mail.dispatch import get_dispatcher

    _queue(ws, ["bob", "bare"], clock.now())
    clock.set_speed(3600)  # ten virtual minutes pass every 0.17 real seconds
    d = get_dispatcher(ws)
    first, _ = d._claim(10)
    assert len(first) == 2
    import time

    time.sleep(0.5)  # 30 virtual minutes: far past a 600 s lease read as virtual time
    again, _ = d._claim(10)
    assert again == []
    with ws.engine.connect() as conn:
        lease_end = conn.execute(select(outbox.c.next_try_at)).scalars().first()
    assert lease_end - clock.now() > timedelta(days=6)  # 600 real seconds at 3600x
