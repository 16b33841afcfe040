"""End to end: a lead enrolled in a sample-like sequence gets real SMTP mail; clicking the tracked link in
the received message (through uvicorn) moves it down the 'clicked' branch; a one-click unsubscribe from the
List-Unsubscribe header stops the next send."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from mail_support import committed_hooks, save_template
from sqlalchemy import select

from nurture_tui.engine.advance import run_due
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.events import apply_all_pending
from nurture_tui.engine.seeding import make_leads, publish_definition
from nurture_tui.mail.dispatch import close_dispatcher, dispatch_due
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, enrollment, lead_tag, outbox
from nurture_tui.web.server import WebServer

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

SEQUENCE = {"name": "welcome-e2e", "steps": [
    {"id": "intro", "send": {"template": "welcome"}},
    {"id": "clicked", "wait_for": {"events": [{"kind": "click", "node": "intro"}], "window": "3d"},
     "yes": [{"id": "tag-hot", "action": {"type": "add_tag", "tag": "clicked-intro"}},
             {"id": "follow-up", "send": {"template": "follow-up"}}],
     "no": [{"id": "nudge", "send": {"template": "nudge"}}]},
    {"id": "pause", "wait": {"duration": "1d"}},
    {"id": "last", "send": {"template": "last-call"}},
]}


def _status(ws, node_id: str) -> str | None:
    with ws.engine.connect() as conn:
        return conn.execute(select(outbox.c.status).where(outbox.c.node_id == node_id)).scalar()


def test_send_click_branch_unsubscribe(workspace, clock) -> None:
    ws = workspace
    with SmtpSink() as sink, WebServer(ws, "127.0.0.1", 0) as web, \
            httpx.Client(headers={"user-agent": BROWSER}, timeout=10, event_hooks=committed_hooks(web)) as http:
        ws.settings.mail.smtp_url = sink.url
        ws.settings.mail.base_url = web.url
        now = clock.now()
        for name in ("welcome", "follow-up", "nudge", "last-call"):
            save_template(ws, now, name, subject=f"{name}: {{{{ lead.first_name }}}}")
        with write_tx(ws.engine) as conn:
            publish_definition(conn, SEQUENCE, now)
            (lid,) = make_leads(conn, 1, now)
            eid = enroll_lead(conn, lid, "welcome-e2e", now)

        def step() -> None:
            run_due(ws.engine, ws.clock.now, ws.settings)
            dispatch_due(ws)

        try:
            step()
            assert sink.wait_for(1)
            first = sink.messages[0].message()
            assert str(first["Subject"]).startswith("welcome: Lead") and first["List-Unsubscribe-Post"]
            html = first.get_body(("html",)).get_content()
            click = re.search(r'href="(http://127\.0\.0\.1:\d+/c/[^"]+)"', html).group(1)

            clock.advance(timedelta(minutes=10))  # a person reads it later (not a prefetch)
            r = http.get(click, follow_redirects=False)
            assert r.status_code == 302 and r.headers["location"] == "https://example.com/guide?a=1&b=2"
            apply_all_pending(ws.engine, ws.clock.now, ws.settings)  # as the scheduler does before each run
            step()  # the click woke the wait_for: the lead goes down 'yes' at once
            assert sink.wait_for(2)
            assert str(sink.messages[1].message()["Subject"]).startswith("follow-up: ")
            with ws.engine.connect() as conn:
                assert conn.execute(select(lead_tag.c.tag).where(lead_tag.c.lead_id == lid)).scalars().all() \
                    == ["clicked-intro"]
                assert conn.execute(select(enrollment.c.node_id).where(enrollment.c.id == eid)).scalar() == "pause"

            # one-click unsubscribe (RFC 8058) from the header of the mail the lead received
            lu = str(sink.messages[1].message()["List-Unsubscribe"])
            https_url = re.search(r"<(http://[^>]+)>", lu).group(1)
            r = http.post(https_url, content="List-Unsubscribe=One-Click",
                          headers={"content-type": "application/x-www-form-urlencoded"})
            assert r.status_code == 200

            clock.advance(timedelta(days=1, minutes=1))
            step()  # 'last' is due now, but the lead left the marketing category
            assert sink.count == 2
            with ws.engine.connect() as conn:
                sent = conn.execute(select(outbox.c.node_id).where(outbox.c.status == "sent")
                                    .order_by(outbox.c.id)).scalars().all()
                kinds = conn.execute(select(activity.c.kind).where(activity.c.lead_id == lid)
                                     .order_by(activity.c.id)).scalars().all()
                status = conn.execute(select(enrollment.c.status).where(enrollment.c.id == eid)).scalar()
            assert sent == ["intro", "follow-up"]  # nothing for 'last'
            assert status == "done"  # suppressed send skipped, sequence finished (Pardot semantics)
            assert kinds.index("click") < kinds.index("unsubscribe")
        finally:
            close_dispatcher(ws)


def test_scanner_prefetch_click_does_not_trigger_the_branch(workspace, clock) -> None:
    ws = workspace
    with SmtpSink() as sink, WebServer(ws, "127.0.0.1", 0) as web, \
            httpx.Client(timeout=10, event_hooks=committed_hooks(web)) as http:
        ws.settings.mail.smtp_url = sink.url
        ws.settings.mail.base_url = web.url
        now = clock.now()
        for name in ("welcome", "follow-up", "nudge", "last-call"):
            save_template(ws, now, name)
        with write_tx(ws.engine) as conn:
            publish_definition(conn, SEQUENCE, now)
            (lid,) = make_leads(conn, 1, now)
            eid = enroll_lead(conn, lid, "welcome-e2e", now)
        try:
            run_due(ws.engine, ws.clock.now, ws.settings)
            dispatch_due(ws)
            assert sink.wait_for(1)
            html = sink.messages[0].message().get_body(("html",)).get_content()
            click = re.search(r'href="(http://127\.0\.0\.1:\d+/c/[^"]+)"', html).group(1)
            # a security gateway follows the link one second after delivery, then a scanner UA later
            clock.advance(timedelta(seconds=1))
            assert http.get(click, headers={"user-agent": BROWSER}, follow_redirects=False).status_code == 302
            clock.advance(timedelta(minutes=5))
            assert http.get(click, headers={"user-agent": "Mimecast URL Protect"},
                            follow_redirects=False).status_code == 302
            apply_all_pending(ws.engine, ws.clock.now, ws.settings)  # as the scheduler does before each run
            run_due(ws.engine, ws.clock.now, ws.settings)
            with ws.engine.connect() as conn:
                e = conn.execute(select(enrollment.c.node_id, enrollment.c.status).where(enrollment.c.id == eid)).one()
                bots = conn.execute(select(activity.c.bot).where(activity.c.kind == "click")).scalars().all()
            assert (e.node_id, e.status) == ("clicked", "waiting") and bots == [True, True]
            # the person clicks: now it moves
            clock.advance(timedelta(minutes=5))
            http.get(click, headers={"user-agent": BROWSER}, follow_redirects=False)
            apply_all_pending(ws.engine, ws.clock.now, ws.settings)
            run_due(ws.engine, ws.clock.now, ws.settings)
            with ws.engine.connect() as conn:
                assert conn.execute(select(enrollment.c.node_id).where(enrollment.c.id == eid)).scalar() == "pause"
        finally:
            close_dispatcher(ws)


def test_live_scheduler_moves_the_lead_within_seconds_of_the_click(workspace, clock) -> None:
    """The real scheduler (tick + dispatch hook) and the real web app: the follow-up is in the SMTP sink
    a few seconds after the click, with nobody calling the engine by hand."""
    import time

    from nurture_tui.wiring import build_scheduler

    ws = workspace
    ws.settings.engine.tick_seconds = 0.5
    with SmtpSink() as sink, WebServer(ws, "127.0.0.1", 0) as web, \
            httpx.Client(headers={"user-agent": BROWSER}, timeout=10, event_hooks=committed_hooks(web)) as http:
        ws.settings.mail.smtp_url = sink.url
        ws.settings.mail.base_url = web.url
        now = clock.now()
        for name in ("welcome", "follow-up", "nudge", "last-call"):
            save_template(ws, now, name, subject=f"{name}: {{{{ lead.first_name }}}}")
        with write_tx(ws.engine) as conn:
            publish_definition(conn, SEQUENCE, now)
            (lid,) = make_leads(conn, 1, now)
            enroll_lead(conn, lid, "welcome-e2e", now)
        scheduler = build_scheduler(ws)
        scheduler.start()
        try:
            assert sink.wait_for(1, timeout=30), "the first email never arrived"
            deadline = time.monotonic() + 10  # the relay's 250 comes a moment before the outcome is committed
            while _status(ws, "intro") != "sent" and time.monotonic() < deadline:
                time.sleep(0.05)
            html = sink.messages[0].message().get_body(("html",)).get_content()
            click = re.search(r'href="(http://127\.0\.0\.1:\d+/c/[^"]+)"', html).group(1)
            clock.advance(timedelta(minutes=10))
            started = time.monotonic()
            assert http.get(click, follow_redirects=False).status_code == 302
            assert sink.wait_for(2, timeout=30), "the clicked branch never sent its follow-up"
            took = time.monotonic() - started
            assert str(sink.messages[1].message()["Subject"]).startswith("follow-up: ")
            assert took < 20  # generous smoke bound: one tick + one dispatch pass (~2-3 s when idle)
        finally:
            scheduler.stop()
            close_dispatcher(ws)
