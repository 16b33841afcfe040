"""Unchanged simple-salesforce against the emulator over real HTTPS: every call the sync makes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from nurture_tui.config import SalesforceSettings
from nurture_tui.errors import NurtureError
from nurture_tui.salesforce.client import connect
from nurture_tui.salesforce.emulator import Emulator, seed_org


def _sf(emu: Emulator, auth: str = "jwt") -> Salesforce:
    return connect(SalesforceSettings(**emu.client_settings(auth)))


@pytest.mark.parametrize("auth", ["jwt", "password", "soap", "client_credentials"])
def test_every_login_flow(emulator: Emulator, auth: str) -> None:
    sf = _sf(emulator, auth)
    assert sf.sf_instance == f"127.0.0.1:{emulator.port}"
    assert sf.query("SELECT Id, Username FROM User")["records"][0]["Username"] == emulator.username


@pytest.mark.filterwarnings("error::UserWarning")
def test_bad_credentials_are_one_line_errors(emulator: Emulator, tmp_path: Path) -> None:
    cfg = SalesforceSettings(**{**emulator.client_settings("soap"), "password": "wrong"})
    with pytest.raises(NurtureError, match="INVALID_LOGIN"):
        connect(cfg)
    cfg = SalesforceSettings(**{**emulator.client_settings("jwt"), "username": "nobody@example.com"})
    with pytest.raises(NurtureError, match=r"invalid_grant.*pre-authorize") as err:
        connect(cfg)
    assert "\n" not in str(err.value)
    cfg = SalesforceSettings(**{**emulator.client_settings("jwt"), "private_key_file": tmp_path / "nope.pem"})
    with pytest.raises(NurtureError, match="private_key_file"):
        connect(cfg)


def test_env_ca_bundle_does_not_override_the_emulator_ca(emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_text(Path(requests.certs.where()).read_text())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    assert _sf(emulator).limits()["DailyApiRequests"]["Max"] > 0


def test_query_paging_relationships_and_limit_info(emulator: Emulator) -> None:
    seed_org(emulator.org, leads=700, seed=1)
    sf = _sf(emulator)
    first = sf.query("SELECT Id, Email, Owner.Name FROM Lead ORDER BY SystemModstamp, Id",
                     headers={"Sforce-Query-Options": "batchSize=200"})
    assert (first["totalSize"], len(first["records"]), first["done"]) == (700, 200, False)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    rec = first["records"][0]
    assert rec["attributes"]["type"] == "Lead"  # a Lead's Owner is polymorphic (User or queue): the Name object
    assert rec["Owner"]["attributes"] == {"type": "Name", "url": "/services/data/v59.0/sobjects/User/"
                                          + rec["Owner"]["attributes"]["url"].rsplit("/", 1)[1]}
    assert rec["Owner"]["Name"]
    all_rows = list(sf.query_all_iter("SELECT Id, SystemModstamp FROM Lead", headers={
        "Sforce-Query-Options": "batchSize=250"}))
    assert len({r["Id"] for r in all_rows}) == 700
    assert all(r["SystemModstamp"].endswith("+0000") and len(r["SystemModstamp"]) == 28 for r in all_rows)
    assert sf.query("SELECT COUNT() FROM Lead WHERE SystemModstamp = LAST_N_DAYS:31")["totalSize"] == 700
    assert sf.api_usage["api-usage"].used == emulator.api_used


def test_crud_upsert_describe_and_change_tracking(emulator: Emulator) -> None:
    sf = _sf(emulator)
    created = sf.Lead.create({"LastName": "Lovelace", "Company": "Analytical", "Email": "ada@example.com"})
    lid = created["id"]
    assert created["success"] and lid.startswith("00Q") and len(lid) == 18
    assert sf.Lead.update(lid, {"Nurture_Score__c": 42.5}) == 204
    got = sf.Lead.get(lid)
    assert got["Nurture_Score__c"] == 42.5 and got["IsDeleted"] is False
    assert got["SystemModstamp"] >= got["CreatedDate"]
    assert sf.Task.upsert("Nurture_Key__c/k-1", {"Subject": "Call", "WhoId": lid}) == 201
    assert sf.Task.upsert("Nurture_Key__c/k-1", {"Subject": "Call back"}) == 200
    assert sf.Task.get_by_custom_id("Nurture_Key__c", "k-1")["Subject"] == "Call back"
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert fields["IsConverted"]["updateable"] is False and fields["Nurture_Score__c"]["custom"] is True
    assert any(o["name"] == "CampaignMember" for o in sf.describe()["sobjects"])
    now = emulator.org.clock()
    assert lid in sf.Lead.updated(now - timedelta(days=1), now + timedelta(minutes=2))["ids"]
    assert sf.Lead.delete(lid) == 204
    deleted = sf.Lead.deleted(now - timedelta(days=1), now + timedelta(minutes=2))["deletedRecords"]
    assert [d["id"] for d in deleted] == [lid]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(lid)
    gone = sf.query_all("SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", include_deleted=True)
    assert gone["records"][0]["Id"] == lid
    with pytest.raises(SalesforceMalformedRequest, match="MALFORMED_QUERY"):
        sf.query("SELECT FROM Lead")
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        sf.query("SELECT Nope__c FROM Lead")


def test_converted_lead_is_read_only(emulator: Emulator) -> None:
    sf = _sf(emulator)
    lid = sf.Lead.create({"LastName": "X", "Company": "Y", "Email": "x@example.com"})["id"]
    out = emulator.org.convert_lead(lid)
    with pytest.raises(SalesforceMalformedRequest, match="CANNOT_UPDATE_CONVERTED_LEAD"):
        sf.Lead.update(lid, {"Nurture_Score__c": 1})
    lead = sf.Lead.get(lid)
    assert lead["IsConverted"] is True and lead["ConvertedContactId"] == out["contactId"]
    assert sf.Contact.get(out["contactId"])["Email"] == "x@example.com"


def test_collections_update_and_upsert_with_per_record_errors(emulator: Emulator) -> None:
    sf = _sf(emulator)
    ids = [sf.Lead.create({"LastName": f"L{i}", "Company": "C", "Email": f"l{i}@example.com"})["id"]
           for i in range(3)]
    records = [{"attributes": {"type": "Lead"}, "id": i, "Nurture_Grade__c": "A"} for i in ids]
    records.append({"attributes": {"type": "Lead"}, "id": "00Q000000009999AAA", "Nurture_Grade__c": "B"})
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in res] == [True, True, True, False]
    assert res[3]["errors"][0]["statusCode"] == "NOT_FOUND"
    ups = sf.restful("composite/sobjects/Task/Nurture_Key__c", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Nurture_Key__c": "t1", "Subject": "a", "WhoId": ids[0]},
        {"attributes": {"type": "Task"}, "Nurture_Key__c": "t1", "Subject": "b", "WhoId": ids[0]}]})
    assert [r["created"] for r in ups] == [True, False]
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records})
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"


def test_bulk2_query_and_ingest(emulator: Emulator) -> None:
    seed_org(emulator.org, leads=1200, seed=2)
    sf = _sf(emulator)
    pages = list(sf.bulk2.Lead.query("SELECT Id, Email, IsConverted FROM Lead", max_records=500, wait=0))
    assert len(pages) == 3
    assert pages[0].startswith('"Id","Email","IsConverted"\n') and '"false"' in pages[0]
    lead_ids = list(emulator.org.records["Lead"])[:3]
    csv_text = "Id,Nurture_Score__c,Nurture_Grade__c\n" + "".join(f"{i},7.5,#N/A\n" for i in lead_ids)
    csv_text += "00Q000000009999AAA,1,\n"
    path = Path(emulator.directory) / "up.csv"
    path.write_text(csv_text)
    (job,) = sf.bulk2.Lead.update(csv_file=str(path), wait=0)
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (4, 1)
    failed = sf.bulk2.Lead.get_failed_records(job["job_id"])
    assert "NOT_FOUND" in failed and "00Q000000009999AAA" in failed
    assert emulator.org.records["Lead"][lead_ids[0]]["Nurture_Score__c"] == 7.5
    assert emulator.org.records["Lead"][lead_ids[0]]["Nurture_Grade__c"] is None


def test_bulk2_never_relogs_in(emulator: Emulator) -> None:
    sf = _sf(emulator)
    emulator.faults.add("expired_session", path="/jobs/")
    with pytest.raises(SalesforceExpiredSession):
        list(sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0))
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1  # REST re-logs in by itself


def test_bulk2_upsert_results_and_query_all(emulator: Emulator) -> None:
    sf = _sf(emulator)
    lead_id = sf.Lead.create({"LastName": "U", "Company": "C", "Email": "u@example.com"})["id"]
    path = Path(emulator.directory) / "tasks.csv"
    path.write_text(f"Nurture_Key__c,Subject,WhoId\nk1,First,{lead_id}\nk2,Second,{lead_id}\n")
    (job,) = sf.bulk2.Task.upsert(csv_file=str(path), external_id_field="Nurture_Key__c", wait=0)
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 0)
    ok = sf.bulk2.Task.get_successful_records(job["job_id"])
    assert ok.splitlines()[0] == '"sf__Id","sf__Created","Nurture_Key__c","Subject","WhoId"' and '"true"' in ok
    assert sf.bulk2.Task.get_unprocessed_records(job["job_id"]).strip() == '"Nurture_Key__c","Subject","WhoId"'
    (again,) = sf.bulk2.Task.upsert(csv_file=str(path), external_id_field="Nurture_Key__c", wait=0)
    assert '"false"' in sf.bulk2.Task.get_successful_records(again["job_id"])  # updated, not duplicated
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == 2
    sf.Lead.delete(lead_id)
    pages = list(sf.bulk2.Lead.query_all("SELECT Id, IsDeleted FROM Lead", wait=0))
    assert f'"{lead_id}","true"' in pages[0]
