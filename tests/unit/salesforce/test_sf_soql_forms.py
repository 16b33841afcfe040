"""Each SOQL form admins' scripts use, through the emulator's REST query route, compared with the response shapes
in reference/salesforce-wire.md §2 (records with `attributes`, `{totalSize, done, records}`, AggregateResult
rows, error bodies as a JSON list of `{message, errorCode}`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nurture_tui.salesforce.emulator.rest import Request, RestApi
from nurture_tui.salesforce.emulator.soql import format_datetime
from nurture_tui.salesforce.emulator.store import Org

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday in the first quarter


class Org4:
    """A small org: two users, a queue, two accounts with contacts, four leads, one campaign with members."""

    def __init__(self) -> None:
        org = Org(clock=lambda: NOW)
        self.org = org
        org.system_user = self.admin = org.create("User", {"Username": "admin@x.example", "FirstName": "Ann",
                                                           "LastName": "Admin", "Email": "admin@example.com"})
        self.rep = org.create("User", {"Username": "rep@x.example", "FirstName": "Rob", "LastName": "Rep",
                                       "Email": "rep@example.com"})
        self.queue = org.insert_trusted("Group", [{"Name": "Inbound Queue", "Type": "Queue"}])[0]
        self.acme = org.create("Account", {"Name": "Acme"})
        self.empty = org.create("Account", {"Name": "Empty Co"})
        self.contacts = [org.create("Contact", {"LastName": n, "AccountId": self.acme}) for n in ("Zed", "Amy")]
        rows = [("Ada", "Web", 10, self.admin, 0), ("Ben", "Web", 30, self.rep, -1), ("Cy", "Partner", None,
                                                                                      self.queue, -10),
                ("Di", None, 50, self.rep, -40)]
        self.leads = {}
        for name, source, employees, owner, days in rows:
            self.leads[name] = org.insert_trusted("Lead", [{
                "LastName": name, "Company": "Acme", "LeadSource": source, "NumberOfEmployees": employees,
                "OwnerId": owner, "SystemModstamp": format_datetime(NOW + timedelta(days=days))}])[0]
        self.campaign = org.create("Campaign", {"Name": "Webinar"})
        for name, status in (("Ada", "Responded"), ("Ben", "Sent")):
            org.create("CampaignMember", {"CampaignId": self.campaign, "LeadId": self.leads[name], "Status": status})
        self.api = RestApi(org, daily_limit=lambda: (0, 1000))

    def query(self, soql: str, status: int = 200, all_rows: bool = False) -> Any:
        resp = self.api.handle(Request("GET", "queryAll" if all_rows else "query", "59.0", {"q": soql}, {}, b"",
                                       self.admin))
        assert resp.status == status, resp.body
        return resp.body


@pytest.fixture
def o4() -> Org4:
    return Org4()


def _agg(**values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "AggregateResult"}, **values}


# ------------------------------------------------------------------------------------------- aggregates
def test_aggregate_functions_without_group_by_answer_one_row_named_expr_n(o4: Org4) -> None:
    body = o4.query("SELECT COUNT(Id), COUNT(NumberOfEmployees), COUNT_DISTINCT(LeadSource), SUM(NumberOfEmployees), "
                    "AVG(NumberOfEmployees), MIN(LastName), MAX(SystemModstamp) FROM Lead")
    assert body == {"totalSize": 1, "done": True, "records": [_agg(
        expr0=4, expr1=3, expr2=2, expr3=90, expr4=30.0, expr5="Ada", expr6=format_datetime(NOW))]}
    empty = o4.query("SELECT COUNT(Id), MAX(NumberOfEmployees) total FROM Lead WHERE LastName = 'Nobody'")
    assert empty["records"] == [_agg(expr0=0, total=None)]
    assert o4.query("SELECT COUNT() FROM Lead WHERE LeadSource = 'Web'") == {"totalSize": 2, "done": True,
                                                                             "records": []}


def test_group_by_having_aliases_and_order_by_an_aggregate(o4: Org4) -> None:
    body = o4.query("SELECT LeadSource, COUNT(Id) n, SUM(NumberOfEmployees) FROM Lead GROUP BY LeadSource "
                    "ORDER BY COUNT(Id) DESC, LeadSource NULLS LAST")
    assert body["records"] == [_agg(LeadSource="Web", n=2, expr0=40), _agg(LeadSource="Partner", n=1, expr0=None),
                               _agg(LeadSource=None, n=1, expr0=50)]
    assert body["totalSize"] == 3 and body["done"] is True
    having = o4.query("SELECT LeadSource src, COUNT(Id) FROM Lead GROUP BY LeadSource HAVING COUNT(Id) > 1")
    assert having["records"] == [_agg(src="Web", expr0=2)]
    owners = o4.query("SELECT Owner.Name, COUNT(Id) FROM Lead GROUP BY Owner.Name ORDER BY Owner.Name LIMIT 2")
    assert owners["records"] == [_agg(Name="Ann Admin", expr0=1), _agg(Name="Inbound Queue", expr0=1)]


def test_aggregate_errors(o4: Org4) -> None:
    err = o4.query("SELECT LastName, COUNT(Id) FROM Lead", status=400)
    assert err == [{"errorCode": "MALFORMED_QUERY", "message": "\nSELECT LastName, COUNT(Id) FROM Lead\n       ^\n"
                    "ERROR at Row:1:Column:8\nField must be grouped or aggregated: LastName"}]
    assert o4.query("SELECT SUM(LastName) FROM Lead", status=400)[0]["errorCode"] == "MALFORMED_QUERY"
    assert "HAVING" in o4.query("SELECT Id FROM Lead WHERE COUNT(Id) > 1", status=400)[0]["message"]
    assert o4.query("SELECT Id FROM Lead ORDER BY COUNT(Id)", status=400)[0]["errorCode"] == "MALFORMED_QUERY"


def test_date_functions_group_filter_and_are_expressions(o4: Org4) -> None:
    body = o4.query("SELECT CALENDAR_MONTH(SystemModstamp), COUNT(Id) n FROM Lead GROUP BY "
                    "CALENDAR_MONTH(SystemModstamp) ORDER BY CALENDAR_MONTH(SystemModstamp)")
    assert body["records"] == [_agg(expr0=1, n=1), _agg(expr0=2, n=1), _agg(expr0=3, n=2)]
    days = o4.query("SELECT DAY_ONLY(SystemModstamp) day, COUNT(Id) FROM Lead WHERE CALENDAR_YEAR(SystemModstamp) "
                    "= 2026 GROUP BY DAY_ONLY(SystemModstamp) HAVING COUNT(Id) = 1 ORDER BY DAY_ONLY(SystemModstamp) "
                    "DESC LIMIT 1")
    assert days["records"] == [_agg(day="2026-03-04", expr0=1)]
    wednesday = o4.query("SELECT LastName FROM Lead WHERE DAY_IN_WEEK(SystemModstamp) = 4")["records"]
    assert [r["LastName"] for r in wednesday] == ["Ada"]  # 1 = Sunday
    err = o4.query("SELECT CALENDAR_YEAR(SystemModstamp) FROM Lead", status=400)[0]
    assert err["errorCode"] == "MALFORMED_QUERY" and "aggregate query" in err["message"]


def test_fields_function_and_to_label(o4: Org4) -> None:
    row = o4.query("SELECT FIELDS(ALL) FROM Lead WHERE LastName = 'Ada' LIMIT 1")["records"][0]
    assert row["LastName"] == "Ada" and "Nurture_Score__c" in row and "SystemModstamp" in row
    custom = o4.query("SELECT FIELDS(CUSTOM) FROM Lead LIMIT 1")["records"][0]
    assert set(custom) - {"attributes"} and all(k.endswith("__c") for k in custom if k != "attributes")
    assert "Nurture_Score__c" not in o4.query("SELECT FIELDS(STANDARD) FROM Lead")["records"][0]
    err = o4.query("SELECT FIELDS(ALL) FROM Lead", status=400)[0]
    assert err["message"].endswith("The SOQL FIELDS function must have a LIMIT of at most 200")
    labelled = o4.query("SELECT toLabel(LeadSource) FROM Lead WHERE LastName = 'Ada'")["records"][0]
    assert labelled["LeadSource"] == "Web"


# ------------------------------------------------------------------------------ subqueries and joins
def test_parent_to_child_subquery_nests_a_query_result_or_null(o4: Org4) -> None:
    body = o4.query("SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account ORDER BY Name")
    acme, empty = body["records"]
    assert acme["Contacts"] == {"totalSize": 2, "done": True, "records": [
        {"attributes": {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{self_id}"},
         "LastName": name} for self_id, name in ((o4.contacts[1], "Amy"), (o4.contacts[0], "Zed"))]}
    assert empty["Name"] == "Empty Co" and empty["Contacts"] is None
    members = o4.query("SELECT LastName, (SELECT Status FROM CampaignMembers WHERE Status = 'Responded') FROM Lead "
                       "WHERE LastName IN ('Ada', 'Ben') ORDER BY LastName")["records"]
    assert [m["CampaignMembers"] and m["CampaignMembers"]["records"][0]["Status"] for m in members] == \
        ["Responded", None]
    err = o4.query("SELECT Id, (SELECT Id FROM Nopes) FROM Account", status=400)[0]
    assert err["errorCode"] == "INVALID_TYPE" and "Nopes" in err["message"]


def test_subqueries_nest_up_to_five_levels_and_take_no_semi_joins(o4: Org4) -> None:
    o4.org.create("Task", {"Subject": "Call Zed", "WhoId": o4.contacts[0]})
    body = o4.query("SELECT Name, (SELECT LastName, (SELECT Subject FROM Tasks) FROM Contacts ORDER BY LastName) "
                    "FROM Account WHERE Name = 'Acme'")
    contacts = body["records"][0]["Contacts"]["records"]
    assert [(c["LastName"], c["Tasks"] and [t["Subject"] for t in c["Tasks"]["records"]]) for c in contacts] == \
        [("Amy", None), ("Zed", ["Call Zed"])]
    err = o4.query("SELECT Id, (SELECT Id, (SELECT Id, (SELECT Id, (SELECT Id, (SELECT Id FROM A) FROM B) FROM C) "
                   "FROM D) FROM E) FROM Account", status=400)[0]
    assert "at most 5 levels" in err["message"]
    err = o4.query("SELECT Id, (SELECT Id FROM Contacts WHERE Id IN (SELECT WhoId FROM Task)) FROM Account",
                   status=400)[0]
    assert err["errorCode"] == "MALFORMED_QUERY" and "only allowed at the top level" in err["message"]


def test_semi_join_and_anti_join(o4: Org4) -> None:
    def names(soql: str) -> list[str]:
        return [r["LastName"] for r in o4.query(soql)["records"]]

    assert names("SELECT LastName FROM Lead WHERE Id IN (SELECT LeadId FROM CampaignMember) ORDER BY LastName") == \
        ["Ada", "Ben"]
    assert names("SELECT LastName FROM Lead WHERE Id IN (SELECT LeadId FROM CampaignMember WHERE Status = "
                 "'Responded')") == ["Ada"]
    assert names("SELECT LastName FROM Lead WHERE Id NOT IN (SELECT LeadId FROM CampaignMember) "
                 "ORDER BY LastName") == ["Cy", "Di"]
    assert names("SELECT LastName FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Name = 'Acme') "
                 "ORDER BY LastName") == ["Amy", "Zed"]
    err = o4.query("SELECT Id FROM Lead WHERE Id IN (SELECT Status FROM CampaignMember)", status=400)[0]
    assert err["errorCode"] == "MALFORMED_QUERY"
    err = o4.query("SELECT Id FROM Lead WHERE LastName = 'Cy' OR Id IN (SELECT LeadId FROM CampaignMember)",
                   status=400)[0]
    assert err["message"].endswith("Semi join sub-selects are not allowed with the 'OR' operator")


# ----------------------------------------------------------------------------------- polymorphic Owner
def test_polymorphic_owner_resolves_through_the_name_object(o4: Org4) -> None:
    rows = o4.query("SELECT LastName, Owner.Name, Owner.Type FROM Lead WHERE LastName IN ('Ada', 'Cy') "
                    "ORDER BY LastName")["records"]
    assert rows[0]["Owner"] == {"attributes": {"type": "Name", "url": f"/services/data/v59.0/sobjects/User/"
                                                                      f"{o4.admin}"},
                                "Name": "Ann Admin", "Type": "User"}
    assert rows[1]["Owner"] == {"attributes": {"type": "Name", "url": f"/services/data/v59.0/sobjects/Group/"
                                                                      f"{o4.queue}"},
                                "Name": "Inbound Queue", "Type": "Queue"}
    queued = o4.query("SELECT LastName FROM Lead WHERE Owner.Type = 'Queue'")["records"]
    assert [r["LastName"] for r in queued] == ["Cy"]
    # a Contact's Owner is always a User: a plain parent object
    contact = o4.query("SELECT Owner.Username FROM Contact LIMIT 1")["records"][0]
    assert contact["Owner"]["attributes"]["type"] == "User" and contact["Owner"]["Username"] == "admin@x.example"


def test_typeof_picks_fields_by_the_referenced_type(o4: Org4) -> None:
    rows = o4.query("SELECT LastName, TYPEOF Owner WHEN User THEN Username, Email WHEN Group THEN Name, Type "
                    "END FROM Lead WHERE LastName IN ('Ben', 'Cy') ORDER BY LastName")["records"]
    assert rows[0]["Owner"] == {"attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/"
                                                                      f"{o4.rep}"},
                                "Username": "rep@x.example", "Email": "rep@example.com"}
    assert rows[1]["Owner"] == {"attributes": {"type": "Group", "url": f"/services/data/v59.0/sobjects/Group/"
                                                                       f"{o4.queue}"},
                                "Name": "Inbound Queue", "Type": "Queue"}
    assert o4.query("SELECT TYPEOF Account WHEN User THEN Name END FROM Contact", status=400)[0]["errorCode"] == \
        "MALFORMED_QUERY"


# -------------------------------------------------------------------------------- dates and ordering
@pytest.mark.parametrize(("literal", "expected"), [
    ("TODAY", ["Ada"]), ("YESTERDAY", ["Ben"]), ("LAST_N_DAYS:1", ["Ada", "Ben"]),
    ("LAST_N_DAYS:10", ["Ada", "Ben", "Cy"]), ("N_DAYS_AGO:10", ["Cy"]), ("NEXT_N_DAYS:5", []),
    ("THIS_WEEK", ["Ada", "Ben"]), ("LAST_WEEK", ["Cy"]), ("THIS_MONTH", ["Ada", "Ben"]), ("LAST_MONTH", ["Cy"]),
    ("LAST_N_MONTHS:2", ["Cy", "Di"]), ("THIS_QUARTER", ["Ada", "Ben", "Cy", "Di"]), ("LAST_QUARTER", []),
    ("THIS_YEAR", ["Ada", "Ben", "Cy", "Di"]), ("LAST_YEAR", []),
    ("2026-03-03T10:00:00Z", ["Ada"]), ("2026-03-03T11:00:00.000+01:00", ["Ada"]), ("2026-03-03T09:00:00Z", ["Ada"]),
])
def test_date_literals(o4: Org4, literal: str, expected: list[str]) -> None:
    op = ">" if literal[0].isdigit() else "="
    rows = o4.query(f"SELECT LastName FROM Lead WHERE SystemModstamp {op} {literal} ORDER BY LastName")["records"]
    assert [r["LastName"] for r in rows] == expected


def test_relative_date_literals_use_the_querying_users_time_zone(o4: Org4) -> None:
    o4.org.insert_trusted("Lead", [{"LastName": "Eve", "Company": "Acme",
                                    "SystemModstamp": format_datetime(NOW - timedelta(hours=13))}])  # Mar 3, 20:00 UTC
    soql = "SELECT LastName FROM Lead WHERE LastName = 'Eve' AND SystemModstamp = TODAY"
    o4.org.update("User", o4.admin, {"TimeZoneSidKey": "Asia/Tokyo"})  # Mar 4, 05:00 there: today
    assert [r["LastName"] for r in o4.query(soql)["records"]] == ["Eve"]
    o4.org.update("User", o4.admin, {"TimeZoneSidKey": "America/Los_Angeles"})  # Mar 3, 12:00 there: yesterday
    assert o4.query(soql)["records"] == []
    assert o4.query(soql.replace("TODAY", "YESTERDAY"))["totalSize"] == 1
    assert o4.org.query(soql.replace("TODAY", "YESTERDAY")).total == 1  # no user: UTC, where it is Mar 3 too


def test_date_fields_take_date_literals_and_datetime_fields_datetime_literals(o4: Org4) -> None:
    o4.org.create("Campaign", {"Name": "Launch", "StartDate": "2026-03-04"})
    rows = o4.query("SELECT Name FROM Campaign WHERE StartDate = 2026-03-04 AND StartDate = TODAY")["records"]
    assert [r["Name"] for r in rows] == ["Launch"]
    for soql in ("SELECT Id FROM Lead WHERE SystemModstamp > 2026-03-03",
                 "SELECT Id FROM Campaign WHERE StartDate > 2026-03-03T00:00:00Z",
                 "SELECT Id FROM Lead WHERE SystemModstamp > '2026-03-03T00:00:00Z'"):
        err = o4.query(soql, status=400)[0]
        assert err["errorCode"] == "INVALID_FIELD" and "should not be enclosed in quotes" in err["message"]


def test_order_by_nulls_limit_offset(o4: Org4) -> None:
    def names(soql: str) -> list[str]:
        return [r["LastName"] for r in o4.query(soql)["records"]]

    assert names("SELECT LastName FROM Lead ORDER BY NumberOfEmployees") == ["Cy", "Ada", "Ben", "Di"]
    assert names("SELECT LastName FROM Lead ORDER BY NumberOfEmployees NULLS LAST") == ["Ada", "Ben", "Di", "Cy"]
    assert names("SELECT LastName FROM Lead ORDER BY NumberOfEmployees DESC NULLS FIRST") == \
        ["Cy", "Di", "Ben", "Ada"]
    assert names("SELECT LastName FROM Lead ORDER BY LastName LIMIT 2 OFFSET 1") == ["Ben", "Cy"]


# ------------------------------------------------------------------------------ errors and setup objects
def test_errors_carry_salesforce_caret_messages(o4: Org4) -> None:
    assert o4.query("SELECT Id, Nope__c FROM Lead", status=400) == [{"errorCode": "INVALID_FIELD", "message": (
        "\nSELECT Id, Nope__c FROM Lead\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nope__c' on entity "
        "'Lead'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field "
        "name. Please reference your WSDL or the describe call for the appropriate names.")}]
    err = o4.query("SELECT Id FROM Lead WHERE", status=400)[0]
    assert err["errorCode"] == "MALFORMED_QUERY" and err["message"].endswith("unexpected token: <EOF>")
    err = o4.query("SELECT Id FROM Leads", status=400)[0]
    assert err["errorCode"] == "INVALID_TYPE" and "ERROR at Row:1:Column:16\nsObject type 'Leads'" in err["message"]


def test_lead_status_is_queryable_and_read_only(o4: Org4) -> None:
    body = o4.query("SELECT MasterLabel, IsConverted, IsDefault FROM LeadStatus ORDER BY SortOrder")
    assert body["totalSize"] == 5  # a new org's standard values (the demo org adds nurture's MQL status)
    first = body["records"][0]
    assert (first["MasterLabel"], first["IsConverted"], first["IsDefault"]) == ("Open - Not Contacted", False, True)
    assert [r["MasterLabel"] for r in body["records"] if r["IsConverted"]] == ["Closed - Converted"]
    assert body["records"][0]["attributes"]["type"] == "LeadStatus"
    resp = o4.api.handle(Request("POST", "sobjects/LeadStatus", "59.0", {}, {}, b'{"MasterLabel": "X"}', o4.admin))
    assert resp.status == 400 and resp.body[0]["errorCode"] == "INVALID_TYPE"
