"""Helpers shared by the mail and tracking tests (unit and integration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert

from nurture_tui.mail import templates
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import account, lead, user
from nurture_tui.workspace import Workspace

WELCOME_HTML = """<html><body>
<p>Hi {{ lead.first_name | default("there") }},</p>
<p>{{ owner.name }} at {{ account.name | default("your company") }} thought you'd like
<a href="https://example.com/guide?a=1&amp;b=2">the guide</a>.</p>
<p>{{ owner.signature }}</p>
</body></html>"""


def add_lead(ws: Workspace, email: str, now: datetime, **fields: Any) -> int:
    with write_tx(ws.engine) as conn:
        return int(conn.execute(insert(lead).values(email=email, created_at=now, updated_at=now, **fields))
                   .inserted_primary_key[0])


def add_people(ws: Workspace, now: datetime) -> dict[str, int]:
    """An owner, an account and two leads (one with an account/owner, one bare)."""
    with write_tx(ws.engine) as conn:
        uid = conn.execute(insert(user).values(username="ann", name="Ann Owner", email="ann@example.com",
                                               signature="Ann — Example Inc.", created_at=now)).inserted_primary_key[0]
        aid = conn.execute(insert(account).values(name="Acme & Co", created_at=now)).inserted_primary_key[0]
    return {
        "owner": int(uid), "account": int(aid),
        "bob": add_lead(ws, "bob@acme.test", now, first_name="Bob", last_name="Stone", account_id=aid, owner_id=uid),
        "bare": add_lead(ws, "bare@nowhere.test", now),
    }


WELCOME_SUBJECT = "Hello {{ lead.first_name | default('there') }}"


def save_template(ws: Workspace, now: datetime, name: str = "welcome", *, subject: str = WELCOME_SUBJECT,
                  html: str = WELCOME_HTML, text: str | None = None, category: str = "marketing") -> int:
    with write_tx(ws.engine) as conn:
        return templates.upsert_template(conn, name=name, subject=subject, html=html, text=text,
                                         category=category, user="tester", now=now)


def committed_hooks(server: Any) -> dict[str, list[Any]]:
    """httpx `event_hooks` for a client of a `WebServer`: every response returns only once the tracking
    writer has committed what was answered so far (opens and clicks are answered from the tracking journal
    and committed just after; a test that reads what they recorded waits for that commit)."""
    def committed(_response: Any) -> None:
        assert server.app.hit_writer.wait_committed()

    return {"response": [committed]}
