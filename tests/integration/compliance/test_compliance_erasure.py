"""`nurture leads erase` and `nurture leads export-data` (issue 22 items 2 and 3), on SQLite and PostgreSQL:
after an erasure no text column of any table (reflected from the database, not listed here) holds the
person's address or name; a re-import of their CSV row is refused and reported; erase is idempotent and an
unknown address exits 2; the access export holds what the workspace knows about them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cli_support import run_cli
from sqlalchemy import JSON, MetaData, String, Text, cast, func, insert, select

from nurture_tui.clock import VirtualClock
from nurture_tui.config import load_settings
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.seeding import publish_definition
from nurture_tui.salesforce.outbox import enqueue_task
from nurture_tui.store import audit
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import (
    activity,
    consent,
    enrollment,
    lead,
    lead_tag,
    mail_feedback,
    mql,
    opportunity,
    outbox,
    sf_outbox,
    subscription,
    suppression,
    sync_error,
    template,
    webhook_outbox,
)
from nurture_tui.web.consent_api import ErasedAddress, record
from nurture_tui.workspace import Workspace

EMAIL = "Quillon.Zyxwar@Example.org"
ADDRESS = EMAIL.lower()
FIRST, LAST = "Quillon", "Zyxwar"
PHONE = "+49 30 1234567"


@pytest.fixture
def ws(db_url: str, tmp_path: Path, clock: VirtualClock, capsys: pytest.CaptureFixture[str]) -> Iterator[Workspace]:
    assert run_cli(capsys, "init", "--db", db_url)[0] == 0
    ws = Workspace.open(load_settings(None, db_url, data_dir=tmp_path), clock=clock)
    yield ws
    ws.close()


def _person(ws: Workspace, now: datetime) -> tuple[int, int]:
    """The person, with personal data in every kind of row that can hold it, and a bystander whose own
    rows mention the person's address."""
    with write_tx(ws.engine) as conn:
        lid = conn.execute(insert(lead).values(
            email=ADDRESS, first_name=FIRST, last_name=LAST, title="Head of Zyxwar Things", company="Zyxwar GmbH",
            phone=PHONE, city="Berlin", country="Germany", industry="Software", sf_id="00Q000000000001AAA",
            custom={"nickname": "Quill", "referrer": "self"}, score=42.0, created_at=now, updated_at=now,
        )).inserted_primary_key[0]
        other = conn.execute(insert(lead).values(
            email="bystander@example.com", first_name="Bea", custom={"referred_by": ADDRESS},
            created_at=now, updated_at=now)).inserted_primary_key[0]
        tid = conn.execute(insert(template).values(name="welcome", subject="Hi", html="<p>x</p>", created_at=now,
                                                   updated_at=now)).inserted_primary_key[0]
        # enrolled before the bounce below (a suppressed lead is not enrolled)
        publish_definition(conn, {"name": "drip", "steps": [{"id": "wait", "wait": {"duration": "3d"}},
                                                            {"id": "mail", "send": {"template": "welcome"}}]}, now)
        enroll_lead(conn, lid, "drip", now)
        oid = conn.execute(insert(outbox).values(
            idempotency_key="k1", lead_id=lid, template_id=tid, category="marketing", to_email=ADDRESS,
            subject=f"Hello {FIRST}, your guide", html=f"<p>Dear {FIRST} {LAST}</p>", text=f"Dear {FIRST}",
            headers={"To": ADDRESS}, status="sent", created_at=now, sent_at=now)).inserted_primary_key[0]
        base = {"outbox_id": None, "template_id": None, "url": None}
        conn.execute(insert(activity), [base | a for a in ([
            {"lead_id": lid, "kind": "sent", "at": now, "outbox_id": oid, "template_id": tid, "meta": {}},
            {"lead_id": lid, "kind": "click", "at": now, "outbox_id": oid, "template_id": tid,
             "url": f"https://example.com/pricing?utm=x&email={ADDRESS}#{LAST}",
             "meta": {"ip": "203.0.113.7", "ua": "Mozilla/5.0 Quillbrowser", "bot_reason": None}},
            {"lead_id": lid, "kind": "form", "at": now,
             "meta": {"form": "demo", "fields": {"name": f"{FIRST} {LAST}"}}},
            {"lead_id": other, "kind": "page_view", "at": now, "url": f"https://example.com/?ref={ADDRESS}",
             "meta": {}},
        ])])
        conn.execute(insert(mql).values(lead_id=lid, status="new", score=42.0, why={"top": f"{FIRST} clicked"},
                                        summary=f"{FIRST} {LAST} ({ADDRESS}) clicked pricing", created_at=now))
        enqueue_task(conn, lid, "MQL", f"{FIRST} {LAST} is hot", None, now)
        conn.execute(insert(webhook_outbox).values(idempotency_key="w1", lead_id=lid, url="https://hooks.example/x",
                                                   body={"email": ADDRESS, "name": LAST}, created_at=now))
        conn.execute(insert(sync_error).values(sobject="Lead", direction="pull", record_id="00Q000000000001AAA",
                                               message=f"DUPLICATE_EMAIL {ADDRESS}", payload={"LastName": LAST},
                                               created_at=now))
        conn.execute(insert(suppression).values(email=ADDRESS, lead_id=lid, reason="bounce",
                                                detail=f"550 5.1.1 <{ADDRESS}> unknown", created_at=now))
        conn.execute(insert(subscription).values(lead_id=lid, category="events", opted_in=False, changed_at=now))
        conn.execute(insert(consent).values(lead_id=lid, category="newsletter", status="granted", source="form",
                                            at=now, form_id="signup", ip="203.0.113.7"))
        conn.execute(insert(lead_tag).values(lead_id=lid, tag=f"{LAST.lower()}-vip"))
        conn.execute(insert(opportunity).values(lead_id=lid, name=f"{LAST} renewal (call {PHONE})", created_at=now))
        audit.record(conn, at=now, user="tester", action="lead.update", entity="lead", entity_id=lid,
                     before={"first_name": None}, after={"first_name": FIRST, "email": ADDRESS})
        audit.record(conn, at=now, user="tester", action="segments.save", entity="segment", entity_id=1,
                     after={"note": f"built for {ADDRESS}"})
    return int(lid), int(other)


