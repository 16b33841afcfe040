"""Campaign Influence through the sync: the pipeline-influence report's campaign shares pushed to the
emulated org (unchanged simple-salesforce over real HTTPS) as CampaignInfluence records, incrementally;
nothing when the org has no Campaign Influence; Salesforce's Primary Campaign Source model is never written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest
from sqlalchemy import delete, update

from nurture_tui.config import SalesforceSettings
from nurture_tui.salesforce.api import SfApi
from nurture_tui.salesforce.emulator import Emulator
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import account, campaign, campaign_member, lead, opportunity
from nurture_tui.workspace import Workspace
from tests.integration.reports.report_fixture import build

from .sf_support import FAST_RETRY, sync


def _mirror(ws: Workspace, emu: Emulator) -> dict[str, str]:
    """Create the fixture's account, contacts, campaigns and opportunities in the org; point the local
    rows at them (as a pull would have)."""
    org = emu.org
    ids = {"A1": org.create("Account", {"Name": "Acme"})}
    for n in (1, 2):
        ids[f"L{n}"] = org.create("Contact", {"LastName": f"L{n}", "Email": f"l{n}@example.com",
                                              "AccountId": ids["A1"]})
    for n, name in ((1, "Webinar"), (2, "Trade show"), (3, "Ebook")):
        ids[f"C{n}"] = org.create("Campaign", {"Name": name, "IsActive": True})
    amounts = {1: 1000.0, 2: 500.0, 3: 300.0, 4: 200.0, 5: None, 6: 50.0}
    for n, amount in amounts.items():
        ids[f"O{n}"] = org.create("Opportunity", {"Name": f"O{n}", "StageName": "Prospecting",
                                                  "CloseDate": "2026-06-30", "Amount": amount,
                                                  "AccountId": ids["A1"] if n in (1, 2) else None})
    with write_tx(ws.engine) as conn:
        conn.execute(update(account).where(account.c.id == 1).values(sf_id=ids["A1"]))
        for n in (1, 2):
            conn.execute(update(lead).where(lead.c.id == n).values(sf_id=ids[f"L{n}"], sf_type="Contact"))
        for n in (1, 2, 3):
            conn.execute(update(campaign).where(campaign.c.id == n).values(sf_id=ids[f"C{n}"]))
        for n in amounts:
            conn.execute(update(opportunity).where(opportunity.c.id == n).values(sf_id=ids[f"O{n}"]))
    return ids


def _influence(emu: Emulator) -> dict[tuple[str, str, str], dict[str, Any]]:
    models = {r["Id"]: r["DeveloperName"] for r in emu.org.records["CampaignInfluenceModel"].values()}
    return {(models[r["ModelId"]], r["OpportunityId"], r["CampaignId"]): r
            for r in emu.org.records["CampaignInfluence"].values() if not r.get("IsDeleted")}


def test_influence_pushed_incrementally(sf_ws: Workspace, emulator: Emulator) -> None:
    build(sf_ws)
    ids = _mirror(sf_ws, emulator)
    rep = sync(sf_ws, pull=False, push=True)
    assert rep.ok and rep.influence is not None
    assert (rep.influence.status, rep.influence.models, rep.influence.upserted, rep.influence.failed) == (
        "pushed", 3, 5, 0)
    got = _influence(emulator)
    # O1: last touch Webinar (L2, 02-15, after nurture mail 02-10…02-12); even: nurture ½ (stays local), Webinar ½
    # O2: last touch Trade show (L1, 02-22); even ⅓ each of nurture, Webinar, Trade show; first touch: nurture
    want = {("Nurture_Last_Touch", "O1", "C1"): 100.0, ("Nurture_Last_Touch", "O2", "C2"): 100.0,
            ("Nurture_Even_Touch", "O1", "C1"): 50.0, ("Nurture_Even_Touch", "O2", "C1"): 33.3333,
            ("Nurture_Even_Touch", "O2", "C2"): 33.3333}
    assert {(m, o, c): r["Influence"] for (m, o, c), r in got.items()} == {
        (m, ids[o], ids[c]): v for (m, o, c), v in want.items()}
    web_even = got[("Nurture_Even_Touch", ids["O1"], ids["C1"])]
    assert web_even["RevenueShare"] == 500.0 and web_even["ContactId"] == ids["L2"]
    assert got[("Nurture_Last_Touch", ids["O2"], ids["C2"])]["ContactId"] == ids["L1"]

    again = sync(sf_ws, pull=False, push=True).influence
    assert again is not None and (again.upserted, again.unchanged, again.deleted) == (0, 5, 0)

    # L1's trade-show response is withdrawn: O2's last touch is now nurture mail, even splits nurture/Webinar
    with write_tx(sf_ws.engine) as conn:
        conn.execute(delete(campaign_member).where(campaign_member.c.campaign_id == 2))
    third = sync(sf_ws, pull=False, push=True).influence
    assert third is not None and (third.upserted, third.deleted, third.failed) == (1, 2, 0)
    after = _influence(emulator)
    assert set(after) == {("Nurture_Last_Touch", ids["O1"], ids["C1"]), ("Nurture_Even_Touch", ids["O1"], ids["C1"]),
                          ("Nurture_Even_Touch", ids["O2"], ids["C1"])}
    assert after[("Nurture_Even_Touch", ids["O2"], ids["C1"])]["Influence"] == 50.0


@pytest.fixture
def plain_org(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(directory=tmp_path / "plain", campaign_influence=False).start()
    try:
        yield emu
    finally:
        emu.stop()


def test_org_without_campaign_influence(workspace: Workspace, plain_org: Emulator) -> None:
    workspace.settings.salesforce = SalesforceSettings(**plain_org.client_settings("client_credentials"))
    build(workspace)
    _mirror(workspace, plain_org)
    rep = sync(workspace, pull=False, push=True)
    assert rep.ok and rep.influence is not None and rep.influence.status == "no_object"
    assert "CampaignInfluence" not in plain_org.org.records


def test_primary_campaign_source_model_is_refused(sf_ws: Workspace, emulator: Emulator) -> None:
    build(sf_ws)
    ids = _mirror(sf_ws, emulator)
    primary = next(r["Id"] for r in emulator.org.records["CampaignInfluenceModel"].values()
                   if r["DeveloperName"] == "primaryModel")
    api = SfApi(sf_ws.settings.salesforce, policy=FAST_RETRY)
    with pytest.raises(SalesforceMalformedRequest, match="FIELD_INTEGRITY_EXCEPTION"):
        api.sf.CampaignInfluence.create({"CampaignId": ids["C1"], "OpportunityId": ids["O1"], "ModelId": primary,
                                         "Influence": 100})
