"""An admin's own script against the emulator: unchanged simple-salesforce over real HTTPS with the session id and
CA `nurture salesforce emulator` prints — describe, setup objects, SOQL forms, Collections, Composite, Bulk 2.0,
the older Bulk API — and a chunked request body (what jsforce sends for its login)."""

from __future__ import annotations

import http.client
import ssl

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from nurture_tui.salesforce.emulator import Emulator


def _script_client(emu: Emulator) -> Salesforce:
    """What a user's script does with the printed credentials: a direct session, trusting the emulator's CA."""
    creds = emu.credentials()
    session = requests.Session()
    session.trust_env = False
    session.verify = creds["ca_file"]
    return Salesforce(instance_url=creds["instance_url"], session_id=creds["session_id"], session=session,
                      version=creds["api_version"])


def test_credentials_cover_every_login_flow(emulator: Emulator) -> None:
    creds = emulator.credentials()
    for key in ("instance_url", "username", "password", "security_token", "consumer_key", "consumer_secret",
                "jwt_private_key_file", "session_id", "ca_file", "soap_login_url", "token_url"):
        assert creds[key], key
    session = requests.Session()
    session.trust_env = False
    session.verify = creds["ca_file"]
    token = session.post(creds["token_url"], data={
        "grant_type": "password", "client_id": creds["consumer_key"], "client_secret": creds["consumer_secret"],
        "username": creds["username"], "password": creds["password"] + creds["security_token"]}).json()
    assert token["instance_url"] == creds["instance_url"] and token["access_token"]
    versions = session.get(f"{creds['instance_url']}/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert _script_client(emulator).query("SELECT Username FROM User")["records"][0]["Username"] == creds["username"]


def test_describe_picklists_child_relationships_and_setup_objects(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert names["LeadStatus"]["queryable"] is True and names["LeadStatus"]["createable"] is False
    assert names["Lead"]["createable"] is True and names["Group"]["keyPrefix"] == "00G"
    assert (names["CampaignMember"]["label"], names["Opportunity"]["labelPlural"]) == ("Campaign Member",
                                                                                       "Opportunities")
    lead = sf.Lead.describe()
    fields = {f["name"]: f for f in lead["fields"]}
    status = fields["Status"]
    assert status["type"] == "picklist" and status["defaultValue"] == "Open - Not Contacted"
    assert status["picklistValues"][0] == {"active": True, "defaultValue": True, "label": "Open - Not Contacted",
                                           "validFor": None, "value": "Open - Not Contacted"}
    assert "Closed - Converted" in [p["value"] for p in status["picklistValues"]]
    assert [p["value"] for p in fields["Rating"]["picklistValues"]] == ["Hot", "Warm", "Cold"]
    owner = fields["OwnerId"]
    assert (owner["type"], owner["referenceTo"], owner["relationshipName"], owner["polymorphicForeignKey"]) == \
        ("reference", ["User", "Group"], "Owner", True)
    assert (owner["label"], fields["HasOptedOutOfEmail"]["type"]) == ("Owner ID", "boolean")
    assert (fields["Email"]["nillable"], fields["LastName"]["nillable"], fields["Id"]["createable"]) == \
        (True, False, False)
    assert fields["Nurture_Score__c"]["custom"] is True and fields["Nurture_Score__c"]["updateable"] is True
    children = {(c["childSObject"], c["field"]): c["relationshipName"] for c in lead["childRelationships"]}
    assert children[("CampaignMember", "LeadId")] == "CampaignMembers" and children[("Task", "WhoId")] == "Tasks"
    account_children = {c["relationshipName"] for c in sf.Account.describe()["childRelationships"]}
    assert {"Contacts", "Opportunities"} <= account_children
    # a Lead Status added in Setup shows up in describe and in LeadStatus queries
    emulator.org.insert_trusted("LeadStatus", [{"MasterLabel": "Marketing Qualified", "ApiName": "Marketing Qualified",
                                                "SortOrder": 0, "IsDefault": False, "IsConverted": False}])
    values = [p["value"] for p in {f["name"]: f for f in sf.Lead.describe()["fields"]}["Status"]["picklistValues"]]
    assert values[:2] == ["Marketing Qualified", "Open - Not Contacted"] and len(values) == 6
    statuses = sf.query("SELECT MasterLabel, IsConverted, IsDefault FROM LeadStatus WHERE IsConverted = false")
    assert statuses["totalSize"] == 5 and statuses["records"][0]["attributes"]["type"] == "LeadStatus"


def test_soql_forms_over_http(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    account = sf.Account.create({"Name": "Acme"})["id"]
    sf.Contact.create({"LastName": "Amy", "AccountId": account})
    leads = [sf.Lead.create({"LastName": f"L{i}", "Company": "Acme", "LeadSource": "Web" if i else "Partner"})["id"]
             for i in range(3)]
    campaign = sf.Campaign.create({"Name": "Webinar"})["id"]
    sf.CampaignMember.create({"CampaignId": campaign, "LeadId": leads[0], "Status": "Responded"})
    grouped = sf.query("SELECT LeadSource, COUNT(Id) n FROM Lead GROUP BY LeadSource ORDER BY LeadSource")
    assert [(r["LeadSource"], r["n"], r["attributes"]) for r in grouped["records"]] == [
        ("Partner", 1, {"type": "AggregateResult"}), ("Web", 2, {"type": "AggregateResult"})]
    nested = sf.query("SELECT Name, (SELECT LastName FROM Contacts) FROM Account")["records"][0]
    assert nested["Contacts"]["totalSize"] == 1 and nested["Contacts"]["records"][0]["LastName"] == "Amy"
    joined = sf.query("SELECT Id FROM Lead WHERE Id IN (SELECT LeadId FROM CampaignMember WHERE CampaignId = "
                      f"'{campaign}')")
    assert [r["Id"] for r in joined["records"]] == [leads[0]]
    owner = sf.query(f"SELECT Owner.Name, Owner.Type FROM Lead WHERE Id = '{leads[1]}'")["records"][0]["Owner"]
    assert owner["attributes"]["type"] == "Name" and owner["Type"] == "User"
    assert sf.query("SELECT Id FROM Lead WHERE CreatedDate = TODAY AND CreatedDate = LAST_N_DAYS:7")["totalSize"] == 3
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id, Nope FROM Lead")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert err.value.content[0]["message"].startswith("\nSELECT Id, Nope FROM Lead\n           ^\n")


def test_sosl_search(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    ada = sf.Lead.create({"FirstName": "Ada", "LastName": "Smith", "Company": "Acme Labs",
                          "Email": "ada@acme.example"})["id"]
    jones = sf.Lead.create({"LastName": "Jones", "Company": "Globex", "Email": "jo@globex.example"})["id"]
    contact = sf.Contact.create({"LastName": "Acme-Buyer"})["id"]
    found = sf.search("FIND {acme} IN ALL FIELDS RETURNING Lead(Id, Name WHERE LastName != null ORDER BY Name "
                      "LIMIT 5), Contact(LastName)")
    assert found == {"searchRecords": [
        {"attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{ada}"}, "Id": ada,
         "Name": "Ada Smith"},
        {"attributes": {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{contact}"},
         "LastName": "Acme-Buyer"}]}
    assert [r["Id"] for r in sf.quick_search("glob*")["searchRecords"]] == [jones]
    assert sf.search("FIND {jo} IN NAME FIELDS RETURNING Lead(Name)") == {"searchRecords": []}  # whole words
    names = sf.search("FIND {ada OR jones} IN NAME FIELDS RETURNING Lead(Name ORDER BY Name)")["searchRecords"]
    assert [r["Name"] for r in names] == ["Ada Smith", "Jones"]
    with pytest.raises(SalesforceMalformedRequest, match="MALFORMED_SEARCH"):
        sf.search("FIND acme")


def test_query_more_and_query_all(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    ids = [r["id"] for r in sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "LastName": f"Q{i}", "Company": "C"} for i in range(200)]})]
    first = sf.query("SELECT Id FROM Lead ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["done"] is True and first["totalSize"] == 200
    for i in range(200, 450, 200):
        sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "LastName": f"Q{j}", "Company": "C"} for j in range(i, i + 200)]})
    page = sf.query("SELECT Id FROM Lead ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    assert page["done"] is False and page["totalSize"] == 600
    locator = page["nextRecordsUrl"].rsplit("/", 1)[1]
    more = sf.query_more(locator, headers={"Sforce-Query-Options": "batchSize=200"})
    assert len(more["records"]) == 200 and more["records"][0]["Id"] != page["records"][0]["Id"]
    sf.Lead.delete(ids[0])
    assert sf.query_all("SELECT Id FROM Lead")["totalSize"] == 599
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in deleted["records"]] == [ids[0]]


