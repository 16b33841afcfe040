"""The agreed outbox API: rows land in sf_outbox inside the caller's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from nurture_tui.errors import ValidationError
from nurture_tui.salesforce import outbox
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead, sf_outbox
from nurture_tui.workspace import Workspace


def test_enqueue_rows(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        lid = conn.execute(insert(lead).values(email="a@example.com")).inserted_primary_key[0]
        outbox.enqueue_field_update(conn, lid, {"score": 42.5, "last_engagement": now}, now)
        outbox.enqueue_task(conn, lid, "MQL", "body", None, now)
        outbox.enqueue_campaign_member(conn, lid, "Webinar", "Responded", now)
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(sf_outbox).order_by(sf_outbox.c.id)).mappings().all()
    assert [(r["sobject"], r["op"], r["status"]) for r in rows] == [
        ("Lead", "update", "pending"), ("Task", "upsert", "pending"), ("CampaignMember", "upsert", "pending")]
    assert rows[0]["payload"] == {"score": 42.5, "last_engagement": now.isoformat()}
    assert rows[2]["payload"] == {"campaign": "Webinar", "Status": "Responded"}


def test_rejects_unknown_field(workspace: Workspace) -> None:
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn, pytest.raises(ValidationError, match=r"fields\.Email"):
        outbox.enqueue_field_update(conn, 1, {"Email": "x"}, now)
