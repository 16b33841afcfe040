"""The emulated org's objects and fields: types, key prefixes, relationships, write rules, describe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str  # id string email textarea picklist boolean int double currency date datetime reference
    length: int = 0
    createable: bool = True
    updateable: bool = True
    required: bool = False  # on create
    default: Any = None
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    external_id: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()  # values (the first is the default where `default` names none)

    @property
    def nillable(self) -> bool:
        return not self.required and self.type not in ("boolean", "id")


@dataclass
class ObjectDef:
    name: str
    prefix: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    label: str = ""
    setup: bool = False  # a setup object (LeadStatus …): queryable, not writable through the data API

    def __post_init__(self) -> None:
        self.lower = {n.lower(): f for n, f in self.fields.items()}
        self.relationships = {f.relationship.lower(): f for f in self.fields.values() if f.relationship}

    def field(self, name: str) -> FieldDef | None:
        return self.lower.get(name.lower())


def _s(name: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", length=length, **kw)


def _ref(name: str, *to: str, **kw: Any) -> FieldDef:
    rel = name[:-2] if name.endswith("Id") else name.replace("__c", "__r")
    return FieldDef(name, "reference", length=18, reference_to=to, relationship=rel, **kw)


def _ro(f: FieldDef) -> FieldDef:
    return FieldDef(**{**f.__dict__, "createable": False, "updateable": False})


def _pick(name: str, *values: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "picklist", length=40, picklist=values, **kw)


def _system(owner: bool = True, mergeable: bool = False, owner_to: tuple[str, ...] = ("User",)) -> list[FieldDef]:
    out = [
        FieldDef("Id", "id", length=18, createable=False, updateable=False),
        FieldDef("IsDeleted", "boolean", createable=False, updateable=False, default=False),
        FieldDef("CreatedDate", "datetime", createable=False, updateable=False),
        _ro(_ref("CreatedById", "User")),
        FieldDef("LastModifiedDate", "datetime", createable=False, updateable=False),
        _ro(_ref("LastModifiedById", "User")),
        FieldDef("SystemModstamp", "datetime", createable=False, updateable=False),
    ]
    if owner:
        out.append(_ref("OwnerId", *owner_to))
    if mergeable:
        out.append(_ro(_ref("MasterRecordId", "Self")))
    return out


#: Nurture-owned custom fields (names match the default `salesforce.field_map`).
NURTURE_FIELDS = [
    FieldDef("Nurture_Score__c", "double", custom=True),
    _s("Nurture_Grade__c", 2, custom=True),
    _s("Nurture_Stage__c", 20, custom=True),
    _s("Nurture_MQL_Status__c", 40, custom=True),
    FieldDef("Nurture_Last_Engagement__c", "datetime", custom=True),
    _s("Nurture_Sequence_Status__c", 255, custom=True),
]
#: External-id field the sync upserts Tasks and CampaignMembers on (idempotent retries).
NURTURE_KEY = FieldDef("Nurture_Key__c", "string", length=80, external_id=True, custom=True)


def _obj(name: str, prefix: str, fields: list[FieldDef], setup: bool = False) -> ObjectDef:
    return ObjectDef(name, prefix, {f.name: f for f in fields}, label=_words(name), setup=setup)


def _words(name: str) -> str:
    """A label from an API name, as Setup shows it: `CampaignMember` → `Campaign Member`, `OwnerId` → `Owner ID`,
    `Nurture_Score__c` → `Nurture Score`."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.removesuffix("__c").replace("_", " "))
    return re.sub(r" Id$", " ID", text)


def _plural(label: str) -> str:
    if label.endswith("y") and not label.endswith(("ay", "ey", "oy")):
        return label[:-1] + "ies"
    return label + ("es" if label.endswith(("s", "x", "ch")) else "s")


INDUSTRIES = ("Agriculture", "Banking", "Education", "Energy", "Finance", "Healthcare", "Manufacturing", "Media",
              "Retail", "Technology", "Other")
LEAD_SOURCES = ("Web", "Webinar", "Trade Show", "Partner", "Content Syndication", "Paid Search", "Phone Inquiry",
                "Other")
#: The org's Lead Status values (the LeadStatus setup object): (label, is default, is converted), in sort order.
LEAD_STATUSES = (("Open - Not Contacted", True, False), ("Working - Contacted", False, False),
                 ("Nurturing", False, False), ("Closed - Converted", False, True),
                 ("Closed - Not Converted", False, False))
