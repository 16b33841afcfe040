"""The events API under a real uvicorn on loopback (issue 20 item 5): hostile bodies are 4xx with a
one-line reason and record nothing — never a 500. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mail_support import add_people
from sqlalchemy import func, select

from nurture_tui.store.tables import activity
from nurture_tui.web.events_api import MAX_DEPTH
from nurture_tui.web.server import WebServer


@pytest.fixture
def api(workspace) -> Iterator[httpx.Client]:
    token = workspace.settings.mail.events_api_token.get_secret_value()
    with WebServer(workspace, "127.0.0.1", 0) as server, httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def _count(ws) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(activity)).scalar_one())


def _one_line(r: httpx.Response, status: int, starts: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error.startswith(starts) and "\n" not in error and len(error) < 300, error


def test_json_nested_100000_deep_is_400(workspace, api) -> None:
    r = api.post("/api/events", content=b"[" * 100_000 + b"]" * 100_000,
                 headers={"content-type": "application/json"})
    _one_line(r, 400, f"body: JSON nested deeper than {MAX_DEPTH} levels")
    deep_meta = '{"events": [{"email": "bob@acme.test", "kind": "page_view", "meta": ' + '{"a": ' * 40 \
        + "1" + "}" * 40 + "}]}"
    _one_line(api.post("/api/events", content=deep_meta.encode()), 400, "body: JSON nested deeper than")
    _one_line(api.post("/api/events", content=b'{"events": [{"lead_id": NaN, "kind": "form"}]}'), 400,
              "body: not valid JSON")
    assert _count(workspace) == 0


@pytest.mark.parametrize("lead_id", [10**30, -(10**30), 0, 2**63])
def test_a_lead_id_out_of_range_is_422(workspace, api, clock, lead_id: int) -> None:
    add_people(workspace, clock.now())
    r = api.post("/api/events", json={"events": [{"lead_id": lead_id, "kind": "page_view"}]})
    _one_line(r, 422, "events[0].lead_id: out of range")
    assert _count(workspace) == 0


@pytest.mark.parametrize(("at", "reason"), [
    ("0001-01-01T00:00:00Z", "timestamp before 2000-01-01"),
    ("0001-01-01T00:00:00+05:00", "timestamp out of range"),
    ("1999-12-31T23:59:59Z", "timestamp before 2000-01-01"),
    ("9999-12-31T23:59:59-05:00", "timestamp out of range"),
    ("x" * 10_000, "not an ISO 8601 timestamp: 'xxx"),
    (12, "not an ISO 8601 timestamp: 12"),
])
def test_an_at_out_of_range_is_422(workspace, api, clock, at: object, reason: str) -> None:
    add_people(workspace, clock.now())
    r = api.post("/api/events", json={"events": [{"email": "bob@acme.test", "kind": "page_view", "at": at}]})
    _one_line(r, 422, f"events[0].at: {reason}")
    assert _count(workspace) == 0


def test_valid_events_still_land_after_hostile_ones(workspace, api, clock) -> None:
    ids = add_people(workspace, clock.now())
    api.post("/api/events", json={"events": [{"lead_id": 10**30, "kind": "page_view"}]})
    r = api.post("/api/events", json={"events": [{"lead_id": ids["bob"], "kind": "page_view",
                                                  "at": "2026-03-02T08:00:00+01:00"}]})
    assert r.status_code == 202 and r.json()["recorded"] == 1
