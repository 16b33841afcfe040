"""Campaign Influence push: the pipeline-influence report's campaign shares, sent to Salesforce as
`CampaignInfluence` records (one per model, opportunity and campaign), as part of every push.

- Only where the org has it: the object must be in the org's describe (Customizable Campaign Influence
  on), and each of nurture's three custom models must exist (API names `Nurture_First_Touch`,
  `Nurture_Last_Touch`, `Nurture_Even_Touch`, created once in Setup). Salesforce's Primary Campaign Source
  model is never written to (its records are Salesforce's own).
- What is pushed: for every opportunity created in the last `WINDOW_DAYS` days that has a Salesforce id,
  the share (`Influence`, percent) of each Salesforce campaign under each model, exactly as
  `nurture report influence` computes it (reports/influence.py); `ContactId` is the contact whose
  response touched it first, when that person is a Contact. A sequence's share has no campaign in
  Salesforce and stays local, so an opportunity's campaign shares add up to 100 % only when every touch was
  a campaign.
- Idempotent and incremental: records are upserted on the external id (`salesforce.record_key_field`,
  key `nurture-ci-<model>-<opportunity>-<campaign>`), only when their share or contact changed since the
  last push (`sf_influence` remembers what was sent); a share that no longer holds is deleted. Per-record
  failures go to `sync_error`, like every push.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ..batching import chunks
from ..reports.common import Period, Scope
from ..reports.influence import MODELS, attributions
from ..store.engine import write_tx
from ..store.tables import campaign, lead, sf_influence
from ..workspace import Workspace
from .api import SfApi

OBJECT = "CampaignInfluence"
#: Local model → the API name of the custom influence model it is pushed to.
MODEL_NAMES = {"first_touch": "Nurture_First_Touch", "last_touch": "Nurture_Last_Touch",
               "even": "Nurture_Even_Touch"}
WINDOW_DAYS = 365
BATCH = 200

ErrorSink = Any  # push.ErrorSink (conn, sobject, direction, record_id, code, message, payload)


@dataclass
class InfluenceReport:
    status: str = "skipped"  # pushed / no_object (the org has no Campaign Influence) / no_models
    models: int = 0
    records: int = 0  # wanted now
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    calls: int = 0


@dataclass(frozen=True)
class Wanted:
    key: str
    model: str
    opportunity_id: int
    campaign_id: int
    record: dict[str, Any]

    @property
    def influence(self) -> float:
        return float(self.record["Influence"])


def wanted(conn: Connection, now: datetime, model_ids: dict[str, str], key_field: str) -> list[Wanted]:
    """Every CampaignInfluence record that should exist now (models without an id in the org are left out)."""
    scope = Scope(Period(now - timedelta(days=WINDOW_DAYS), now + timedelta(seconds=1)), now)
    camps = {r.id: r.sf_id for r in conn.execute(select(campaign.c.id, campaign.c.sf_id)) if r.sf_id}
    out: list[Wanted] = []
    atts = [a for a in attributions(conn, scope) if a.sf_id and any(k == "campaign" for k, _ in a.touches)]
    people = {r.id: r for r in conn.execute(select(lead.c.id, lead.c.sf_id, lead.c.sf_type).where(lead.c.id.in_(
        {t.lead_id for a in atts for t in a.touches.values()})))} if atts else {}
    for att in atts:
        for model in MODELS:
            model_id = model_ids.get(model)
            if model_id is None:
                continue
            for (kind, cid), share in sorted(att.shares(model).items()):
                camp_sf = camps.get(cid)
                if kind != "campaign" or camp_sf is None:
                    continue
                who = people.get(att.touches[(kind, cid)].lead_id)
                key = f"nurture-ci-{MODEL_NAMES[model]}-{att.sf_id}-{camp_sf}"[:80]
                out.append(Wanted(key, model, att.opportunity_id, cid, {
                    key_field: key, "CampaignId": camp_sf, "OpportunityId": att.sf_id, "ModelId": model_id,
                    "Influence": round(share * 100.0, 4),
                    "ContactId": who.sf_id if who is not None and who.sf_type == "Contact" else None}))
    return out


def push_influence(ws: Workspace, api: SfApi, on_error: ErrorSink) -> InfluenceReport:
    rep = InfluenceReport()
    names = {o["name"] for o in api.call(lambda: api.sf.describe())["sobjects"]}
    rep.calls += 1
    if OBJECT not in names:
        rep.status = "no_object"
        return rep
    soql = ("SELECT Id, DeveloperName FROM CampaignInfluenceModel WHERE DeveloperName IN ("
            + ", ".join(f"'{n}'" for n in MODEL_NAMES.values()) + ")")
    found = {r["DeveloperName"]: r["Id"] for page in api.query_pages(soql) for r in page}
    rep.calls += 1
    model_ids = {m: found[n] for m, n in MODEL_NAMES.items() if n in found}
    rep.models = len(model_ids)
    if not model_ids:
        rep.status = "no_models"
        return rep
    rep.status = "pushed"
    key_field = ws.settings.salesforce.record_key_field
    now = ws.clock.now()
    with ws.engine.connect() as conn:
        want = wanted(conn, now, model_ids, key_field)
        known = {r.key: r for r in conn.execute(select(sf_influence))}
    rep.records = len(want)
    changed = [w for w in want if (prev := known.get(w.key)) is None or prev.influence != w.influence
               or prev.contact_sf_id != w.record["ContactId"]]
    rep.unchanged = len(want) - len(changed)
    for chunk in chunks(changed, BATCH):
        records = [{"attributes": {"type": OBJECT}, **{f: v for f, v in w.record.items()
                                                       if v is not None or f != "ContactId"}} for w in chunk]
        results = api.collections("PATCH", records, f"composite/sobjects/{OBJECT}/{key_field}")
        rep.calls += 1
        with write_tx(ws.engine) as conn:
            for w, res in zip(chunk, results, strict=False):
                if res.get("success"):
                    rep.upserted += 1
                    conn.execute(delete(sf_influence).where(sf_influence.c.key == w.key))
                    conn.execute(insert(sf_influence).values(
                        key=w.key, model=w.model, opportunity_id=w.opportunity_id, campaign_id=w.campaign_id,
                        influence=w.influence, contact_sf_id=w.record["ContactId"], sf_id=res.get("id"),
                        pushed_at=now))
                else:
                    rep.failed += 1
                    err = (res.get("errors") or [{}])[0]
                    on_error(conn, OBJECT, "push", None, str(err.get("statusCode") or "UNKNOWN"),
                             str(err.get("message") or ""), {"record": w.record})
    wanted_keys = {w.key for w in want}
    gone = [old for old in known.values() if old.key not in wanted_keys and old.sf_id]
    for batch in chunks(gone, BATCH):
        params = {"ids": ",".join(str(o.sf_id) for o in batch), "allOrNone": "false"}
        results = api.call(partial(api.sf.restful, "composite/sobjects", method="DELETE", params=params))
        rep.calls += 1
        with write_tx(ws.engine) as conn:
            for old, res in zip(batch, results, strict=False):
                err = (res.get("errors") or [{}])[0]
                if res.get("success") or err.get("statusCode") == "ENTITY_IS_DELETED":
                    rep.deleted += 1
                    conn.execute(delete(sf_influence).where(sf_influence.c.key == old.key))
                else:
                    rep.failed += 1
                    on_error(conn, OBJECT, "push", old.sf_id, str(err.get("statusCode") or "UNKNOWN"),
                             str(err.get("message") or ""), {"key": old.key})
    return rep