#: Standard child relationship names: (child object, reference field) → relationship name on the parent.
CHILD_RELATIONSHIPS = {("Contact", "AccountId"): "Contacts", ("Opportunity", "AccountId"): "Opportunities",
                       ("Opportunity", "CampaignId"): "Opportunities", ("CampaignMember", "CampaignId"):
                       "CampaignMembers", ("CampaignMember", "LeadId"): "CampaignMembers",
                       ("CampaignMember", "ContactId"): "CampaignMembers", ("Task", "WhoId"): "Tasks",
                       ("Task", "WhatId"): "Tasks", ("CampaignInfluence", "CampaignId"): "CampaignInfluences",
                       ("CampaignInfluence", "OpportunityId"): "CampaignInfluences"}
#: What a polymorphic relationship (`Owner` of a Lead, `Who`, `What`) exposes: Salesforce's `Name` object.
NAME_OBJECT = ObjectDef("Name", "", {f.name: f for f in [
    FieldDef("Id", "id", length=18), _s("Name"), _pick("Type"), _s("Alias", 8), FieldDef("Email", "email", length=80),
    _s("FirstName", 40), _s("LastName", 80), FieldDef("IsActive", "boolean"), _s("Username", 80),
    _s("Title", 80), _s("Phone", 40)]}, label="Name")


def _setup_objects() -> list[ObjectDef]:
    """Setup objects admins' scripts query: Group (queues own leads) and LeadStatus (the Lead Status values)."""
    return [
        _obj("Group", "00G", [*_system(owner=True), _s("Name", 40, required=True), _s("DeveloperName", 80),
                              _pick("Type", "Queue", "Regular", default="Regular"),
                              FieldDef("Email", "email", length=255)]),
        _obj("LeadStatus", "01J", [*_system(owner=False), _s("MasterLabel", 255), _s("ApiName", 255),
                                   FieldDef("SortOrder", "int"), FieldDef("IsDefault", "boolean", default=False),
                                   FieldDef("IsConverted", "boolean", default=False)], setup=True),
    ]


#: Influence models the emulated org has when Customizable Campaign Influence is on: Salesforce's own
#: Primary Campaign Source model (never written to) and the three custom models nurture pushes to.
INFLUENCE_MODELS = (("primaryModel", "Primary Campaign Source", True), ("Nurture_First_Touch", "First Touch", False),
                    ("Nurture_Last_Touch", "Last Touch", False), ("Nurture_Even_Touch", "Even Touch", False))


def _influence_objects() -> list[ObjectDef]:
    """CampaignInfluence (API 37.0+, needs Customizable Campaign Influence) and its models."""
    return [
        _obj("CampaignInfluenceModel", "0Ml", [
            *_system(owner=False), _ro(_s("DeveloperName", 80)), _ro(_s("MasterLabel", 80)),
            FieldDef("IsActive", "boolean", createable=False, updateable=False, default=True),
            FieldDef("IsDefaultModel", "boolean", createable=False, updateable=False, default=False),
            FieldDef("IsModelLocked", "boolean", createable=False, updateable=False, default=False)]),
        _obj("CampaignInfluence", "0Ci", [
            *_system(owner=False), _ref("CampaignId", "Campaign", required=True),
            _ref("OpportunityId", "Opportunity", required=True, updateable=False),
            _ref("ContactId", "Contact"), _ref("ModelId", "CampaignInfluenceModel", required=True, updateable=False),
            FieldDef("Influence", "double"),
            FieldDef("RevenueShare", "currency", createable=False, updateable=False), NURTURE_KEY]),
    ]


