"""An emulated org for `nurture demo`: mirrors the demo workspace's people into a loopback org so the real sync
links them up (by email) and pushes scores, MQL tasks and campaign members from then on.

    emu = start_demo_org(ws)        # started, ws.settings.salesforce points at it (enabled)
    run_sync(ws)                    # or let the scheduler's "sync" job do it every 2 minutes
    ...
    emu.stop()
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..config import SalesforceSettings
from ..sequences.model import SequenceDef, iter_steps
from ..store.tables import account, campaign, lead, sequence
from ..store.tables import user as user_t
from ..workspace import Workspace
from .emulator import Emulator
from .emulator.seed import CAMPAIGNS


def start_demo_org(ws: Workspace, *, directory: Path | None = None, max_leads: int = 20_000,
                   auth: str = "jwt") -> Emulator:
    """Start an emulator holding the workspace's users, accounts and (up to `max_leads`) leads as Salesforce
    records, plus the demo campaigns; configure `ws.settings.salesforce` for it. The caller stops it."""
    emu = Emulator(directory=directory or ws.settings.data_dir / "sf-demo-org")
    org = emu.org
    with ws.engine.connect() as conn:
        users = conn.execute(select(user_t.c.id, user_t.c.username, user_t.c.name, user_t.c.email)
                             .where(user_t.c.sf_id.is_(None))).all()
        accounts = conn.execute(select(account.c.name, account.c.industry, account.c.employees, account.c.country)
                                .where(account.c.sf_id.is_(None))).all()
        leads = conn.execute(select(lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, lead.c.title,
                                    lead.c.industry, lead.c.country, lead.c.lead_source, lead.c.status,
                                    lead.c.owner_id)
                             .where(lead.c.sf_id.is_(None)).order_by(lead.c.id).limit(max_leads)).all()
    # Same usernames as locally, so the first sync links each user (and rep ownership pushes work).
    org_users = org.insert_trusted("User", [{"Username": u.username, "LastName": (u.name or u.username)[:80],
                                             "Email": u.email or "rep@example.com", "IsActive": True} for u in users])
    owner = {u.id: sf for u, sf in zip(users, org_users, strict=True)}  # local owners stay the owners
    org.insert_trusted("Account", [{"Name": a.name or "Account", "Industry": a.industry,
                                    "NumberOfEmployees": a.employees, "BillingCountry": a.country} for a in accounts])
    org.insert_trusted("Lead", [{"Email": r.email, "FirstName": r.first_name, "LastName": r.last_name or r.email,
                                 "Company": r.company or "Unknown", "Title": r.title, "Industry": r.industry,
                                 "Country": r.country, "LeadSource": r.lead_source,
                                 "Status": r.status or "Open - Not Contacted", "OwnerId": owner.get(r.owner_id)}
                                for r in leads])
    org.insert_trusted("Campaign", [{"Name": name, "Type": typ, "Status": "In Progress", "IsActive": True}
                                    for name, typ in _demo_campaigns(ws)])
    add_lead_statuses(org, ws.settings.salesforce.status_map.values())
    emu.start()
    ws.settings.salesforce = SalesforceSettings(**{**ws.settings.salesforce.model_dump(),
                                                   **emu.client_settings(auth)})
    return emu


def _demo_campaigns(ws: Workspace) -> list[tuple[str, str]]:
    """The emulator's stock campaigns plus every campaign the workspace knows locally or its sequences add
    leads to, so the demo's `add_to_campaign` pushes land on a real campaign in the org."""
    names = {name: typ for name, typ in CAMPAIGNS}
    with ws.engine.connect() as conn:
        for name, typ in conn.execute(select(campaign.c.name, campaign.c.type).where(campaign.c.sf_id.is_(None))):
            names.setdefault(name, typ or "Other")
        for draft in conn.execute(select(sequence.c.draft)).scalars():
            try:
                steps = iter_steps(SequenceDef.model_validate(draft).steps)
            except ValueError:
                continue  # an invalid draft is reported by `sequences validate`, not here
            for step in steps:
                if step.action is not None and step.action.type == "add_to_campaign" and step.action.campaign:
                    names.setdefault(step.action.campaign, "Nurture")
    return list(names.items())


def add_lead_statuses(org: Any, values: Iterable[str]) -> None:
    """What an admin does in Setup for nurture: the Lead Status values `salesforce.status_map` names (e.g.
    "Marketing Qualified") that the org does not have yet."""
    have = {r.get("MasterLabel") for r in org.records["LeadStatus"].values()}
    new = sorted(set(values) - have)
    if new:
        org.insert_trusted("LeadStatus", [{"MasterLabel": v, "ApiName": v, "SortOrder": 0, "IsDefault": False,
                                           "IsConverted": False} for v in new])
