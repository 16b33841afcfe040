"""Erasure and Salesforce (issue 22 item 2), against the emulator over real HTTPS with simple-salesforce: the
configured action goes out through the sync's outbox (anonymise: the person's fields overwritten; delete: the
record deleted), and a pull never brings an erased person back — neither their old record nor a new record
with their address."""

from __future__ import annotations

from sqlalchemy import func, select

from nurture_tui.compliance.consent import consent_of, record_consent
from nurture_tui.compliance.erasure import erase
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import lead, sf_outbox, sync_error
from nurture_tui.workspace import Workspace

from .sf_support import local_lead, new_lead, sync


def _errors(ws: Workspace) -> list[tuple[str | None, str]]:
    with ws.engine.connect() as conn:
        return [(r.code, r.message) for r in conn.execute(select(sync_error.c.code, sync_error.c.message))]


def _erase(ws: Workspace, email: str) -> None:
    with write_tx(ws.engine) as conn:
        erase(conn, email, now=ws.clock.now(), settings=ws.settings, user="tester")


def test_anonymise_delete_and_no_way_back(sf_ws: Workspace, emulator: Emulator) -> None:
    anon = new_lead(emulator, "anon@example.com", FirstName="Ann", Phone="+1 555 0100", Title="CTO")
    gone = new_lead(emulator, "gone@example.com", FirstName="Gus")
    sync(sf_ws)
    assert local_lead(sf_ws, anon) is not None and local_lead(sf_ws, gone) is not None

    _erase(sf_ws, "anon@example.com")  # default action: anonymise
    sf_ws.settings.compliance.salesforce_erasure = "delete"
    _erase(sf_ws, "gone@example.com")
    report = sync(sf_ws)
    assert report.ok and report.pushed is not None and report.pushed.failed == 0, (report, _errors(sf_ws))

    rec = emulator.org.find(anon)
    assert rec is not None and not rec.get("IsDeleted")
    assert (rec.get("FirstName"), rec["LastName"], rec.get("Email"), rec.get("Phone"), rec.get("Title"),
            rec["Company"], rec["HasOptedOutOfEmail"]) == (None, "Erased", None, None, None, "Erased", True)
    deleted = emulator.org.find(gone)
    assert deleted is None or deleted.get("IsDeleted")
    with sf_ws.engine.connect() as conn:
        rows = conn.execute(select(sf_outbox.c.sobject, sf_outbox.c.op, sf_outbox.c.status)
                            .where(sf_outbox.c.sobject == "LeadErasure").order_by(sf_outbox.c.id)).all()
    assert [tuple(r) for r in rows] == [("LeadErasure", "anonymise", "sent"), ("LeadErasure", "delete", "sent")]

    # someone re-creates the person in Salesforce; and the anonymised record changes again
    again = new_lead(emulator, "Anon@Example.com", FirstName="Ann")
    emulator.org.update("Lead", anon, {"Email": "anon@example.com", "FirstName": "Ann"})
    report = sync(sf_ws)
    assert report.ok and report.pulled["Lead"].erased == 2, (report, _errors(sf_ws))
    assert local_lead(sf_ws, again) is None
    with sf_ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(lead).where(
            func.lower(lead.c.email).in_(["anon@example.com", "gone@example.com"]))).scalar() == 0
        assert conn.execute(select(lead.c.first_name).where(lead.c.sf_id == anon)).scalar() is None


def test_an_opt_out_in_salesforce_withdraws_consent(sf_ws: Workspace, emulator: Emulator) -> None:
    sf_id = new_lead(emulator, "cara@example.com", FirstName="Cara")
    sync(sf_ws)
    lid = local_lead(sf_ws, sf_id)["id"]
    now = sf_ws.clock.now()
    with write_tx(sf_ws.engine) as conn:
        record_consent(conn, [lid], "newsletter", source="salesforce", now=now, settings=sf_ws.settings)
    emulator.org.update("Lead", sf_id, {"HasOptedOutOfEmail": True})
    report = sync(sf_ws)
    assert report.ok, (report, _errors(sf_ws))
    with sf_ws.engine.connect() as conn:
        assert [(c.category, c.status, c.source) for c in consent_of(conn, lid)] == \
            [("newsletter", "withdrawn", "salesforce")]
    assert local_lead(sf_ws, sf_id)["opted_out"] is True
