"""The emulator's SOQL subset: parsing, evaluation and its errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nurture_tui.salesforce.emulator.soql import SoqlError, format_datetime, parse
from nurture_tui.salesforce.emulator.store import Org, OrgError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def org() -> Org:
    o = Org(clock=lambda: NOW)
    o.system_user = o.create("User", {"Username": "a@x.example", "LastName": "Admin", "Email": "a@example.com"})
    rows = [("Ada", "ada@example.com", "Germany", 10, -1), ("Ben", "ben@example.com", "Japan", None, -5),
            ("Cy", "cy_x@example.com", "Germany", 50, -40), ("Di", None, None, 20, -2)]
    for name, email, country, emp, days in rows:
        o.insert_trusted("Lead", [{"LastName": name, "Company": "Acme", "Email": email, "Country": country,
                                   "NumberOfEmployees": emp, "OwnerId": o.system_user,
                                   "SystemModstamp": format_datetime(NOW + timedelta(days=days))}])
    return o


def names(org: Org, soql: str) -> list[str]:
    return [r["LastName"] for r in org.query(soql).records]


def test_where_and_or_not_in_like_null(org: Org) -> None:
    assert names(org, "SELECT LastName FROM Lead WHERE Country = 'germany' AND NOT LastName = 'Cy'") == ["Ada"]
    assert names(org, "SELECT LastName FROM Lead WHERE (Country IN ('Japan') OR NumberOfEmployees > 40) "
                      "ORDER BY LastName") == ["Ben", "Cy"]
    assert names(org, "SELECT LastName FROM Lead WHERE Email LIKE 'cy\\_%'") == ["Cy"]
    assert names(org, "SELECT LastName FROM Lead WHERE Email = null") == ["Di"]
    assert names(org, "SELECT LastName FROM Lead WHERE Country NOT IN ('Germany') AND Country != null") == ["Ben"]


def test_dates_order_limit_offset_count(org: Org) -> None:
    assert names(org, "SELECT LastName FROM Lead WHERE SystemModstamp = LAST_N_DAYS:3 ORDER BY LastName") == \
        ["Ada", "Di"]
    assert names(org, "SELECT LastName FROM Lead WHERE SystemModstamp > 2026-02-20T00:00:00Z "
                      "ORDER BY SystemModstamp DESC") == ["Ada", "Di", "Ben"]
    assert names(org, "SELECT LastName FROM Lead ORDER BY NumberOfEmployees DESC NULLS LAST LIMIT 2 OFFSET 1") == \
        ["Di", "Ada"]
    assert names(org, "SELECT LastName FROM Lead ORDER BY NumberOfEmployees") == ["Ben", "Ada", "Di", "Cy"]
    assert org.query("SELECT COUNT() FROM Lead WHERE CreatedDate = LAST_N_DAYS:60").total == 4
    assert org.query("SELECT COUNT() FROM Lead WHERE CreatedDate = TODAY").total == 0
    assert org.query("SELECT Id, Owner.Name FROM Lead").columns == ["Id", "Owner.Name"]


def test_errors_name_the_problem() -> None:
    with pytest.raises(SoqlError, match="expecting 'FROM'"):
        parse("SELECT Id Lead")
    with pytest.raises(SoqlError, match="unexpected token: <EOF>"):
        parse("SELECT Id FROM Lead WHERE")
    with pytest.raises(SoqlError, match="unexpected token: 'Lead'"):
        parse("SELECT Id FROM Account Lead")
    org = Org(clock=lambda: NOW)
    with pytest.raises(SoqlError, match="No such column 'Nope'"):
        org.query("SELECT Nope FROM Lead")
    with pytest.raises(SoqlError, match="not supported"):
        org.query("SELECT Id FROM Nope")
    with pytest.raises(SoqlError, match="should not be enclosed in quotes"):
        org.query("SELECT Id FROM Lead WHERE CreatedDate > '2020-01-01'")


def test_write_rules(org: Org) -> None:
    with pytest.raises(OrgError, match="REQUIRED_FIELD_MISSING"):
        org.create("Lead", {"LastName": "X"})
    with pytest.raises(OrgError, match="INVALID_EMAIL_ADDRESS"):
        org.create("Lead", {"LastName": "X", "Company": "Y", "Email": "nope"})
    with pytest.raises(OrgError, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
        org.create("Lead", {"LastName": "X", "Company": "Y", "CreatedDate": "2020-01-01T00:00:00Z"})
    ada = org.query("SELECT Id, Name FROM Lead WHERE LastName = 'Ada'").records[0]
    assert ada["Name"] == "Ada"
    with pytest.raises(OrgError, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
        org.update("Lead", ada["Id"], {"IsConverted": True})
    camp = org.create("Campaign", {"Name": "Webinar"})
    lead = org.query("SELECT Id FROM Lead WHERE LastName = 'Ada'").records[0]["Id"]
    member = org.create("CampaignMember", {"CampaignId": camp, "LeadId": lead, "Status": "Responded"})
    assert org.records["CampaignMember"][member]["HasResponded"] is True
    with pytest.raises(OrgError, match="DUPLICATE_VALUE"):
        org.create("CampaignMember", {"CampaignId": camp, "LeadId": lead})
