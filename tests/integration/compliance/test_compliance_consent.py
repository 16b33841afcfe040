"""Consent (issue 22 item 1), on SQLite and PostgreSQL: recorded from an import, a form and the API; usable
in segment rules; sends of a category that needs consent refused without it (engine and dispatcher); leaving
a category withdraws it; double opt-in end to end with a real SMTP server and the real web endpoint."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cli_support import run_cli
from mail_support import save_template
from sqlalchemy import insert, select

from nurture_tui.compliance.consent import consent_of, record_consent
from nurture_tui.config import load_settings
from nurture_tui.console.segment_conditions import build, split, subjects
from nurture_tui.engine.advance import run_due
from nurture_tui.engine.enroll import enroll_lead
from nurture_tui.engine.seeding import make_leads, publish_definition
from nurture_tui.leads.queries import lead_detail
from nurture_tui.mail.dispatch import close_dispatcher, dispatch_due
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.mail.subscriptions import get_preferences, set_category, set_global_opt_out
from nurture_tui.mail.suppression import suppressed_ids
from nurture_tui.scoring.scale import scale
from nurture_tui.segments import compiler
from nurture_tui.segments.fields import catalogue
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import consent, lead, outbox
from nurture_tui.web.server import WebServer
from nurture_tui.workspace import Workspace

TOKEN = {"authorization": "Bearer test-events-token-not-for-production"}


def _one_send(name: str, template: str) -> dict:
    return {"name": name, "steps": [{"id": "mail", "send": {"template": template}}]}


def test_import_records_consent(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "init", "--db", db_url)[0] == 0
    csv = tmp_path / "fair.csv"
    csv.write_text("email,first_name\na@ex.com,A\nb@ex.com,B\n")
    code, out, err = run_cli(capsys, "leads", "import", str(csv), "--consent", "newsletter", "--db", db_url)
    assert code == 0, err
    assert out.strip() == "fair.csv: imported 2, updated 0, rejected 0; consent recorded: newsletter 2"
    code, _, err = run_cli(capsys, "leads", "import", str(csv), "--consent", "nope", "--db", db_url)
    assert code == 2 and "unknown subscription category 'nope'" in err
    # consent given elsewhere (here: in Salesforce), recorded by an operator
    code, out, err = run_cli(capsys, "leads", "consent", "A@ex.com", "--category", "events", "--source", "salesforce",
                             "--legal-basis", "contract", "--note", "opportunity 0061", "--db", db_url)
    assert code == 0, err
    assert out.strip() == "events: granted 1, confirmation sent 0, unchanged 0, refused (withdrawn earlier) 0"
    code, _, err = run_cli(capsys, "leads", "consent", "zz@ex.com", "--category", "events", "--db", db_url)
    assert code == 2 and err.strip() == "error: zz@ex.com: no lead with this address"
    ws = Workspace.open(load_settings(None, db_url, data_dir=tmp_path))
    try:
        with ws.engine.connect() as conn:
            rows = conn.execute(select(consent.c.status, consent.c.source, consent.c.legal_basis, consent.c.detail)
                                .order_by(consent.c.lead_id)).all()
    finally:
        ws.close()
    assert sorted(tuple(r) for r in rows) == sorted([("granted", "import", "consent", "import of fair.csv")] * 2
                                                    + [("granted", "salesforce", "contract", "opportunity 0061")])


def test_sends_need_the_consent_the_configuration_requires(workspace: Workspace) -> None:
    ws = workspace
    ws.settings.compliance.consent_required = ["newsletter"]
    now = ws.clock.now()
    save_template(ws, now, "news", category="newsletter")
    save_template(ws, now, "promo", category="marketing")
    with write_tx(ws.engine) as conn:
        yes, no, gone = make_leads(conn, 3, now)
        record_consent(conn, [yes, gone], "newsletter", source="api", now=now, settings=ws.settings)
        set_category(conn, gone, "newsletter", False, now)  # leaving the category withdraws the consent
        assert [c.status for c in consent_of(conn, gone)] == ["withdrawn"]
        assert suppressed_ids(conn, [yes, no, gone], "newsletter", ws.settings.compliance.required()) == {no, gone}
        assert suppressed_ids(conn, [yes, no, gone], "marketing", ws.settings.compliance.required()) == set()
        publish_definition(conn, _one_send("news-seq", "news"), now)
        for lid in (yes, no, gone):
            enroll_lead(conn, lid, "news-seq", now)
        # a message queued for the lead without consent before the rule applied: the dispatcher refuses it too
        conn.execute(insert(outbox).values(idempotency_key="early", lead_id=no, category="newsletter",
                                           to_email="x@example.com", subject="s", html="", text="t", headers={},
                                           status="queued", next_try_at=now, created_at=now))
    run_due(ws.engine, ws.clock.now, ws.settings)
    with SmtpSink() as sink:
        ws.settings.mail.smtp_url = sink.url
        try:
            result = dispatch_due(ws)
        finally:
            close_dispatcher(ws)
        assert sink.wait_for(1)
    with ws.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.lead_id, outbox.c.status).order_by(outbox.c.id)).all()
    assert sorted(tuple(r) for r in rows) == sorted([(no, "suppressed"), (yes, "sent")])
    assert result.sent == 1 and result.suppressed == 1


def test_consent_in_segment_rules(workspace: Workspace) -> None:
    ws = workspace
    now = ws.clock.now()
    ws.settings.compliance.double_opt_in = ["events"]
    with write_tx(ws.engine) as conn:
        a, b, c = make_leads(conn, 3, now)
        record_consent(conn, [a, b], "newsletter", source="form", now=now, settings=ws.settings, form_id="f1")
        record_consent(conn, [c], "events", source="api", now=now, settings=ws.settings)

    def members(rule: object) -> set[int]:
        with ws.engine.connect() as conn:
            where = compiler.where_clause(conn, rule, now, half_life_days=30.0)
            return set(conn.execute(select(lead.c.id).where(where)).scalars())

    assert members({"consent": "newsletter"}) == {a, b}
    assert members({"consent": "events"}) == set()
    assert members({"consent": "events", "status": "pending"}) == {c}
    assert members({"none": [{"consent": "newsletter", "status": "any"}]}) == {c}
    # probe form: in an `all` with another subquery condition, one of them is an EXISTS per lead
    assert members({"all": [{"consent": "newsletter"}, {"consent": "events", "status": "any"}]}) == set()
    with ws.engine.connect() as conn:
        assert compiler.count(conn, {"any": [{"consent": "newsletter"}, {"consent": "events", "status": "any"}]},
                              now) == 3
        # the lead detail screen's read model shows each record on one line
        detail = lead_detail(conn, a, scale=scale(conn, now, ws.settings), now=now)
        assert detail is not None
        assert detail.consent == ["newsletter: granted (form, consent, 2026-03-02 09:00; form f1)"]
        assert lead_detail(conn, c, scale=scale(conn, now, ws.settings), now=now).consent == [  # type: ignore[union-attr]
            "events: pending (api, consent, 2026-03-02 09:00)"]


def test_double_opt_in_end_to_end(workspace: Workspace) -> None:
    ws = workspace
    ws.settings.compliance.double_opt_in = ["events"]
    now = ws.clock.now()
    save_template(ws, now, "invite", subject="Our next event", category="events")
    with SmtpSink() as sink, WebServer(ws, "127.0.0.1", 0) as web, httpx.Client(timeout=10) as http:
        ws.settings.mail.smtp_url = sink.url
        ws.settings.mail.base_url = web.url
        try:
            # a signup form posts the visitor's consent: a new lead, pending, a confirmation mail queued
            r = http.post(f"{web.url}/api/consent", headers=TOKEN, json={
                "email": "Visitor@Example.com", "category": "events", "source": "form", "form": "event-signup",
                "ip": "198.51.100.4"})
            assert r.status_code == 200, r.text
            lid = r.json()["lead_id"]
            assert r.json()["categories"] == {"events": "pending"}
            assert http.post(f"{web.url}/api/consent", json={"email": "a@b.c", "category": "events"}).status_code == 401
            # another system, through the API (source api), for a category without double opt-in: granted at once
            r = http.post(f"{web.url}/api/consent", headers=TOKEN, json={
                "email": "visitor@example.com", "categories": ["newsletter"], "legal_basis": "contract"})
            assert r.status_code == 200 and r.json() == {"lead_id": lid, "categories": {"newsletter": "granted"}}
            bad = http.post(f"{web.url}/api/consent", headers=TOKEN, json={"email": "a@b.c", "category": "nope"})
            assert bad.status_code == 422 and "unknown subscription category" in bad.json()["error"]

            with write_tx(ws.engine) as conn:
                publish_definition(conn, _one_send("invite-1", "invite"), now)
                publish_definition(conn, _one_send("invite-2", "invite"), now)
                enroll_lead(conn, lid, "invite-1", now)
            run_due(ws.engine, ws.clock.now, ws.settings)  # not confirmed yet: the invitation is skipped
            dispatch_due(ws)
            assert sink.wait_for(1)
            confirmation = sink.messages[0].message()
            assert str(confirmation["Subject"]) == "Please confirm your subscription"
            assert confirmation["To"] == "visitor@example.com" and not confirmation["List-Unsubscribe"]
            link = re.search(r"(http://127\.0\.0\.1:\d+/confirm/\S+)", confirmation.get_body(("plain",))
                             .get_content()).group(1)

            ws.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
            page = http.get(link)  # a link scanner's GET confirms nothing
            assert page.status_code == 200 and 'method="post"' in page.text
            with ws.engine.connect() as conn:
                assert [c.status for c in consent_of(conn, lid)] == ["pending", "granted"]
            tampered = http.post(link[:-2] + ("AA" if not link.endswith("AA") else "BB"))
            assert tampered.status_code == 400
            done = http.post(link)
            assert done.status_code == 200 and "confirmed" in done.text
            assert "already confirmed" in http.post(link).text  # idempotent
            with ws.engine.connect() as conn:
                rec, news = consent_of(conn, lid)
            assert (rec.status, rec.source, rec.form_id, rec.ip) == ("granted", "form", "event-signup", "198.51.100.4")
            assert (news.category, news.status, news.source, news.legal_basis, news.ip) == \
                ("newsletter", "granted", "api", "contract", "127.0.0.1")
            assert rec.token and rec.detail and rec.detail.startswith("confirmed by double opt-in")

            with write_tx(ws.engine) as conn:
                enroll_lead(conn, lid, "invite-2", ws.clock.now())
            run_due(ws.engine, ws.clock.now, ws.settings)
            dispatch_due(ws)
            assert sink.wait_for(2)
            invite = sink.messages[1].message()
            assert str(invite["Subject"]) == "Our next event" and invite["List-Unsubscribe"]
            with ws.engine.connect() as conn:
                sent = conn.execute(select(outbox.c.category, outbox.c.status).where(outbox.c.lead_id == lid)
                                    .order_by(outbox.c.id)).all()
            assert [tuple(s) for s in sent] == [("transactional", "sent"), ("events", "sent")]
        finally:
            close_dispatcher(ws)


def test_the_segment_builder_offers_consent(workspace: Workspace) -> None:
    ws = workspace
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        (lid,) = make_leads(conn, 1, now)
        record_consent(conn, [lid], "events", source="operator", now=now, settings=ws.settings)
        choice = next(c for c in catalogue(conn) if c.name == "consent")
    assert "events" in choice.choices and choice.statuses == ("granted", "pending", "withdrawn", "any")
    subject = next(s for s in subjects(names={"consents": choice.choices}) if s.key == "consent")
    assert build(subject, "is", "events") == {"consent": "events"}
    assert build(subject, "pending", "events") == {"consent": "events", "status": "pending"}
    assert split({"consent": "events", "status": "withdrawn"}) == ("consent", "withdrawn", "events")
    assert split({"consent": "events"}) == ("consent", "is", "events")


def test_a_signup_after_a_global_opt_out_means_only_that_category(workspace: Workspace) -> None:
    ws = workspace
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        lid, other = make_leads(conn, 2, now)
        set_global_opt_out(conn, lid, True, now)
        set_global_opt_out(conn, other, True, now)
        record_consent(conn, [lid], "events", source="form", now=now, settings=ws.settings, form_id="webinar")
        record_consent(conn, [other], "events", source="import", now=now, settings=ws.settings)
        prefs = get_preferences(conn, lid, ws.settings.mail)
        assert not prefs.opted_out and prefs.categories["events"]
        assert not any(on for cat, on in prefs.categories.items() if cat != "events")
        assert suppressed_ids(conn, [lid, other], "events") == {other}  # a file does not lift an opt-out
        assert suppressed_ids(conn, [lid, other], "newsletter") == {lid, other}