def build_schema(*, campaign_influence: bool = True) -> dict[str, ObjectDef]:
    """The org's objects; `campaign_influence=False` is an org without Customizable Campaign Influence."""
    objs = [
        _obj("User", "005", [*_system(owner=False), _s("Username", 80, required=True, external_id=True),
                              _s("FirstName", 40), _s("LastName", 80, required=True), _ro(_s("Name", 121)),
                              FieldDef("Email", "email", length=128, required=True),
                              FieldDef("IsActive", "boolean", default=True), _s("Title", 80),
                              _s("TimeZoneSidKey", 40, default="America/Los_Angeles")]),
        _obj("Account", "001", [*_system(mergeable=True), _s("Name", required=True), _s("Website"),
                                _pick("Industry", *INDUSTRIES), FieldDef("NumberOfEmployees", "int"),
                                FieldDef("AnnualRevenue", "currency"), _s("BillingCountry", 80)]),
        _obj("Lead", "00Q", [*_system(mergeable=True, owner_to=("User", "Group")),
                             _s("FirstName", 40), _s("LastName", 80, required=True),
                             _ro(_s("Name", 121)),
                             FieldDef("Email", "email", length=80), _s("Company", required=True), _s("Title", 128),
                             _s("Phone", 40), _pick("Industry", *INDUSTRIES),
                             _pick("LeadSource", *LEAD_SOURCES),
                             FieldDef("Status", "picklist", length=40, default="Open - Not Contacted"),
                             _pick("Rating", "Hot", "Warm", "Cold"), _s("Country", 80), _s("State", 80),
                             _s("City", 40), FieldDef("NumberOfEmployees", "int"),
                             FieldDef("AnnualRevenue", "currency"),
                             FieldDef("HasOptedOutOfEmail", "boolean", default=False),
                             FieldDef("IsConverted", "boolean", updateable=False, default=False),
                             _ref("ConvertedContactId", "Contact", updateable=False),
                             _ref("ConvertedAccountId", "Account", updateable=False),
                             _ref("ConvertedOpportunityId", "Opportunity", updateable=False),
                             FieldDef("ConvertedDate", "date", updateable=False),
                             FieldDef("EmailBouncedDate", "datetime"), _s("EmailBouncedReason"),
                             *NURTURE_FIELDS]),
        _obj("Contact", "003", [*_system(mergeable=True), _s("FirstName", 40), _s("LastName", 80, required=True),
                                _ro(_s("Name", 121)),
                                FieldDef("Email", "email", length=80), _s("Title", 128), _s("Phone", 40),
                                _ref("AccountId", "Account"), _s("MailingCountry", 80),
                                _pick("LeadSource", *LEAD_SOURCES),
                                FieldDef("HasOptedOutOfEmail", "boolean", default=False),
                                FieldDef("EmailBouncedDate", "datetime"), _s("EmailBouncedReason"), *NURTURE_FIELDS]),
        _obj("Campaign", "701", [*_system(), _s("Name", 80, required=True),
                                 _pick("Type", "Advertisement", "Content", "Email", "Event", "Webinar", "Other"),
                                 _pick("Status", "Planned", "In Progress", "Completed", "Aborted", default="Planned"),
                                 FieldDef("IsActive", "boolean", default=False), FieldDef("StartDate", "date"),
                                 FieldDef("EndDate", "date")]),
        _obj("CampaignMember", "00v", [*_system(owner=False), _ref("CampaignId", "Campaign", required=True,
                                                                     updateable=False),
                                       _ref("LeadId", "Lead", updateable=False),
                                       _ref("ContactId", "Contact", updateable=False),
                                       _pick("Status", "Sent", "Responded", default="Sent"),
                                       FieldDef("HasResponded", "boolean", createable=False, updateable=False,
                                                default=False),
                                       FieldDef("FirstRespondedDate", "date", createable=False, updateable=False),
                                       NURTURE_KEY]),
        _obj("Opportunity", "006", [*_system(), _s("Name", 120, required=True), _ref("AccountId", "Account"),
                                    _ref("ContactId", "Contact"), _ref("CampaignId", "Campaign"),
                                    _pick("StageName", "Prospecting", "Qualification", "Proposal", "Negotiation",
                                          "Closed Won", "Closed Lost", required=True),
                                    FieldDef("Amount", "currency"), FieldDef("CloseDate", "date", required=True),
                                    FieldDef("IsClosed", "boolean", createable=False, updateable=False,
                                             default=False),
                                    FieldDef("IsWon", "boolean", createable=False, updateable=False, default=False),
                                    _pick("LeadSource", *LEAD_SOURCES)]),
        _obj("Task", "00T", [*_system(), _ref("WhoId", "Lead", "Contact"),
                             _ref("WhatId", "Account", "Opportunity", "Campaign"), _s("Subject", 255),
                             FieldDef("Description", "textarea", length=32000),
                             _pick("Status", "Not Started", "In Progress", "Completed", "Waiting on someone else",
                                   "Deferred", default="Not Started"),
                             _pick("Priority", "High", "Normal", "Low", default="Normal"),
                             FieldDef("ActivityDate", "date"),
                             _pick("TaskSubtype", "Task", "Email", "LinkedIn", "ListEmail", "Cadence", "Call",
                                   updateable=False, default="Task"),
                             FieldDef("IsClosed", "boolean", createable=False, updateable=False, default=False),
                             NURTURE_KEY]),
    ]
    objs += _setup_objects()
    if campaign_influence:
        objs += _influence_objects()
    return {o.name: o for o in objs}


