"""The emulated org's data: records in wire format, write rules, queries.

Data rules (salesforce-wire.md §12): records carry `attributes`; datetimes are `…000+0000`; every write bumps
SystemModstamp/LastModifiedDate; deletes are soft (IsDeleted, visible to queryAll) and merges keep the loser
deleted with MasterRecordId; converted leads are read-only (CANNOT_UPDATE_CONVERTED_LEAD); CampaignMember
Status drives HasResponded; Opportunity StageName drives IsClosed/IsWon.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .query import QueryResult, evaluate, field_of
from .schema import CLOSED_TASK_STATUSES, LEAD_STATUSES, RESPONDED_STATUSES, FieldDef, ObjectDef, build_schema
from .soql import format_datetime, parse_datetime

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def id18(id15: str) -> str:
    """Salesforce's case-safe 18-character form of a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return id15 + suffix


class OrgError(Exception):
    """A Salesforce error for one request or one record (`statusCode` in collections/bulk)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields or []
        self.status = status

    def rest_body(self) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            body["fields"] = self.fields
        return [body]

    def record_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


#: Called before each record write with (sobject, record id or None, data); may raise OrgError.
RecordHook = Callable[[str, str | None, dict[str, Any]], None]


class Org:
    def __init__(self, clock: Callable[[], datetime] | None = None, *, campaign_influence: bool = True) -> None:
        self.schema: dict[str, ObjectDef] = build_schema(campaign_influence=campaign_influence)
        self._lower = {k.lower(): v for k, v in self.schema.items()}
        self._by_prefix = {o.prefix: o.name for o in self.schema.values()}
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self._ext: dict[tuple[str, str], dict[str, str]] = {
            (o.name, f.name): {} for o in self.schema.values() for f in o.fields.values() if f.external_id}
        self._members: dict[tuple[str, str], str] = {}  # (CampaignId, Lead/ContactId) → member id
        self._seq = itertools.count(1)
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC))  # clock-ok: the emulated org's own clock
        self.record_hook: RecordHook | None = None
        self.system_user: str | None = None
        self.insert_trusted("LeadStatus", [  # the org's Lead Status values (Setup), as in a new org
            {"MasterLabel": label, "ApiName": label, "SortOrder": i + 1, "IsDefault": default,
             "IsConverted": converted} for i, (label, default, converted) in enumerate(LEAD_STATUSES)])

    # ------------------------------------------------------------------------------------------ helpers
    def obj(self, name: str) -> ObjectDef:
        o = self._lower.get(name.lower())
        if o is None:
            raise OrgError("NOT_FOUND", f"The requested resource does not exist ({name})", status=404)
        return o

    def type_of(self, record_id: str) -> str | None:
        return self._by_prefix.get(record_id[:3])

    def new_id(self, obj: ObjectDef) -> str:
        return id18(f"{obj.prefix}{next(self._seq):012d}")

    def now_str(self) -> str:
        return format_datetime(self.clock())

    def find(self, record_id: str) -> dict[str, Any] | None:
        if len(record_id) == 15:
            record_id = id18(record_id)
        t = self.type_of(record_id)
        return self.records[t].get(record_id) if t else None

    def picklists(self, o: ObjectDef) -> dict[str, list[tuple[str, bool]]]:
        """Picklist values that live in setup objects: Lead.Status from LeadStatus, in SortOrder."""
        if o.name != "Lead":
            return {}
        rows = sorted((r for r in self.records["LeadStatus"].values() if not r["IsDeleted"]),
                      key=lambda r: r.get("SortOrder") or 0)
        return {"Status": [(str(r["MasterLabel"]), bool(r["IsDefault"])) for r in rows]}

    def writable(self, sobject: str) -> ObjectDef:
        """The object, if the data API may write it (setup objects such as LeadStatus are read-only)."""
        o = self.obj(sobject)
        if o.setup:
            raise OrgError("INVALID_TYPE", f"entity type cannot be inserted: {o.name}")
        return o

    def count(self, sobject: str) -> int:
        return len(self.records[self.obj(sobject).name])

    # ------------------------------------------------------------------------------------------- values
    def _value(self, o: ObjectDef, f: FieldDef, value: Any) -> Any:
        """Validate and normalise one incoming value (JSON or CSV text) to the stored form."""
        if value is None:
            return None
        t = f.type
        try:
            if t in ("string", "email", "textarea", "picklist"):
                s = str(value)
                if f.length and len(s) > f.length:
                    raise OrgError("STRING_TOO_LONG", f"{f.name}: data value too large: {s[:40]} (max length="
                                   f"{f.length})", [f.name])
                if t == "email" and s and not _EMAIL.match(s):
                    raise OrgError("INVALID_EMAIL_ADDRESS", f"{f.name}: invalid email address: {s}", [f.name])
                return s
            if t == "boolean":
                if isinstance(value, bool):
                    return value
                if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                    return value.lower() in ("true", "1")
                raise ValueError(value)
            if t == "int":
                return int(value) if not isinstance(value, str) else int(float(value))
            if t in ("double", "currency"):
                if isinstance(value, bool):
                    raise ValueError(value)
                return float(value)
            if t == "date":
                return date.fromisoformat(str(value)[:10]).isoformat()
            if t == "datetime":
                return format_datetime(parse_datetime(str(value)))
            if t in ("reference", "id"):
                s = str(value)
                if not s:
                    return None
                if not _ID.match(s):
                    raise OrgError("MALFORMED_ID", f"{f.name}: id value of incorrect type: {s}", [f.name])
                if len(s) == 15:
                    s = id18(s)
                target = self.type_of(s)
                allowed = {o.name if r == "Self" else r for r in f.reference_to}
                if target is None or (allowed and target not in allowed) or s not in self.records[target]:
                    raise OrgError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
                return s
        except OrgError:
            raise
        except (ValueError, TypeError) as exc:
            raise OrgError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.name}: value not of required type: {value}",
                           [f.name]) from exc
        return value

    def _fields_in(self, o: ObjectDef, data: dict[str, Any], creating: bool,
                   current: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        bad: list[str] = []
        for key, value in data.items():
            if key == "attributes":
                continue
            f = o.field(key)
            if f is None:
                raise OrgError("INVALID_FIELD", f"No such column '{key}' on sobject of type {o.name}", [key])
            if f.name == "Id":
                if creating:
                    raise OrgError("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
                continue
            if not (f.createable if creating else f.updateable):
                if current is not None and f.createable and current.get(f.name) == value:
                    continue  # an unchanged create-only value in an upsert that matched: accepted
                bad.append(f.name)
                continue
            out[f.name] = self._value(o, f, value)
        if bad:
            raise OrgError("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {', '.join(bad)}. "
                           "Please check the security settings of this field and verify that it is read/write "
                           "for your profile or permission set.", bad)
        return out

    def _check_refs_not_converted(self, vals: dict[str, Any]) -> None:
        for key in ("LeadId", "WhoId"):
            rid = vals.get(key)
            if rid and rid.startswith("00Q") and self.records["Lead"][rid].get("IsConverted"):
                raise OrgError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [key])

    def _derive(self, o: ObjectDef, rec: dict[str, Any], today: str) -> None:
        name = o.name
        if name in ("Lead", "Contact", "User"):
            rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
        elif name == "Opportunity":
            stage = rec.get("StageName") or ""
            rec["IsClosed"] = stage.startswith("Closed")
            rec["IsWon"] = stage == "Closed Won"
        elif name == "CampaignMember":
            responded = rec.get("Status") in RESPONDED_STATUSES
            rec["HasResponded"] = responded
            if responded and not rec.get("FirstRespondedDate"):
                rec["FirstRespondedDate"] = today
        elif name == "Task":
            rec["IsClosed"] = rec.get("Status") in CLOSED_TASK_STATUSES
        elif name == "CampaignInfluence":
            opp = self.records["Opportunity"].get(rec.get("OpportunityId") or "") or {}
            amount, share = opp.get("Amount"), rec.get("Influence")
            rec["RevenueShare"] = None if amount is None or share is None else round(amount * share / 100.0, 2)

    def _check_influence(self, vals: dict[str, Any]) -> None:
        """Salesforce refuses records for a locked model (Primary Campaign Source) and shares over 100 %."""
        model = self.records["CampaignInfluenceModel"].get(vals.get("ModelId") or "")
        if model is not None and model.get("IsModelLocked"):
            raise OrgError("FIELD_INTEGRITY_EXCEPTION", "You can't create or edit campaign influence records for "
                           f"the {model.get('MasterLabel')} model.", ["ModelId"])
        share = vals.get("Influence")
        if share is not None and not 0 <= float(share) <= 100:
            raise OrgError("NUMBER_OUTSIDE_VALID_RANGE", "Influence: value outside of valid range", ["Influence"])

    def _index(self, o: ObjectDef, rec: dict[str, Any], old: dict[str, Any] | None) -> None:
        for (oname, fname), idx in self._ext.items():
            if oname != o.name:
                continue
            if old is not None and old.get(fname):
                idx.pop(str(old[fname]).lower(), None)
            if rec.get(fname):
                idx[str(rec[fname]).lower()] = rec["Id"]

    # ------------------------------------------------------------------------------------------- writes
    def create(self, sobject: str, data: dict[str, Any], user: str | None = None) -> str:
        with self.lock:
            o = self.writable(sobject)
            if self.record_hook:
                self.record_hook(o.name, None, data)
            vals = self._fields_in(o, data, creating=True)
            missing = [f.name for f in o.fields.values() if f.required and f.createable and vals.get(f.name) in
                       (None, "")]
            if missing:
                raise OrgError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                               missing)
            self._check_refs_not_converted(vals)
            if o.name == "CampaignInfluence":
                self._check_influence(vals)
            for f in o.fields.values():
                if f.external_id and vals.get(f.name) and str(vals[f.name]).lower() in self._ext[(o.name, f.name)]:
                    raise OrgError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on record "
                                   f"with id: {self._ext[(o.name, f.name)][str(vals[f.name]).lower()]}", [f.name])
            if o.name == "CampaignMember":
                if vals.get("ContactId"):
                    vals.pop("LeadId", None)
                who = vals.get("ContactId") or vals.get("LeadId")
                if not who:
                    raise OrgError("REQUIRED_FIELD_MISSING", "Required fields are missing: [LeadId or ContactId]",
                                   ["LeadId"])
                if (vals["CampaignId"], who) in self._members:
                    raise OrgError("DUPLICATE_VALUE", "Already a campaign member.", [])
            now = self.now_str()
            user = user or self.system_user
            rec: dict[str, Any] = {f.name: f.default for f in o.fields.values()}
            rec.update(vals)
            rid = self.new_id(o)
            rec.update(Id=rid, IsDeleted=False, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now,
                       CreatedById=user, LastModifiedById=user)
            if "OwnerId" in o.fields and not rec.get("OwnerId"):
                rec["OwnerId"] = user
            self._derive(o, rec, now[:10])
            self.records[o.name][rid] = rec
            self._index(o, rec, None)
            if o.name == "CampaignMember":
                self._members[(rec["CampaignId"], rec.get("ContactId") or rec["LeadId"])] = rid
            return rid

    def insert_trusted(self, sobject: str, rows: Iterable[dict[str, Any]]) -> list[str]:
        """Seed records without per-field validation (the seeder's data is known good); indexes kept."""
        o = self.obj(sobject)
        defaults = {f.name: f.default for f in o.fields.values()}
        out: list[str] = []
        with self.lock:
            now = self.now_str()
            user = self.system_user
            table = self.records[o.name]
            for data in rows:
                rec = dict(defaults)
                rec.update(data)
                rid = self.new_id(o)
                stamp = rec.get("SystemModstamp") or now
                rec.update(Id=rid, IsDeleted=False, CreatedDate=rec.get("CreatedDate") or stamp,
                           LastModifiedDate=stamp, SystemModstamp=stamp, CreatedById=user, LastModifiedById=user)
                if "OwnerId" in o.fields and not rec.get("OwnerId"):
                    rec["OwnerId"] = user
                self._derive(o, rec, stamp[:10])
                table[rid] = rec
                self._index(o, rec, None)
                if o.name == "CampaignMember":
                    self._members[(rec["CampaignId"], rec.get("ContactId") or rec["LeadId"])] = rid
                out.append(rid)
        return out

    def update(self, sobject: str, record_id: str, data: dict[str, Any], user: str | None = None) -> None:
        with self.lock:
            o = self.writable(sobject)
            rec = self._live(o, record_id)
            if self.record_hook:
                self.record_hook(o.name, rec["Id"], data)
            if o.name == "Lead" and rec.get("IsConverted"):
                raise OrgError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            vals = self._fields_in(o, data, creating=False, current=rec)
            for f in o.fields.values():
                if f.required and f.name in vals and vals[f.name] in (None, ""):
                    raise OrgError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name])
            self._check_refs_not_converted(vals)
            if o.name == "CampaignInfluence":
                self._check_influence({**rec, **vals})
            self._apply(o, rec, vals, user)

    def _apply(self, o: ObjectDef, rec: dict[str, Any], vals: dict[str, Any], user: str | None) -> None:
        old = dict(rec) if any(f in self._ext_fields(o) for f in vals) else None
        rec.update(vals)
        now = self.now_str()
        rec["LastModifiedDate"] = rec["SystemModstamp"] = now
        rec["LastModifiedById"] = user or self.system_user
        self._derive(o, rec, now[:10])
        if old is not None:
            self._index(o, rec, old)

    def _ext_fields(self, o: ObjectDef) -> set[str]:
        return {f for (oname, f) in self._ext if oname == o.name}

    def _live(self, o: ObjectDef, record_id: str) -> dict[str, Any]:
        if not _ID.match(record_id or ""):
            raise OrgError("MALFORMED_ID", f"{o.name} ID: id value of incorrect type: {record_id}", ["Id"])
        rid = id18(record_id) if len(record_id) == 15 else record_id
        rec = self.records[o.name].get(rid)
        if rec is None:
            if self.type_of(rid) != o.name:
                raise OrgError("MALFORMED_ID", f"{o.name} ID: id value of incorrect type: {record_id}", ["Id"])
            raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
        if rec["IsDeleted"]:
            raise OrgError("ENTITY_IS_DELETED", "entity is deleted", [])
        return rec

    def upsert(self, sobject: str, ext_field: str, value: str, data: dict[str, Any],
               user: str | None = None) -> tuple[str, bool]:
        """Returns (id, created). `ext_field` may be `Id`."""
        with self.lock:
            o = self.writable(sobject)
            f = o.field(ext_field)
            if f is None or not (f.external_id or f.name == "Id"):
                raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
            data = {k: v for k, v in data.items() if k.lower() != f.name.lower()}
            if f.name == "Id":
                existing = value if value and value in self.records[o.name] else None
            else:
                existing = self._ext[(o.name, f.name)].get(str(value).lower())
            if existing:
                self.update(o.name, existing, data, user)
                return existing, False
            payload = dict(data)
            if f.name != "Id":
                payload[f.name] = value
            return self.create(o.name, payload, user), True

    def delete(self, sobject: str, record_id: str, user: str | None = None, master: str | None = None) -> None:
        with self.lock:
            o = self.writable(sobject)
            rec = self._live(o, record_id)
            if self.record_hook:
                self.record_hook(o.name, rec["Id"], {})
            self._apply(o, rec, {"IsDeleted": True, "MasterRecordId": master} if master else {"IsDeleted": True},
                        user)
            if o.name == "CampaignMember":
                self._members.pop((str(rec["CampaignId"]), str(rec.get("ContactId") or rec.get("LeadId"))), None)
            for (oname, fname), idx in self._ext.items():
                if oname == o.name and rec.get(fname):
                    idx.pop(str(rec[fname]).lower(), None)

    def merge(self, sobject: str, master_id: str, loser_ids: Iterable[str], user: str | None = None) -> None:
        """Merge losers into the master: losers are deleted with MasterRecordId; the master is touched."""
        with self.lock:
            o = self.obj(sobject)
            master = self._live(o, master_id)
            for lid in loser_ids:
                self.delete(o.name, lid, user, master=master["Id"])
            self._apply(o, master, {}, user)

    def convert_lead(self, lead_id: str, *, account_id: str | None = None, create_opportunity: bool = True,
                     converted_status: str = "Closed - Converted", user: str | None = None) -> dict[str, str]:
        """What `Database.convertLead` does: Contact (+ Account, + Opportunity), lead read-only afterwards."""
        with self.lock:
            lead = self._live(self.schema["Lead"], lead_id)
            if lead.get("IsConverted"):
                raise OrgError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            owner = lead.get("OwnerId")
            if account_id is None:
                account_id = self.create("Account", {"Name": lead.get("Company") or lead["LastName"],
                                                     "Industry": lead.get("Industry"),
                                                     "BillingCountry": lead.get("Country"), "OwnerId": owner}, user)
            contact_id = self.create("Contact", {
                "FirstName": lead.get("FirstName"), "LastName": lead["LastName"], "Email": lead.get("Email"),
                "Title": lead.get("Title"), "Phone": lead.get("Phone"), "AccountId": account_id,
                "MailingCountry": lead.get("Country"), "LeadSource": lead.get("LeadSource"),
                "HasOptedOutOfEmail": lead.get("HasOptedOutOfEmail"), "OwnerId": owner,
                **{k: lead.get(k) for k in lead if k.startswith("Nurture_")}}, user)
            out = {"accountId": account_id, "contactId": contact_id, "leadId": lead["Id"]}
            today = self.now_str()[:10]
            if create_opportunity:
                out["opportunityId"] = self.create("Opportunity", {
                    "Name": f"{lead.get('Company') or lead['LastName']}-", "AccountId": account_id,
                    "ContactId": contact_id, "StageName": "Prospecting", "CloseDate": today, "OwnerId": owner,
                    "LeadSource": lead.get("LeadSource")}, user)
            self._apply(self.schema["Lead"], lead, {
                "IsConverted": True, "ConvertedContactId": contact_id, "ConvertedAccountId": account_id,
                "ConvertedOpportunityId": out.get("opportunityId"), "ConvertedDate": today,
                "Status": converted_status}, user)
            # Campaign memberships move to the contact, as they do in Salesforce.
            for mid, cm in self.records["CampaignMember"].items():
                if cm.get("LeadId") == lead["Id"] and not cm["IsDeleted"]:
                    self._members.pop((cm["CampaignId"], lead["Id"]), None)
                    self._apply(self.schema["CampaignMember"], cm, {"ContactId": contact_id}, user)
                    self._members[(cm["CampaignId"], contact_id)] = mid
            return out

    # -------------------------------------------------------------------------------------------- reads
    def get(self, sobject: str, record_id: str, version: str, fields: list[str] | None = None) -> dict[str, Any]:
        with self.lock:
            o = self.obj(sobject)
            rid = id18(record_id) if len(record_id) == 15 else record_id
            rec = self.records[o.name].get(rid)
            if rec is None or rec["IsDeleted"]:
                raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
            names = [field_of(o, n).name for n in fields] if fields else list(o.fields)
            return self.wire(o.name, rec, names, version)

    def get_by_external(self, sobject: str, ext_field: str, value: str) -> list[str]:
        o = self.obj(sobject)
        f = o.field(ext_field)
        if f is None:
            raise OrgError("NOT_FOUND", "The requested resource does not exist", status=404)
        if f.external_id:
            rid = self._ext[(o.name, f.name)].get(value.lower())
            return [rid] if rid else []
        return [r["Id"] for r in self.records[o.name].values()
                if not r["IsDeleted"] and str(r.get(f.name) or "").lower() == value.lower()]

    @staticmethod
    def wire(sobject: str, rec: dict[str, Any], names: list[str], version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject,
                                              "url": f"/services/data/v{version}/sobjects/{sobject}/{rec['Id']}"}}
        for n in names:
            out[n] = rec.get(n)
        return out

    def query(self, soql: str, include_deleted: bool = False, user_id: str | None = None) -> QueryResult:
        """Run SOQL as `user_id` (relative date literals in that user's TimeZoneSidKey; UTC without a user)."""
        with self.lock:
            return evaluate(self, soql, include_deleted, self.user_tz(user_id))

    def user_tz(self, user_id: str | None) -> tzinfo | None:
        user = self.records["User"].get(user_id or "")
        try:
            return ZoneInfo(str(user["TimeZoneSidKey"])) if user and user.get("TimeZoneSidKey") else None
        except (ZoneInfoNotFoundError, ValueError):
            return None

    # --------------------------------------------------------------------------------- change tracking
    def updated_ids(self, sobject: str, start: str, end: str) -> list[str]:
        with self.lock:
            o = self.obj(sobject)
            return [r["Id"] for r in self.records[o.name].values()
                    if not r["IsDeleted"] and start <= r["SystemModstamp"] < end]

    def deleted_records(self, sobject: str, start: str, end: str) -> list[dict[str, str]]:
        with self.lock:
            o = self.obj(sobject)
            return [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in self.records[o.name].values()
                    if r["IsDeleted"] and start <= r["SystemModstamp"] < end]
