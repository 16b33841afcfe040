"""Login endpoints: SOAP partner `login()`, and OAuth 2.0 username-password, JWT bearer and client credentials.

Response shapes follow what simple-salesforce parses (salesforce-wire.md §1): the SOAP response has unprefixed
`<sessionId>`/`<serverUrl>` elements (minidom is not namespace-aware); token responses are JSON with
`access_token` and `instance_url`; failures are a SOAP `LoginFault` or `{"error","error_description"}`.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ORG_ID = "00D000000000001AAA"


@dataclass
class Credentials:
    password: str
    security_token: str
    user_id: str


@dataclass
class AuthState:
    consumer_key: str = "nurture-emulator-consumer-key"
    consumer_secret: str = "nurture-emulator-consumer-secret"
    users: dict[str, Credentials] = field(default_factory=dict)
    jwt_public_key: Any = None
    run_as: str | None = None  # the client-credentials flow's execution user
    sessions: dict[str, str] = field(default_factory=dict)  # token → user id
    lock: threading.Lock = field(default_factory=threading.Lock)
    logins: int = 0

    def make_jwt_key(self, directory: Path) -> Path:
        """Generate the connected app's certificate key pair; the client signs with the private key file."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwt_public_key = key.public_key()
        path = directory / "jwt-private-key.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        return path

    def issue(self, user_id: str) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(24)}"
        with self.lock:
            self.sessions[token] = user_id
            self.logins += 1
        return token

    def user_for(self, token: str) -> str | None:
        return self.sessions.get(token)

    def revoke(self, token: str | None = None) -> None:
        with self.lock:
            if token is None:
                self.sessions.clear()
            else:
                self.sessions.pop(token, None)

    def _check_password(self, username: str, password: str) -> Credentials | None:
        cred = self.users.get(username)
        if cred is None:
            return None
        if password in (cred.password, cred.password + cred.security_token):
            return cred
        return None


_SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope \
xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com">\
<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, \
password, security token; or user locked out.</faultstring><detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN\
</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.\
</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""

_SOAP_OK = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope \
xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{base}/services/Soap/m/{ver}/{org}</metadataServerUrl><passwordExpired>false</passwordExpired>\
<sandbox>false</sandbox><serverUrl>{base}/services/Soap/u/{ver}/{org}</serverUrl><sessionId>{sid}</sessionId>\
<userId>{uid}</userId><userInfo><organizationId>{org}</organizationId><userName>{user}</userName>\
<sessionSecondsValid>7200</sessionSecondsValid></userInfo></result></loginResponse></soapenv:Body>\
</soapenv:Envelope>"""


def _tag(xml: str, name: str) -> str | None:
    m = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", xml, re.DOTALL)
    return html.unescape(m.group(1)) if m else None


_SOAP_LOGOUT = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope \
xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">\
<soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>"""


def soap_login(state: AuthState, body: bytes, base_url: str, version: str) -> tuple[int, str, bytes]:
    """The partner SOAP endpoint's `login()` (and `logout()`, which ends the SessionHeader's session).
    Returns (status, content type, body)."""
    xml = body.decode("utf-8", "replace")
    if re.search(r"<(?:\w+:)?logout\b", xml):
        sid = _tag(xml, "sessionId")
        if sid is None or state.user_for(sid) is None:
            return 500, "text/xml; charset=utf-8", _SOAP_FAULT.replace("INVALID_LOGIN", "INVALID_SESSION_ID").replace(
                "Invalid username, password, security token; or user locked out.", "Invalid Session ID found in "
                "SessionHeader: Illegal Session").encode()
        state.revoke(sid)
        return 200, "text/xml; charset=utf-8", _SOAP_LOGOUT.encode()
    username, password = _tag(xml, "username"), _tag(xml, "password")
    cred = state._check_password(username or "", password or "")
    if cred is None or username is None:
        return 500, "text/xml; charset=utf-8", _SOAP_FAULT.encode()
    sid = state.issue(cred.user_id)
    text = _SOAP_OK.format(base=base_url, ver=version, org=ORG_ID, sid=sid, uid=cred.user_id,
                           user=html.escape(username))
    return 200, "text/xml; charset=utf-8", text.encode()


def _oauth_error(error: str, description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "error_description": description}