#: Status values that count as a response (drives CampaignMember.HasResponded).
RESPONDED_STATUSES = frozenset({"Responded", "Attended", "Registered", "Clicked", "Converted"})
CLOSED_TASK_STATUSES = frozenset({"Completed", "Closed"})

_SOAP_TYPE = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
              "double": "xsd:double", "currency": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime"}


def picklist_entries(values: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Describe's picklistValues: (value, is default) → {active, defaultValue, label, validFor, value}."""
    return [{"active": True, "defaultValue": default, "label": v, "validFor": None, "value": v}
            for v, default in values]


def describe_field(f: FieldDef, picklist: list[tuple[str, bool]] | None = None) -> dict[str, Any]:
    if picklist is None:
        picklist = [(v, v == f.default) for v in f.picklist]
    return {
        "aggregatable": True, "autoNumber": False, "byteLength": f.length * 3, "calculated": False,
        "calculatedFormula": None, "cascadeDelete": False, "caseSensitive": False, "compoundFieldName": None,
        "controllerName": None, "createable": f.createable, "custom": f.custom,
        "defaultValue": f.default,
        "defaultValueFormula": None, "defaultedOnCreate": f.default is not None, "dependentPicklist": False,
        "deprecatedAndHidden": False, "digits": 9 if f.type == "int" else 0, "externalId": f.external_id,
        "filterable": True, "groupable": f.type not in ("double", "currency", "textarea"), "htmlFormatted": False,
        "idLookup": f.name == "Id" or f.external_id or f.type == "email", "inlineHelpText": None,
        "label": _words(f.name), "length": f.length, "name": f.name,
        "nameField": f.name == "Name", "nillable": f.nillable, "picklistValues": picklist_entries(picklist),
        "polymorphicForeignKey": len(f.reference_to) > 1, "precision": 18 if f.type in ("double", "currency") else 0,
        "referenceTo": list(f.reference_to), "relationshipName": f.relationship,
        "restrictedPicklist": False, "scale": 2 if f.type in ("double", "currency") else 0,
        "soapType": _SOAP_TYPE.get(f.type, "xsd:string"), "sortable": f.type != "textarea", "type": f.type,
        "unique": f.external_id, "updateable": f.updateable,
    }


def urls(obj: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def describe_global_entry(obj: ObjectDef, version: str) -> dict[str, Any]:
    writable = not obj.setup
    return {"name": obj.name, "label": obj.label, "labelPlural": _plural(obj.label), "keyPrefix": obj.prefix,
            "custom": False, "createable": writable, "updateable": writable, "deletable": writable,
            "queryable": True,
            "replicateable": True, "retrieveable": True, "searchable": True, "mergeable": "MasterRecordId" in
            obj.fields, "urls": urls(obj, version)}


def child_relationships(obj: ObjectDef, schema: dict[str, ObjectDef]) -> list[dict[str, Any]]:
    """Every reference to `obj` from the org's objects; `relationshipName` is set where a parent-to-child
    subquery can use it (CHILD_RELATIONSHIPS), null otherwise (as for most system references)."""
    out = []
    for child in schema.values():
        for f in child.fields.values():
            if f.type != "reference" or not ({obj.name} & {child.name if r == "Self" else r for r in f.reference_to}):
                continue
            out.append({"cascadeDelete": False, "childSObject": child.name, "deprecatedAndHidden": False,
                        "field": f.name, "junctionIdListNames": [], "junctionReferenceTo": [],
                        "relationshipName": CHILD_RELATIONSHIPS.get((child.name, f.name)),
                        "restrictedDelete": False})
    return out


def describe_object(obj: ObjectDef, version: str, schema: dict[str, ObjectDef],
                    picklists: dict[str, list[tuple[str, bool]]] | None = None) -> dict[str, Any]:
    """`picklists` overrides a field's values with the org's live ones (Lead.Status from LeadStatus)."""
    picklists = picklists or {}
    out = describe_global_entry(obj, version)
    out.update({"fields": [describe_field(f, picklists.get(f.name)) for f in obj.fields.values()],
                "childRelationships": child_relationships(obj, schema), "recordTypeInfos": [] if obj.setup else [
                    {"active": True, "available": True, "defaultRecordTypeMapping": True, "developerName": "Master",
                     "master": True, "name": "Master", "recordTypeId": "012000000000000AAA",
                     "urls": {"layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/"
                                        "012000000000000AAA"}}],
                "undeletable": not obj.setup})
    return out
