"""The tracking app under a real uvicorn on loopback: pixel, click redirect, tampered/expired tokens,
unsubscribe page + RFC 8058 one-click, bot flagging, and the events API's bearer auth."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from mail_support import add_people, committed_hooks, save_template
from sqlalchemy import insert, select

from nurture_tui.mail import suppression
from nurture_tui.mail.compose import Composer, SendRequest, compose_outbox_rows, finalize
from nurture_tui.mail.tokens import TokenSigner
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, lead, outbox, subscription
from nurture_tui.web.server import WebServer

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari"


@pytest.fixture
def web(workspace) -> Iterator[tuple[WebServer, httpx.Client]]:
    with WebServer(workspace, "127.0.0.1", 0) as server:
        workspace.settings.mail.base_url = server.url
        with httpx.Client(base_url=server.url, headers={"user-agent": BROWSER}, timeout=10,
                          event_hooks=committed_hooks(server)) as client:
            yield server, client


def _sent(ws, clock, sent_ago: timedelta = timedelta(hours=1)):
    """Queue + mark sent one message to bob; returns (lead ids, outbox row as it was sent)."""
    now = clock.now()
    ids = add_people(ws, now)
    save_template(ws, now)
    with write_tx(ws.engine) as conn:
        rows = compose_outbox_rows(conn, [SendRequest(ids["bob"], "welcome", None, None, None, "s1", "b:s1:0")],
                                   ws.settings, now)
        oid = conn.execute(insert(outbox).returning(outbox.c.id), rows).scalar_one()
        conn.execute(outbox.update().values(status="sent", sent_at=now - sent_ago))
    return ids, {**rows[0], "id": oid, **finalize(rows[0], Composer(ws.settings.mail, now))}


def _activities(ws):
    with ws.engine.connect() as conn:
        return conn.execute(select(activity).order_by(activity.c.id)).all()


def _link(html: str, kind: str) -> str:
    return re.findall(rf'"(http://127\.0\.0\.1:\d+/{kind}/[^"#]+)', html)[0]


def test_open_pixel_records_a_human_open(workspace, web, clock) -> None:
    _, client = web
    ids, row = _sent(workspace, clock)
    r = client.get(_link(row["html"], "o"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif" and r.content.startswith(b"GIF89a")
    assert "no-store" in r.headers["cache-control"]
    (act,) = _activities(workspace)
    assert (act.kind, act.lead_id, act.bot, act.outbox_id, act.node_id) == ("open", ids["bob"], False, row["id"], "s1")


def test_prefetch_and_scanner_opens_are_flagged_bot(workspace, web, clock) -> None:
    _, client = web
    _, row = _sent(workspace, clock, sent_ago=timedelta(seconds=1))
    pixel = _link(row["html"], "o")
    assert client.get(pixel).status_code == 200  # one second after delivery: prefetch
    clock.advance(timedelta(minutes=5))
    assert client.get(pixel, headers={"user-agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"}).status_code == 200
    assert client.get(pixel).status_code == 200  # a person, later
    acts = _activities(workspace)
    assert [a.bot for a in acts] == [True, True, False]
    assert "delivery" in acts[0].meta["bot_reason"] and "barracuda" in acts[1].meta["bot_reason"]


def test_click_redirects_only_to_the_signed_target(workspace, web, clock) -> None:
    _, client = web
    ids, row = _sent(workspace, clock)
    link = _link(row["html"], "c")
    r = client.get(link, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://example.com/guide?a=1&b=2"
    (act,) = _activities(workspace)
    target = "https://example.com/guide?a=1&b=2"
    assert (act.kind, act.url, act.bot, act.lead_id) == ("click", target, False, ids["bob"])


def test_tampered_forged_and_expired_tokens_get_400_and_record_nothing(workspace, web, clock) -> None:
    server, client = web
    ids, row = _sent(workspace, clock)
    link = _link(row["html"], "c")
    payload, sig = link.rsplit("/", 1)[1].split(".")
    later = clock.now() + timedelta(days=1)
    forged = TokenSigner("not-the-secret").sign("click", ids["bob"], row["message_ref"], later, "https://evil.test/")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    bad = [f"/c/{flipped}.{sig}", f"/c/{forged}", "/c/garbage", f"/o/{payload}.{sig}.gif",
           f"/u/{payload}.{sig}", _link(row["html"], "o").replace(server.url, "").replace("/o/", "/c/")]
    for path in bad:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 400, path
        assert "location" not in r.headers
    assert client.post(f"/u/{flipped}.{sig}", content="List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400
    clock.advance(timedelta(days=workspace.settings.mail.token_ttl_days + 1))
    assert client.get(link, follow_redirects=False).status_code == 400
    assert _activities(workspace) == []


def test_one_click_unsubscribe_leaves_only_that_category(workspace, web, clock) -> None:
    _, client = web
    ids, row = _sent(workspace, clock)
    lu = row["headers"]["List-Unsubscribe"]
    https_url = re.search(r"<(http[^>]+)>", lu).group(1)
    r = client.post(https_url, content="List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "marketing" in r.text
    with workspace.engine.connect() as conn:
        sub = conn.execute(select(subscription)).one()
        assert (sub.lead_id, sub.category, sub.opted_in) == (ids["bob"], "marketing", False)
        assert suppression.suppressed_ids(conn, [ids["bob"]], "marketing") == {ids["bob"]}
        assert suppression.suppressed_ids(conn, [ids["bob"]], "newsletter") == set()
    (act,) = _activities(workspace)
    assert act.kind == "unsubscribe" and act.meta["one_click"] is True and act.meta["categories"] == ["marketing"]


def test_preference_page_and_global_opt_out(workspace, web, clock) -> None:
    _, client = web
    ids, row = _sent(workspace, clock)
    page = client.get(_link(row["html"], "u"))
    assert page.status_code == 200
    for cat in workspace.settings.mail.categories:
        assert f'value="{cat}" checked' in page.text
    assert "Unsubscribe from all marketing emails" in page.text
    r = client.post(_link(row["html"], "u"), data={"action": "preferences", "category": ["marketing", "events"],
                                                    "opt_out": "1"})
    assert r.status_code == 200 and "all marketing emails" in r.text
    with workspace.engine.connect() as conn:
        assert conn.execute(select(lead.c.opted_out).where(lead.c.id == ids["bob"])).scalar() is True
        left = {s.category for s in conn.execute(select(subscription)) if not s.opted_in}
    assert left == {"newsletter", "product"}
    (act,) = _activities(workspace)
    assert act.kind == "unsubscribe" and set(act.meta["categories"]) == {"newsletter", "product", "*"}
    bad = client.post(_link(row["html"], "u"), data={"action": "preferences", "category": "nope"})
    assert bad.status_code == 400 and "unknown category" in bad.text


def test_events_api_requires_the_bearer_token(workspace, web, clock) -> None:
    _, client = web
    ids = add_people(workspace, clock.now())
    body = {"events": [{"email": "BOB@acme.test", "kind": "page_view", "url": "https://example.com/pricing"},
                       {"lead_id": ids["bare"], "kind": "form", "form": "demo-request", "at": "2026-03-02T08:00:00Z"}]}
    token = workspace.settings.mail.events_api_token.get_secret_value()
    assert client.post("/api/events", json=body).status_code == 401
    r = client.post("/api/events", json=body, headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert _activities(workspace) == []
    bad = {"events": [body["events"][0], {"email": "nobody@x.test", "kind": "page_view"}]}
    r = client.post("/api/events", json=bad, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 422 and r.json()["error"].startswith("events[1].email: no lead")
    r = client.post("/api/events", content=b"{not json", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert _activities(workspace) == []
    r = client.post("/api/events", json=body, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 202 and r.json()["recorded"] == 2
    acts = _activities(workspace)
    assert [(a.kind, a.lead_id) for a in acts] == [("page_view", ids["bob"]), ("form", ids["bare"])]
    assert acts[1].meta["form"] == "demo-request" and acts[1].at.hour == 8


def test_hits_while_the_delivery_is_not_recorded_are_bot(workspace, web, clock) -> None:
    _, client = web
    _, row = _sent(workspace, clock)
    with write_tx(workspace.engine) as conn:
        conn.execute(outbox.update().values(status="sending", sent_at=None))
    assert client.get(_link(row["html"], "o")).status_code == 200
    (act,) = _activities(workspace)
    assert act.bot and act.meta["bot_reason"] == "before delivery was recorded"


def test_one_click_as_multipart_form_data(workspace, web, clock) -> None:
    """RFC 8058: the POST SHOULD be multipart/form-data."""
    _, client = web
    ids, row = _sent(workspace, clock)
    url = re.search(r"<(http[^>]+)>", row["headers"]["List-Unsubscribe"]).group(1)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n"
            b"--XyZ--\r\n")
    r = client.post(url, content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 200
    with workspace.engine.connect() as conn:
        assert suppression.suppressed_ids(conn, [ids["bob"]], "marketing") == {ids["bob"]}
    bad = client.post(url, content=b"{}", headers={"content-type": "application/json"})
    assert bad.status_code == 400