def oauth_token(state: AuthState, body: bytes, headers: dict[str, str], base_url: str,
                now_ms: int) -> tuple[int, dict[str, Any]]:
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    user_id: str | None = None
    if grant == "password":
        if form.get("client_id") != state.consumer_key or form.get("client_secret") != state.consumer_secret:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        cred = state._check_password(form.get("username", ""), form.get("password", ""))
        if cred is None:
            return _oauth_error("invalid_grant", "authentication failure")
        user_id = cred.user_id
    elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        if state.jwt_public_key is None:
            return _oauth_error("invalid_client", "no certificate is configured for this connected app")
        try:
            claims = jwt.decode(form.get("assertion", ""), state.jwt_public_key, algorithms=["RS256"],
                                options={"verify_aud": False, "require": ["exp", "iss", "sub"]})
        except jwt.ExpiredSignatureError:
            return _oauth_error("invalid_grant", "expired authorization code")
        except jwt.PyJWTError as exc:
            return _oauth_error("invalid_grant", f"invalid assertion: {exc}")
        if claims.get("iss") != state.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not str(claims.get("aud", "")).startswith("https://"):
            return _oauth_error("invalid_grant", "audience is invalid")
        cred = state.users.get(str(claims.get("sub")))
        if cred is None:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        user_id = cred.user_id
    elif grant == "client_credentials":
        auth = headers.get("authorization", "")
        try:
            key, _, secret = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")
        except Exception:
            key, secret = form.get("client_id", ""), form.get("client_secret", "")
        if key != state.consumer_key or secret != state.consumer_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        if state.run_as is None:
            return _oauth_error("invalid_grant", "no client credentials user enabled")
        user_id = state.run_as
    else:
        return _oauth_error("unsupported_grant_type", f"grant type not supported: {grant}")
    token = state.issue(user_id)
    return 200, {"access_token": token, "instance_url": base_url, "id": f"{base_url}/id/{ORG_ID}/{user_id}",
                 "token_type": "Bearer", "issued_at": str(now_ms), "signature": secrets.token_urlsafe(16),
                 "scope": "api"}


def revoke_token(state: AuthState, body: bytes) -> tuple[int, dict[str, Any] | None]:
    """`POST /services/oauth2/revoke` (form `token=`): 200 and the session ends; an unknown token is
    `unsupported_token_type`, as Salesforce answers."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    token = form.get("token", "")
    if state.user_for(token) is None:
        return 400, {"error": "unsupported_token_type", "error_description": "this token type is not supported"}
    state.revoke(token)
    return 200, None


def identity(user: dict[str, Any], base_url: str, openid: bool = False) -> dict[str, Any]:
    """The identity URL's answer (`/id/{org}/{user}`), or the OpenID `userinfo` shape."""
    version = "{version}"  # Salesforce leaves the placeholder in these URLs
    rest = f"{base_url}/services/data/v{version}"
    urls = {"enterprise": f"{base_url}/services/Soap/c/{version}/{ORG_ID}",
            "partner": f"{base_url}/services/Soap/u/{version}/{ORG_ID}", "rest": f"{rest}/",
            "sobjects": f"{rest}/sobjects/", "search": f"{rest}/search/", "query": f"{rest}/query/",
            "recent": f"{rest}/recent/", "profile": f"{base_url}/{user['Id']}", "users": f"{rest}/chatter/users"}
    uid = user["Id"]
    common = {"user_id": uid, "organization_id": ORG_ID, "email": user.get("Email"), "email_verified": True,
              "active": bool(user.get("IsActive", True)), "user_type": "STANDARD", "language": "en_US",
              "locale": "en_US", "utcOffset": 0, "urls": urls}
    if openid:
        return {"sub": f"{base_url}/id/{ORG_ID}/{uid}", "preferred_username": user.get("Username"),
                "nickname": user.get("Username"), "name": user.get("Name"), "given_name": user.get("FirstName"),
                "family_name": user.get("LastName"), "zoneinfo": user.get("TimeZoneSidKey"),
                "updated_at": user.get("LastModifiedDate"), **common}
    return {"id": f"{base_url}/id/{ORG_ID}/{uid}", "asserted_user": True, "username": user.get("Username"),
            "nick_name": user.get("Username"), "display_name": user.get("Name"), "first_name": user.get("FirstName"),
            "last_name": user.get("LastName"), "timezone": user.get("TimeZoneSidKey"),
            "last_modified_date": user.get("LastModifiedDate"), "is_app_installed": True, **common}
