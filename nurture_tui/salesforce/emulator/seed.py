"""A deterministic demo org: users, accounts, leads, contacts, campaigns, members, opportunities."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from .soql import format_datetime
from .store import Org

FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kara", "Liam", "Maya",
         "Noah", "Olga", "Priya", "Quinn", "Ravi", "Sofia", "Tom", "Uma", "Victor", "Wen", "Xavier", "Yara", "Zoe")
LAST = ("Adams", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Kowalski",
        "Lopez", "Meyer", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Silva", "Tanaka", "Umar", "Vogel")
INDUSTRIES = ("Technology", "Finance", "Healthcare", "Manufacturing", "Retail", "Education", "Energy", "Media")
COUNTRIES = ("United States", "Germany", "United Kingdom", "France", "Japan", "Canada", "Australia", "Brazil")
SOURCES = ("Web", "Webinar", "Trade Show", "Partner", "Content Syndication", "Paid Search")
STATUSES = ("Open - Not Contacted", "Working - Contacted", "Nurturing")
CAMPAIGNS = (("Spring Webinar Series", "Webinar"), ("Cloud Buyers Guide", "Content"), ("Summit 2026", "Event"),
             ("Newsletter", "Email"), ("Partner Roadshow", "Event"))
STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost")


@dataclass(frozen=True)
class SeedSummary:
    users: int
    accounts: int
    leads: int
    contacts: int
    campaigns: int
    members: int
    opportunities: int


def seed_org(org: Org, *, leads: int = 500, seed: int = 7, contacts: int | None = None,
             members: int | None = None) -> SeedSummary:
    """Fill `org` with a reproducible demo dataset; modstamps are spread over the last 30 days."""
    rnd = random.Random(seed)
    now = org.clock()
    contacts = leads // 4 if contacts is None else contacts

    def stamp() -> str:
        return format_datetime(now - timedelta(seconds=rnd.randint(60, 30 * 86400)))

    users = org.insert_trusted("User", [
        {"Username": f"rep{i}@nurture.example", "FirstName": FIRST[i], "LastName": LAST[i],
         "Email": f"rep{i}@nurture.example", "IsActive": True, "Title": "Account Executive"} for i in range(6)])
    n_accounts = max(1, (leads + contacts) // 10)
    accounts = org.insert_trusted("Account", [
        {"Name": f"{LAST[i % len(LAST)]} {rnd.choice(('Labs', 'Systems', 'Group', 'Works', 'Analytics'))} {i}",
         "Industry": rnd.choice(INDUSTRIES), "NumberOfEmployees": rnd.choice((10, 50, 200, 1000, 5000, 20000)),
         "BillingCountry": rnd.choice(COUNTRIES), "OwnerId": rnd.choice(users), "SystemModstamp": stamp()}
        for i in range(n_accounts)])
    lead_rows = []
    for i in range(leads):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        lead_rows.append({
            "FirstName": first, "LastName": last, "Email": f"{first.lower()}.{last.lower()}.{i}@example.com",
            "Company": f"{last} {rnd.choice(('Labs', 'Systems', 'Group'))} {i % max(1, n_accounts)}",
            "Title": rnd.choice(("VP Marketing", "CTO", "Developer", "Head of Ops", "Analyst", "CFO")),
            "Industry": rnd.choice(INDUSTRIES), "Country": rnd.choice(COUNTRIES), "LeadSource": rnd.choice(SOURCES),
            "Status": rnd.choice(STATUSES), "NumberOfEmployees": rnd.choice((10, 50, 200, 1000, 5000)),
            "OwnerId": rnd.choice(users), "HasOptedOutOfEmail": rnd.random() < 0.03, "SystemModstamp": stamp()})
    lead_ids = org.insert_trusted("Lead", lead_rows)
    contact_ids = org.insert_trusted("Contact", [
        {"FirstName": (f := rnd.choice(FIRST)), "LastName": (la := rnd.choice(LAST)),
         "Email": f"{f.lower()}.{la.lower()}.c{i}@example.com", "AccountId": rnd.choice(accounts),
         "Title": rnd.choice(("Director IT", "Marketing Manager", "Engineer")), "MailingCountry": rnd.choice(COUNTRIES),
         "OwnerId": rnd.choice(users), "SystemModstamp": stamp()} for i in range(contacts)])
    campaigns = org.insert_trusted("Campaign", [
        {"Name": name, "Type": typ, "Status": "In Progress", "IsActive": True, "SystemModstamp": stamp()}
        for name, typ in CAMPAIGNS])
    member_rows = []
    seen: set[tuple[str, str]] = set()
    for _ in range(min(len(lead_ids), leads // 3 if members is None else members)):
        key = (rnd.choice(campaigns), rnd.choice(lead_ids))
        if key in seen:
            continue
        seen.add(key)
        member_rows.append({"CampaignId": key[0], "LeadId": key[1],
                            "Status": rnd.choice(("Sent", "Sent", "Responded")), "SystemModstamp": stamp()})
    org.insert_trusted("CampaignMember", member_rows)
    opps = org.insert_trusted("Opportunity", [
        {"Name": f"Deal {i}", "AccountId": rnd.choice(accounts),
         "ContactId": rnd.choice(contact_ids) if contact_ids else None, "StageName": rnd.choice(STAGES),
         "Amount": float(rnd.choice((5000, 12000, 40000, 90000))), "CloseDate": (now + timedelta(days=30)).date()
         .isoformat(), "CampaignId": rnd.choice(campaigns), "OwnerId": rnd.choice(users), "SystemModstamp": stamp()}
        for i in range(max(1, n_accounts // 3))])
    return SeedSummary(len(users), len(accounts), len(lead_ids), len(contact_ids), len(campaigns), len(member_rows),
                       len(opps))
