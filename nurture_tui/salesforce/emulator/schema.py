"""The emulated org's objects and fields: types, key prefixes, relationships, write rules, describe."""

from __future__ import annotations

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

    @property
    def nillable(self) -> bool:
        return not self.required and self.type not in ("boolean", "id")


@dataclass
class ObjectDef:
    name: str
    prefix: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    label: str = ""

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


def _system(owner: bool = True, mergeable: bool = False) -> list[FieldDef]:
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
        out.append(_ref("OwnerId", "User"))
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
]
#: External-id field the sync upserts Tasks and CampaignMembers on (idempotent retries).
NURTURE_KEY = FieldDef("Nurture_Key__c", "string", length=80, external_id=True, custom=True)


def _obj(name: str, prefix: str, fields: list[FieldDef]) -> ObjectDef:
    return ObjectDef(name, prefix, {f.name: f for f in fields}, label=name)


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
                                FieldDef("Industry", "picklist", length=40), FieldDef("NumberOfEmployees", "int"),
                                FieldDef("AnnualRevenue", "currency"), _s("BillingCountry", 80)]),
        _obj("Lead", "00Q", [*_system(mergeable=True), _s("FirstName", 40), _s("LastName", 80, required=True),
                             _ro(_s("Name", 121)),
                             FieldDef("Email", "email", length=80), _s("Company", required=True), _s("Title", 128),
                             _s("Phone", 40), FieldDef("Industry", "picklist", length=40),
                             FieldDef("LeadSource", "picklist", length=40),
                             FieldDef("Status", "picklist", length=40, default="Open - Not Contacted"),
                             FieldDef("Rating", "picklist", length=40), _s("Country", 80), _s("State", 80),
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
                                FieldDef("LeadSource", "picklist", length=40),
                                FieldDef("HasOptedOutOfEmail", "boolean", default=False), *NURTURE_FIELDS]),
        _obj("Campaign", "701", [*_system(), _s("Name", 80, required=True), FieldDef("Type", "picklist", length=40),
                                 FieldDef("Status", "picklist", length=40, default="Planned"),
                                 FieldDef("IsActive", "boolean", default=False), FieldDef("StartDate", "date"),
                                 FieldDef("EndDate", "date")]),
        _obj("CampaignMember", "00v", [*_system(owner=False), _ref("CampaignId", "Campaign", required=True,
                                                                     updateable=False),
                                       _ref("LeadId", "Lead", updateable=False),
                                       _ref("ContactId", "Contact", updateable=False),
                                       FieldDef("Status", "picklist", length=40, default="Sent"),
                                       FieldDef("HasResponded", "boolean", createable=False, updateable=False,
                                                default=False),
                                       FieldDef("FirstRespondedDate", "date", createable=False, updateable=False),
                                       NURTURE_KEY]),
        _obj("Opportunity", "006", [*_system(), _s("Name", 120, required=True), _ref("AccountId", "Account"),
                                    _ref("ContactId", "Contact"), _ref("CampaignId", "Campaign"),
                                    FieldDef("StageName", "picklist", length=40, required=True),
                                    FieldDef("Amount", "currency"), FieldDef("CloseDate", "date", required=True),
                                    FieldDef("IsClosed", "boolean", createable=False, updateable=False,
                                             default=False),
                                    FieldDef("IsWon", "boolean", createable=False, updateable=False, default=False),
                                    FieldDef("LeadSource", "picklist", length=40)]),
        _obj("Task", "00T", [*_system(), _ref("WhoId", "Lead", "Contact"),
                             _ref("WhatId", "Account", "Opportunity", "Campaign"), _s("Subject", 255),
                             FieldDef("Description", "textarea", length=32000),
                             FieldDef("Status", "picklist", length=40, default="Not Started"),
                             FieldDef("Priority", "picklist", length=40, default="Normal"),
                             FieldDef("ActivityDate", "date"),
                             FieldDef("TaskSubtype", "picklist", length=40, updateable=False, default="Task"),
                             FieldDef("IsClosed", "boolean", createable=False, updateable=False, default=False),
                             NURTURE_KEY]),
    ]
    if campaign_influence:
        objs += _influence_objects()
    return {o.name: o for o in objs}


#: Status values that count as a response (drives CampaignMember.HasResponded).
RESPONDED_STATUSES = frozenset({"Responded", "Attended", "Registered", "Clicked", "Converted"})
CLOSED_TASK_STATUSES = frozenset({"Completed", "Closed"})

_SOAP_TYPE = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
              "double": "xsd:double", "currency": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime"}


def describe_field(f: FieldDef) -> dict[str, Any]:
    return {
        "aggregatable": True, "autoNumber": False, "byteLength": f.length * 3, "calculated": False,
        "calculatedFormula": None, "cascadeDelete": False, "caseSensitive": False, "compoundFieldName": None,
        "controllerName": None, "createable": f.createable, "custom": f.custom,
        "defaultValue": f.default,
        "defaultValueFormula": None, "defaultedOnCreate": f.default is not None, "dependentPicklist": False,
        "deprecatedAndHidden": False, "digits": 9 if f.type == "int" else 0, "externalId": f.external_id,
        "filterable": True, "groupable": f.type not in ("double", "currency", "textarea"), "htmlFormatted": False,
        "idLookup": f.name == "Id" or f.external_id or f.type == "email", "inlineHelpText": None,
        "label": f.name.replace("__c", "").replace("_", " "), "length": f.length, "name": f.name,
        "nameField": f.name == "Name", "nillable": f.nillable, "picklistValues": [],
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
    return {"name": obj.name, "label": obj.label, "labelPlural": obj.label + "s", "keyPrefix": obj.prefix,
            "custom": False, "createable": True, "updateable": True, "deletable": True, "queryable": True,
            "replicateable": True, "retrieveable": True, "searchable": True, "mergeable": "MasterRecordId" in
            obj.fields, "urls": urls(obj, version)}


def describe_object(obj: ObjectDef, version: str) -> dict[str, Any]:
    out = describe_global_entry(obj, version)
    out.update({"fields": [describe_field(f) for f in obj.fields.values()], "childRelationships": [],
                "recordTypeInfos": [], "undeletable": True})
    return out