def test_collections_create_retrieve_delete(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "LastName": "A", "Company": "C", "Email": "a@example.com"},
        {"attributes": {"type": "Lead"}, "LastName": "B"},
        {"attributes": {"type": "Account"}, "Name": "Mixed types are allowed"}]})
    assert [r["success"] for r in created] == [True, False, True]
    assert created[1]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are "
                                     "missing: [Company]", "fields": ["Company"]}]
    rolled = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "LastName": "C", "Company": "C"}, {"attributes": {"type": "Lead"}}]})
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 1
    got = sf.restful("composite/sobjects/Lead", params={"ids": created[0]["id"], "fields": "LastName,Email"})
    assert got == [{"attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{created[0]['id']}"},
                    "LastName": "A", "Email": "a@example.com"}]
    gone = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{created[0]['id']},{created[2]['id']}"})
    assert [r["success"] for r in gone] == [True, True]
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


def test_composite_chains_references(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    base = "/services/data/v59.0"
    res = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{base}/sobjects/Account", "referenceId": "acct", "body": {"Name": "Acme"}},
        {"method": "POST", "url": f"{base}/sobjects/Contact", "referenceId": "ct",
         "body": {"LastName": "Amy", "AccountId": "@{acct.id}"}},
        {"method": "GET", "url": f"{base}/query?q=SELECT+Id,+(SELECT+LastName+FROM+Contacts)+FROM+Account",
         "referenceId": "q"}]})
    out = res["compositeResponse"]
    assert [(r["referenceId"], r["httpStatusCode"]) for r in out] == [("acct", 201), ("ct", 201), ("q", 200)]
    assert out[0]["body"]["success"] is True
    assert out[2]["body"]["records"][0]["Contacts"]["records"][0]["LastName"] == "Amy"