def _mentions(ws: Workspace, *needles: str) -> list[str]:
    """Every (table.column) of the database, reflected, whose text holds one of the needles."""
    meta = MetaData()
    meta.reflect(ws.engine)
    hits = []
    with ws.engine.connect() as conn:
        for table in meta.sorted_tables:
            for col in table.columns:
                if not isinstance(col.type, (String, Text, JSON)) and "JSON" not in type(col.type).__name__:
                    continue
                text = func.lower(cast(col, Text))
                for needle in needles:
                    n = conn.execute(select(func.count()).select_from(table)
                                     .where(text.contains(needle.lower(), autoescape=True))).scalar()
                    if n:
                        hits.append(f"{table.name}.{col.name} ({needle})")
    return hits


def test_erase_leaves_no_trace_and_blocks_a_reimport(ws: Workspace, db_url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    now = ws.clock.now()
    lid, other = _person(ws, now)
    assert len(_mentions(ws, ADDRESS, FIRST, LAST)) > 10  # the scan sees what it is meant to find

    code, out, err = run_cli(capsys, "leads", "erase", EMAIL, "--yes", "--db", db_url)
    assert code == 0, err
    assert out.startswith(f"{ADDRESS}: erased lead {lid} (") and "Salesforce: anonymise queued" in out

    assert _mentions(ws, ADDRESS, FIRST, LAST, PHONE) == []
    with ws.engine.connect() as conn:
        assert conn.execute(select(opportunity.c.name).where(opportunity.c.lead_id == lid)).scalar() \
            == "[erased] renewal (call [erased])"
        row = conn.execute(select(lead).where(lead.c.id == lid)).one()
        assert row.email == f"erased-{lid}@erased.invalid" and row.first_name is None and row.custom == {}
        assert (row.country, row.industry, row.score, row.opted_out) == ("Germany", "Software", 42.0, True)
        urls = dict(conn.execute(select(activity.c.kind, activity.c.url).where(activity.c.lead_id == lid)).all())
        assert urls["click"] == "https://example.com/pricing"
        metas = conn.execute(select(activity.c.meta).where(activity.c.lead_id == lid)).scalars().all()
        assert all("ip" not in m and "ua" not in m for m in metas)
        assert conn.execute(select(func.count()).select_from(activity).where(activity.c.lead_id == lid)).scalar() == 5
        sf = conn.execute(select(sf_outbox.c.op, sf_outbox.c.status).where(sf_outbox.c.lead_id == lid)
                          .order_by(sf_outbox.c.id)).all()
        assert [tuple(r) for r in sf] == [("upsert", "cancelled"), ("anonymise", "pending")]
        assert conn.execute(select(suppression.c.reason).where(suppression.c.lead_id == lid)).scalars().all() \
            == ["erased"]
        assert conn.execute(select(enrollment.c.status, enrollment.c.exit_reason, enrollment.c.due_at)
                            .where(enrollment.c.lead_id == lid)).one() == ("exited", "erased", None)
        assert conn.execute(select(activity.c.meta).where(activity.c.lead_id == lid, activity.c.kind == "exited")
                            ).scalar() == {"reason": "erased"}
        bystander = conn.execute(select(lead.c.email, lead.c.custom).where(lead.c.id == other)).one()
        assert bystander.email == "bystander@example.com" and bystander.custom == {"referred_by": "[erased]"}
        entries = conn.execute(select(audit.audit.c.action, audit.audit.c.after)
                               .where(audit.audit.c.action == "leads.erase")).all()
        assert [tuple(e) for e in entries] == [("leads.erase", {"salesforce": "anonymise"})]

    # idempotent: the address is known as erased, nothing changes, exit 0
    code, out, _ = run_cli(capsys, "leads", "erase", ADDRESS, "--yes", "--db", db_url)
    assert code == 0 and out.strip() == f"{ADDRESS}: already erased; nothing left to remove"
    stand_in = f"erased-{lid}@erased.invalid"
    code, out, _ = run_cli(capsys, "leads", "erase", stand_in, "--yes", "--db", db_url)
    assert code == 0 and out.strip() == f"{stand_in}: already erased; nothing left to remove"

    # a re-import of the person's row is refused and reported; the other rows go in
    csv = tmp_path / "again.csv"
    csv.write_text(f"email,first_name,last_name\n{EMAIL},{FIRST},{LAST}\nnew@example.com,New,Person\n")
    code, out, _ = run_cli(capsys, "leads", "import", str(csv), "--db", db_url)
    assert code == 0
    assert "imported 1, updated 0, rejected 1" in out and "1 erased person blocked" in out
    errors = (tmp_path / "again.errors.csv").read_text()
    assert "erased at their request" in errors
    assert _mentions(ws, FIRST, LAST) == []
    code, _, err = run_cli(capsys, "leads", "export-data", ADDRESS, "-o", str(tmp_path / "x.json"), "--db", db_url)
    assert code == 2 and err.strip() == f"error: {ADDRESS}: erased at the person's request; nothing is held about them"

    # a signup form posting the address is refused (409 over HTTP) until the block is lifted
    with pytest.raises(ErasedAddress, match="erased at the person's request"):
        record(ws, {"email": EMAIL, "category": "newsletter", "source": "form"}, "203.0.113.9")

    # the person comes back of their own accord: the operator lifts the block, the row imports as a new lead
    code, _, err = run_cli(capsys, "leads", "unblock", "nobody@nowhere.test", "--db", db_url)
    assert code == 2 and err.strip() == "error: nobody@nowhere.test: not an erased address"
    code, out, _ = run_cli(capsys, "leads", "unblock", EMAIL, "--db", db_url)
    assert code == 0 and out.strip() == "unblocked 1 erased address"
    code, out, _ = run_cli(capsys, "leads", "import", str(csv), "--db", db_url)
    assert code == 0 and "imported 1, updated 1, rejected 0" in out
    with ws.engine.connect() as conn:
        back = conn.execute(select(lead.c.id, lead.c.first_name).where(lead.c.email == ADDRESS)).one()
    assert back.id != lid and back.first_name == FIRST


def test_erase_unknown_address_exits_2_and_erases_nothing(ws: Workspace, db_url: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    lid, _ = _person(ws, ws.clock.now())
    code, out, err = run_cli(capsys, "leads", "erase", ADDRESS, "nobody@nowhere.test", "--yes", "--db", db_url)
    assert code == 2 and out == ""
    assert err.strip() == "error: nobody@nowhere.test: no lead with this address (and none erased)"
    with ws.engine.connect() as conn:
        assert conn.execute(select(lead.c.email).where(lead.c.id == lid)).scalar() == ADDRESS


def test_export_data_holds_what_is_known(ws: Workspace, db_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    lid, _ = _person(ws, ws.clock.now())
    with write_tx(ws.engine) as conn:  # a soft bounce processed from a DSN (mail/bounces.py)
        conn.execute(insert(mail_feedback).values(dedupe_key="dsn:1", kind="soft_bounce", outcome="applied",
                                                  source="maildir", lead_id=lid, status="4.2.2",
                                                  reason="<recipient>: mailbox full", created_at=ws.clock.now()))
    target = tmp_path / "quillon.json"
    code, out, err = run_cli(capsys, "leads", "export-data", EMAIL, "--output", str(target), "--db", db_url)
    assert code == 0, err
    assert out.strip() == f"{target}: {ADDRESS}: 4 activities, 1 messages, 1 consent records"
    doc = json.loads(target.read_text())
    assert doc["format"] == "nurture.personal-data/1" and doc["lead"]["id"] == lid
    assert doc["lead"]["last_name"] == LAST and doc["lead"]["custom"]["nickname"] == "Quill"
    assert [m["subject"] for m in doc["messages"]] == [f"Hello {FIRST}, your guide"]
    assert doc["messages"][0]["template"] == "welcome"
    assert [a["kind"] for a in doc["activities"]] == ["entered", "sent", "click", "form"]
    assert doc["activities"][2]["meta"]["ip"] == "203.0.113.7"
    assert [(e["sequence"], e["node_id"], e["exit_reason"]) for e in doc["enrollments"]] == [("drip", "wait", None)]
    assert doc["consent"][0] | {"at": None} == {
        "category": "newsletter", "status": "granted", "source": "form", "legal_basis": "consent", "at": None,
        "form_id": "signup", "ip": "203.0.113.7", "token": None, "requested_at": None, "detail": None}
    assert doc["mqls"][0]["summary"].startswith(f"{FIRST} {LAST}")
    assert doc["subscriptions"] == [{"category": "events", "opted_in": False, "changed_at": doc["subscriptions"][0]
                                     ["changed_at"]}]
    assert doc["tags"] == ["zyxwar-vip"] and doc["suppressions"][0]["reason"] == "bounce"
    assert doc["score"]["stored"] == 42.0 and isinstance(doc["score"]["history"], list)
    assert doc["salesforce_pending"][0]["sobject"] == "Task"
    assert [(f["kind"], f["status"]) for f in doc["bounces_and_complaints"]] == [("soft_bounce", "4.2.2")]

    code, _, err = run_cli(capsys, "leads", "export-data", "nobody@nowhere.test", "-o", str(target), "--db", db_url)
    assert code == 2 and "no lead with this address" in err
