"""SOAP partner API calls beyond login/logout (auth.py) on `/services/Soap/u/{ver}[/{orgId}]`: `convertLead`
(how a real org converts leads through the API — jsforce's `conn.soap.convertLead`), `getUserInfo` and
`getServerTimestamp`. The session comes from the `SessionHeader`; an unknown or expired one is a
`sf:INVALID_SESSION_ID` fault (HTTP 500), as jsforce expects to trigger its re-login.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .auth import ORG_ID, AuthState
from .store import Org, OrgError

_ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
             '"http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body>'
             '</soapenv:Envelope>')
_CALL = re.compile(r"<(?:\w+:)?Body[^>]*>\s*<(?:\w+:)?(\w+)", re.DOTALL)
XML = "text/xml; charset=utf-8"


def fault(code: str, message: str, client: bool = False) -> bytes:
    faultcode = "soapenv:Client" if client else f"sf:{code}"
    body = (f'<soapenv:Fault xmlns:sf="urn:fault.partner.soap.sforce.com"><faultcode>{faultcode}</faultcode>'
            f"<faultstring>{html.escape(f'{code}: {message}' if not client else message)}</faultstring>"
            "</soapenv:Fault>")
    return _ENVELOPE.format(body=body).encode()


def _tag(xml: str, name: str) -> str | None:
    m = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", xml, re.DOTALL)
    return html.unescape(m.group(1).strip()) if m else None


def _all(xml: str, name: str) -> list[str]:
    return re.findall(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", xml, re.DOTALL)


def _elements(values: dict[str, Any]) -> str:
    out = []
    for k, v in values.items():
        if v is None:
            out.append(f'<{k} xsi:nil="true"/>')
        elif isinstance(v, list):  # a repeated element: of records, or of plain values
            out += [f"<{k}>{_elements(item) if isinstance(item, dict) else html.escape(str(item))}</{k}>"
                    for item in v]
        else:
            text = ("true" if v else "false") if isinstance(v, bool) else html.escape(str(v))
            out.append(f"<{k}>{text}</{k}>")
    return "".join(out)


def call(org: Org, auth: AuthState, xml_body: bytes, base_url: str) -> tuple[int, bytes]:
    """One SOAP call (not login/logout); returns (status, body)."""
    xml = xml_body.decode("utf-8", "replace")
    user_id = auth.user_for(_tag(xml, "sessionId") or "")
    if user_id is None:
        return 500, fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
    m = _CALL.search(xml)
    method = m.group(1) if m else ""
    if method == "convertLead":
        results = [_convert(org, lc, user_id) for lc in _all(xml, "leadConverts")]
        return 200, _ENVELOPE.format(body=f"<convertLeadResponse>{_elements({'result': results})}"
                                          "</convertLeadResponse>").encode()
    if method == "getServerTimestamp":
        return 200, _ENVELOPE.format(body="<getServerTimestampResponse><result><timestamp>"
                                          f"{org.now_str().replace('+0000', 'Z')}</timestamp></result>"
                                          "</getServerTimestampResponse>").encode()
    if method == "getUserInfo":
        user = org.find(user_id) or {}
        info = {"organizationId": ORG_ID, "organizationName": "nurture emulator", "userEmail": user.get("Email"),
                "userFullName": user.get("Name"), "userId": user_id, "userName": user.get("Username"),
                "userTimeZone": user.get("TimeZoneSidKey"), "userLanguage": "en_US", "userLocale": "en_US"}
        return 200, _ENVELOPE.format(body=f"<getUserInfoResponse><result>{_elements(info)}</result>"
                                          "</getUserInfoResponse>").encode()
    return 500, fault("INVALID_OPERATION", f"No operation available for request "
                      f"{{urn:partner.soap.sforce.com}}{method or '?'} (the emulator serves login, logout, "
                      "convertLead, getUserInfo, getServerTimestamp)", client=True)


def _convert(org: Org, xml: str, user_id: str) -> dict[str, Any]:
    """One LeadConvert: `convertedStatus` must be a converted Lead Status; an `accountId` attaches the contact
    to that account; `doNotCreateOpportunity` skips the opportunity."""
    lead_id = _tag(xml, "leadId") or ""
    status = _tag(xml, "convertedStatus") or ""
    try:
        converted = {str(r["MasterLabel"]) for r in org.records["LeadStatus"].values()
                     if r.get("IsConverted") and not r["IsDeleted"]}
        if status not in converted:
            raise OrgError("INVALID_STATUS", f"invalid convertedStatus: {status}", ["convertedStatus"])
        out = org.convert_lead(lead_id, account_id=_tag(xml, "accountId") or None,
                               create_opportunity=(_tag(xml, "doNotCreateOpportunity") or "false") != "true",
                               converted_status=status, user=user_id)
        return {"accountId": out["accountId"], "contactId": out["contactId"], "leadId": out["leadId"],
                "opportunityId": out.get("opportunityId"), "success": True}
    except OrgError as err:
        return {"accountId": None, "contactId": None,
                "errors": [{"fields": err.fields, "message": err.message, "statusCode": err.code}],
                "leadId": lead_id or None, "opportunityId": None, "success": False}
