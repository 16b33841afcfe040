"""Field mapping and ownership between Salesforce objects and local tables.

Ownership decides conflicts:
- **Salesforce-owned** fields (names, email, company, title, status, industry, country, source …) are pulled
  and overwrite local values; nurture never pushes them.
- **Nurture-owned** fields (score, grade, stage, MQL status, last engagement) are pushed to the custom fields
  named in `salesforce.field_map`; their Salesforce values are never pulled back over local ones.
- **Owner** follows `salesforce.owner_authority`: `salesforce` (default) — a pulled OwnerId wins unless a
  local owner change is still waiting in `sf_outbox` (it is pushed next and echoes back); `nurture` — the
  pulled owner only fills an empty local owner.
- **Email opt-out** is sticky in both directions: a Salesforce opt-out opts the lead out locally; a pull
  never opts a lead back in.

Values arrive either as REST JSON (typed) or Bulk 2.0 CSV text (`""` = null, `true`/`false`); the
converters below accept both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ..errors import ValidationError
from ..store.fastwrite import wire_to_datetime

#: Pulled Salesforce fields per object (Salesforce-owned, plus the system fields the sync needs).
PULL_FIELDS: dict[str, list[str]] = {
    "User": ["Id", "Username", "Name", "Email", "IsActive", "SystemModstamp"],
    "Account": ["Id", "Name", "Website", "Industry", "NumberOfEmployees", "BillingCountry", "OwnerId",
                "SystemModstamp"],
    "Campaign": ["Id", "Name", "Type", "Status", "IsActive", "SystemModstamp"],
    "Lead": ["Id", "Email", "FirstName", "LastName", "Title", "Company", "Phone", "Industry", "NumberOfEmployees",
             "Country", "State", "City", "LeadSource", "Status", "OwnerId", "HasOptedOutOfEmail", "EmailBouncedDate",
             "IsConverted", "ConvertedContactId", "CreatedDate", "SystemModstamp"],
    "Contact": ["Id", "Email", "FirstName", "LastName", "Title", "Phone", "AccountId", "MailingCountry", "LeadSource",
                "OwnerId", "HasOptedOutOfEmail", "CreatedDate", "SystemModstamp"],
    "CampaignMember": ["Id", "CampaignId", "LeadId", "ContactId", "Status", "HasResponded", "CreatedDate",
                       "SystemModstamp"],
    "Opportunity": ["Id", "Name", "AccountId", "ContactId", "StageName", "Amount", "IsClosed", "IsWon", "CloseDate",
                    "CreatedDate", "SystemModstamp"],
}
#: Pull order: parents before children.
PULL_ORDER = ["User", "Account", "Campaign", "Lead", "Contact", "CampaignMember", "Opportunity"]
#: Objects whose deletes (and merges, where MasterRecordId exists) are pulled through queryAll.
MERGEABLE = {"Account", "Lead", "Contact"}
DELETABLE = {"Account", "Lead", "Contact", "CampaignMember", "Opportunity"}

#: Local lead columns filled from Lead / Contact fields (Salesforce-owned).
LEAD_COLUMNS: dict[str, dict[str, str]] = {
    "Lead": {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title",
             "company": "Company", "phone": "Phone", "industry": "Industry", "employees": "NumberOfEmployees",
             "country": "Country", "state": "State", "city": "City", "lead_source": "LeadSource", "status": "Status"},
    "Contact": {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title",
                "phone": "Phone", "country": "MailingCountry", "lead_source": "LeadSource"},
}
SALESFORCE_OWNED = sorted({c for m in LEAD_COLUMNS.values() for c in m} | {"opted_out", "bounced", "account_id"})
NURTURE_OWNED = ["score", "grade", "stage", "mql_status", "last_engagement"]

_TEXT_LIMITS = {"email": 254, "first_name": 80, "last_name": 80, "title": 128, "company": 255, "phone": 40,
                "industry": 80, "country": 80, "state": 80, "city": 80, "lead_source": 80, "status": 40}


def text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    return str(v)


def boolean(v: Any) -> bool:
    return v is True or v == "true" or (type(v) is str and v.lower() == "true")


def integer(v: Any) -> int | None:
    if v is None or v == "":
        return None
    return int(float(v))


def number(v: Any) -> float | None:
    if v is None or v == "":
        return None
    return float(v)


def sf_datetime(v: Any) -> datetime | None:
    """`2024-01-15T10:30:00.000+0000` / `…Z` / `…+00:00` → aware UTC datetime."""
    if v is None or v == "":
        return None
    return wire_to_datetime(str(v))


def sf_date(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    d = date.fromisoformat(str(v)[:10])
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def soql_datetime(dt: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_PLANS = {obj: [(col, field, _TEXT_LIMITS.get(col, 0)) for col, field in cols.items()]
          for obj, cols in LEAD_COLUMNS.items()}


def lead_values(sobject: str, rec: dict[str, Any]) -> dict[str, Any]:
    """Salesforce-owned local lead columns from a Lead/Contact record (email lower-cased and trimmed)."""
    out: dict[str, Any] = {}
    get = rec.get
    for col, field, limit in _PLANS[sobject]:
        v = get(field)
        if v is None or v == "":
            out[col] = None
        elif col == "employees":
            out[col] = int(v) if type(v) is int else int(float(v))
        else:
            if type(v) is not str:
                v = str(v)
            if v[0] == " " or v[-1] == " ":
                v = v.strip()
            out[col] = v[:limit] if limit and len(v) > limit else v
    email = out.get("email")
    if email:
        out["email"] = email.lower()
    return out


def push_fields(payload: dict[str, Any], field_map: dict[str, str], where: str) -> dict[str, Any]:
    """Local nurture-owned keys → Salesforce field names (owner handled by the caller)."""
    try:
        out = {field_map[k]: v for k, v in payload.items() if k != "owner"}
    except KeyError as exc:
        key = exc.args[0]
        raise ValidationError(f"{where}.{key}", f"no Salesforce field mapped (salesforce.field_map.{key})") from exc
    name = field_map.get("last_engagement")
    if name and isinstance(out.get(name), str):
        out[name] = wire_to_datetime(out[name]).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return out