def test_composite_batch_and_tree(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    tree = sf.restful("composite/tree/Account", method="POST", json={"records": [
        {"attributes": {"type": "Account", "referenceId": "acme"}, "Name": "Acme",
         "Contacts": {"records": [{"attributes": {"type": "Contact", "referenceId": "amy"}, "LastName": "Amy"},
                                  {"attributes": {"type": "Contact", "referenceId": "bo"}, "LastName": "Bo"}]}}]})
    assert tree["hasErrors"] is False and [r["referenceId"] for r in tree["results"]] == ["acme", "amy", "bo"]
    acme = tree["results"][0]["id"]
    assert sf.Contact.get(tree["results"][1]["id"])["AccountId"] == acme
    with pytest.raises(SalesforceMalformedRequest) as err:  # one bad child: nothing is created
        sf.restful("composite/tree/Account", method="POST", json={"records": [
            {"attributes": {"type": "Account", "referenceId": "a2"}, "Name": "Second",
             "Contacts": {"records": [{"attributes": {"type": "Contact", "referenceId": "c2"}}]}}]})
    assert err.value.content == {"hasErrors": True, "results": [{"referenceId": "c2", "errors": [
        {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
         "fields": ["LastName"]}]}]}
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1
    batch = sf.restful("composite/batch", method="POST", json={"haltOnError": False, "batchRequests": [
        {"method": "GET", "url": f"v59.0/sobjects/Account/{acme}?fields=Name"},
        {"method": "PATCH", "url": f"v59.0/sobjects/Account/{acme}", "richInput": {"Website": "acme.example"}},
        {"method": "GET", "url": "v59.0/query?q=SELECT+Website+FROM+Account"},
        {"method": "GET", "url": "v59.0/sobjects/Account/001000000009999AAA"}]})
    assert batch["hasErrors"] is True
    assert [r["statusCode"] for r in batch["results"]] == [200, 204, 200, 404]
    assert batch["results"][0]["result"]["Name"] == "Acme"
    assert batch["results"][2]["result"]["records"][0]["Website"] == "acme.example"


def test_bulk2_rejects_what_bulk_queries_cannot_do_and_runs_the_rest(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    lead = sf.Lead.create({"LastName": "B", "Company": "C", "Email": "b@example.com"})["id"]
    with pytest.raises(SalesforceMalformedRequest, match="INVALIDJOB"):
        list(sf.bulk2.Lead.query("SELECT LeadSource, COUNT(Id) FROM Lead GROUP BY LeadSource", wait=0))
    pages = list(sf.bulk2.Lead.query("SELECT Id, Owner.Name FROM Lead WHERE Id NOT IN (SELECT LeadId FROM "
                                     "CampaignMember)", wait=0))
    assert pages == [f'"Id","Owner.Name"\n"{lead}","Nurture Integration"\n']
    results = sf.bulk2.Lead.insert(records=[{"LastName": "X", "Company": "C"}, {"LastName": "Y"}], wait=0)
    assert (results[0]["numberRecordsProcessed"], results[0]["numberRecordsFailed"]) == (2, 1)


def test_bulk_api_1(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    inserted = sf.bulk.Lead.insert([{"LastName": "A", "Company": "C", "Email": "a@example.com"}, {"LastName": "B"}])
    assert inserted[0]["success"] is True and inserted[0]["created"] is True
    assert inserted[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    updated = sf.bulk.Lead.update([{"Id": inserted[0]["id"], "Title": "CTO"}])
    assert updated == [{"success": True, "created": False, "id": inserted[0]["id"], "errors": []}]
    rows = sf.bulk.Lead.query("SELECT Id, Title, CreatedDate, Owner.Name FROM Lead", wait=0)
    assert rows[0]["Title"] == "CTO" and rows[0]["attributes"]["type"] == "Lead"
    assert isinstance(rows[0]["CreatedDate"], int)  # epoch milliseconds, as Bulk 1.0 JSON gives them
    assert rows[0]["Owner"]["Name"] == "Nurture Integration"
    sf.bulk.Lead.delete([{"Id": inserted[0]["id"]}])
    assert sf.bulk.Lead.query("SELECT Id FROM Lead", wait=0) == []
    assert len(sf.bulk.Lead.query_all("SELECT Id FROM Lead", wait=0)) == 1


def test_bulk_api_1_xml_jobs_with_csv_batches(emulator: Emulator) -> None:
    """The flavour jsforce's `conn.bulk` speaks: XML job and batch info, CSV batches and results."""
    creds = emulator.credentials()
    s = requests.Session()
    s.trust_env = False
    s.verify = creds["ca_file"]
    base = f"{creds['instance_url']}/services/async/59.0"
    xml_headers = {"X-SFDC-Session": creds["session_id"], "Content-Type": "application/xml; charset=utf-8"}
    csv_headers = {**xml_headers, "Content-Type": "text/csv"}

    def job(operation: str) -> str:
        r = s.post(f"{base}/job", headers=xml_headers, data=(
            '<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
            f"<operation>{operation}</operation><object>Lead</object><contentType>CSV</contentType></jobInfo>"))
        assert r.status_code == 201 and r.headers["Content-Type"].startswith("application/xml")
        assert "<state>Open</state>" in r.text and "<contentType>CSV</contentType>" in r.text
        return r.text.split("<id>")[1].split("</id>")[0]

    jid = job("insert")
    batch = s.post(f"{base}/job/{jid}/batch", headers=csv_headers,
                   data='LastName,Company,Email\n"O\'Neil, Jr.",Acme,oneil@example.com\nNoCompany,,\n')
    assert batch.status_code == 201 and "<state>Completed</state>" in batch.text
    bid = batch.text.split("<id>")[1].split("</id>")[0]
    result = s.get(f"{base}/job/{jid}/batch/{bid}/result", headers=xml_headers)
    lines = result.text.splitlines()
    assert lines[0] == '"Id","Success","Created","Error"' and lines[1].endswith('"true","true",""')
    assert lines[2].startswith('"","false","false","REQUIRED_FIELD_MISSING:')
    assert "<state>Closed</state>" in s.post(f"{base}/job/{jid}", headers=xml_headers, data=(
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><state>Closed</state></jobInfo>')).text
    qid = job("query")
    qbatch = s.post(f"{base}/job/{qid}/batch", headers=csv_headers, data="SELECT LastName, CreatedDate FROM Lead")
    qbid = qbatch.text.split("<id>")[1].split("</id>")[0]
    listing = s.get(f"{base}/job/{qid}/batch/{qbid}/result", headers=xml_headers).text
    rid = listing.split("<result>")[1].split("</result>")[0]
    rows = s.get(f"{base}/job/{qid}/batch/{qbid}/result/{rid}", headers=xml_headers).text.splitlines()
    assert rows[0] == '"LastName","CreatedDate"' and rows[1].startswith('"O\'Neil, Jr.","') and rows[1].endswith('Z"')
    bad = s.get(f"{base}/job/{qid}", headers={**xml_headers, "X-SFDC-Session": "nope"})
    assert bad.status_code == 400 and bad.json()["exceptionCode"] == "InvalidSessionId"


def _soap(emulator: Emulator, session_id: str, call: str) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(emulator.ca_file)
    return s.post(f"{emulator.url}/services/Soap/u/59.0", headers={"Content-Type": "text/xml", "SOAPAction": '""'},
                  data=('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header '
                        f'xmlns="urn:partner.soap.sforce.com"><SessionHeader><sessionId>{session_id}</sessionId>'
                        '</SessionHeader></soapenv:Header><soapenv:Body xmlns="urn:partner.soap.sforce.com">'
                        f"{call}</soapenv:Body></soapenv:Envelope>"))


def test_soap_convert_lead(emulator: Emulator) -> None:
    sf = _script_client(emulator)
    sid = emulator.credentials()["session_id"]
    lead = sf.Lead.create({"LastName": "Conv", "Company": "Acme", "Email": "conv@example.com"})["id"]
    account = sf.Account.create({"Name": "Existing"})["id"]
    resp = _soap(emulator, sid, f"<convertLead><leadConverts><leadId>{lead}</leadId><convertedStatus>Closed - "
                                f"Converted</convertedStatus><accountId>{account}</accountId><doNotCreateOpportunity>"
                                f"true</doNotCreateOpportunity></leadConverts><leadConverts><leadId>{lead}</leadId>"
                                "<convertedStatus>Nurturing</convertedStatus></leadConverts></convertLead>")
    assert resp.status_code == 200 and "<convertLeadResponse><result><accountId>" in resp.text
    converted = sf.Lead.get(lead)
    assert (converted["IsConverted"], converted["Status"], converted["ConvertedAccountId"]) == (
        True, "Closed - Converted", account)
    assert f"<contactId>{converted['ConvertedContactId']}</contactId>" in resp.text
    assert '<opportunityId xsi:nil="true"/>' in resp.text and "<success>true</success>" in resp.text
    assert "<statusCode>INVALID_STATUS</statusCode>" in resp.text  # the second one: not a converted status
    assert sf.Contact.get(converted["ConvertedContactId"])["AccountId"] == account
    expired = _soap(emulator, "nope", "<getUserInfo/>")
    assert expired.status_code == 500 and "<faultcode>sf:INVALID_SESSION_ID</faultcode>" in expired.text
    assert f"<userName>{emulator.username}</userName>" in _soap(emulator, sid, "<getUserInfo/>").text
    assert _soap(emulator, sid, "<queryAll/>").status_code == 500


def test_chunked_request_bodies_are_read(emulator: Emulator) -> None:
    ctx = ssl.create_default_context(cafile=str(emulator.ca_file))
    body = (f'<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Body>'
            f'<login xmlns="urn:partner.soap.sforce.com"><username>{emulator.username}</username>'
            f'<password>{emulator.password}{emulator.security_token}</password></login></se:Body></se:Envelope>')
    conn = http.client.HTTPSConnection("127.0.0.1", emulator.port, context=ctx, timeout=10)
    try:
        conn.request("POST", "/services/Soap/u/59.0", body=iter([body[:50].encode(), body[50:].encode()]),
                     headers={"Content-Type": "text/xml", "SOAPAction": '""'}, encode_chunked=True)
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200 and "<sessionId>" in text and f"<serverUrl>{emulator.url}/" in text
        # the same connection stays usable: the chunked body was consumed to its end
        conn.request("GET", "/services/data")
        assert conn.getresponse().read().startswith(b"[")
    finally:
        conn.close()
    conn = http.client.HTTPSConnection("127.0.0.1", emulator.port, context=ctx, timeout=10)
    try:
        conn.putrequest("POST", "/services/oauth2/token")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(b"zz\r\nnot hex\r\n0\r\n\r\n")
        assert conn.getresponse().status == 400
    finally:
        conn.close()
