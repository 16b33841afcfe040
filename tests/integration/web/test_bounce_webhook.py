"""`POST /api/bounces` under a real uvicorn: the generic JSON shape and SendGrid's Event Webhook suppress the
right leads, a retried delivery counts nothing twice, bad events are skipped with a reason and the rest
applied, and a wrong token or a non-JSON body records nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from mail_support import add_lead, save_template
from sqlalchemy import insert, select, update

from nurture_tui.mail import suppression
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead, mail_feedback, outbox
from nurture_tui.web.server import WebServer


@pytest.fixture
def server(workspace) -> Iterator[WebServer]:
    with WebServer(workspace, "127.0.0.1", 0) as srv:
        yield srv


def _client(server, token) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def _sent(ws, now, emails) -> dict[str, tuple[int, str]]:
    """Leads with one message each marked sent: email → (lead id, Message-ID)."""
    ids = {e: add_lead(ws, e, now) for e in emails}
    save_template(ws, now)
    with write_tx(ws.engine) as conn:
        rows = compose_outbox_rows(conn, [SendRequest(i, "welcome", idempotency_key=f"{e}:1") for e, i in ids.items()],
                                   ws.settings, now)
        conn.execute(insert(outbox), rows)
        conn.execute(update(outbox).values(status="sent", sent_at=now))
    return {r["to_email"]: (ids[r["to_email"]], r["message_id"]) for r in rows}


def test_generic_shape(workspace, server, clock) -> None:
    sent = _sent(workspace, clock.now(), ["ann@acme.test", "bob@acme.test", "cy@acme.test"])
    token = workspace.settings.mail.events_api_token.get_secret_value()
    body = {"events": [
        {"type": "hard_bounce", "message_id": sent["ann@acme.test"][1], "status": "5.1.1",
         "reason": "550 5.1.1 <ann@acme.test> user unknown", "id": "ev-1"},
        {"type": "complaint", "email": "bob@acme.test", "at": "2026-03-02T09:15:00Z", "id": "ev-2"},
        {"type": "soft_bounce", "email": "cy@acme.test", "status": "4.2.2", "id": "ev-3"},
        {"type": "exploded", "email": "cy@acme.test"},
        {"type": "hard_bounce"},
        {"type": "hard_bounce", "email": "stranger@nowhere.test", "id": "ev-4"},
    ]}
    with _client(server, token) as api:
        r = api.post("/api/bounces", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["hard_bounces"], out["complaints"], out["soft_bounces"], out["unmatched"]) == (1, 1, 1, 1)
        assert out["errors"][:2] == ["events[3]: type 'exploded': one of hard_bounce, soft_bounce, complaint, delayed",
                                     "events[4]: needs email or message_id"]
        again = api.post("/api/bounces", json=body).json()  # the ESP retries the same delivery
        assert again["duplicates"] == 4 and again["processed"] == 0
    ann, bob, cy = (sent[e][0] for e in ("ann@acme.test", "bob@acme.test", "cy@acme.test"))
    with workspace.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [ann, bob, cy], "transactional") == {ann, bob}
        assert conn.execute(select(lead.c.opted_out).where(lead.c.id == bob)).scalar() is True
        statuses = dict(conn.execute(select(outbox.c.lead_id, outbox.c.status)).all())
        acts = sorted(conn.execute(select(activity.c.lead_id, activity.c.kind)
                                   .where(activity.c.kind.in_(("bounce", "unsubscribe")))).all())
        assert conn.execute(select(mail_feedback.c.source).distinct()).scalars().all() == ["webhook:generic"]
    assert statuses == {ann: "bounced", bob: "sent", cy: "failed"}
    assert acts == sorted([(ann, "bounce"), (bob, "unsubscribe")])


def test_sendgrid_event_webhook_with_basic_auth(workspace, server, clock) -> None:
    sent = _sent(workspace, clock.now(), ["dee@globex.test", "eve@globex.test", "fin@globex.test"])
    token = workspace.settings.mail.events_api_token.get_secret_value()
    events = [
        {"email": "dee@globex.test", "timestamp": 1772443211, "smtp-id": sent["dee@globex.test"][1],
         "event": "bounce", "category": ["nurture"], "sg_event_id": "sg-1", "sg_message_id": "14c5d75ce93.dfd",
         "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
        {"email": "eve@globex.test", "timestamp": 1772443212, "smtp-id": sent["eve@globex.test"][1],
         "event": "spamreport", "sg_event_id": "sg-2", "sg_message_id": "14c5d75ce93.dfe"},
        {"email": "fin@globex.test", "timestamp": 1772443213, "event": "bounce", "type": "blocked",
         "status": "5.7.1", "reason": "550 5.7.1 blocked by policy", "sg_event_id": "sg-3"},
        {"email": "fin@globex.test", "timestamp": 1772443214, "event": "delivered", "sg_event_id": "sg-4"},
        {"email": "fin@globex.test", "timestamp": "yesterday", "event": "deferred", "sg_event_id": "sg-5"},
    ]
    basic = base64.b64encode(f"nurture:{token}".encode()).decode()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        assert api.post("/api/bounces", json=events, headers={"authorization": "Basic " +
                        base64.b64encode(b"nurture:wrong").decode()}).status_code == 401
        r = api.post("/api/bounces", json=events, headers={"authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["hard_bounces"], out["complaints"], out["soft_bounces"]) == (1, 1, 1)
    assert out["errors"] == ["events[4]: timestamp 'yesterday' is not a Unix time"]
    dee, eve, fin = (sent[e][0] for e in ("dee@globex.test", "eve@globex.test", "fin@globex.test"))
    with workspace.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [dee, eve, fin], "transactional") == {dee, eve}
        reasons = conn.execute(select(lead.c.bounce_reason).where(lead.c.id == dee)).scalar()
    assert reasons == "5.0.0 500 unknown recipient"


def test_bad_requests_record_nothing(workspace, server, clock) -> None:
    _sent(workspace, clock.now(), ["gus@initech.test"])
    token = workspace.settings.mail.events_api_token.get_secret_value()
    with _client(server, "not-the-token") as api:
        assert api.post("/api/bounces", json={"events": []}).status_code == 401
    with _client(server, token) as api:
        r = api.post("/api/bounces", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"] == "body: not valid JSON"
        r = api.post("/api/bounces", json={"hello": 1})
        assert r.status_code == 400 and "expected" in r.json()["error"]
        r = api.post("/api/bounces", content=b"[" * 5000 + b"]" * 5000)
        assert r.status_code == 400 and "nested deeper" in r.json()["error"]
    with workspace.engine.connect() as conn:
        assert conn.execute(select(mail_feedback)).first() is None
