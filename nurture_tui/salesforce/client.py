"""Build a logged-in simple-salesforce client from `settings.salesforce` (TOML or NURTURE_SALESFORCE__* env).

Auth flows (`auth`): `jwt` (recommended: a connected app with a certificate, no password stored),
`client_credentials`, `password` (OAuth username-password, discouraged by Salesforce) and `soap`
(partner `login()`, being retired in Summer '27).

Transport traps handled here (salesforce-wire.md §0):
- `ca_file` makes the session trust that CA *and* sets `trust_env = False`, because REQUESTS_CA_BUNDLE /
  CURL_CA_BUNDLE in the environment would otherwise silently override `verify`.
- `login_url` sends the login host (`https://{domain}.salesforce.com`, which simple-salesforce hard-codes) to
  another HTTPS endpoint, e.g. the loopback emulator — the equivalent of a hosts-file entry. Everything after
  login goes to the `instance_url` the server returned, untouched.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from ..errors import NurtureError

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

    from ..config import SalesforceSettings


class LoginHostAdapter(HTTPAdapter):
    """Routes requests for `*.salesforce.com` to `target` (scheme://host:port); TLS is still verified."""

    def __init__(self, target: str) -> None:
        super().__init__(pool_maxsize=16)
        parts = urlsplit(target)
        if parts.scheme != "https" or not parts.netloc:
            raise NurtureError(f"salesforce.login_url: {target!r} must be an https://host[:port] URL")
        self.netloc = parts.netloc

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            request.url = urlunsplit(("https", self.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, *args, **kwargs)


def make_session(cfg: SalesforceSettings) -> requests.Session:
    s = requests.Session()
    if cfg.ca_file is not None:
        if not cfg.ca_file.exists():
            raise NurtureError(f"salesforce.ca_file: {cfg.ca_file}: file not found")
        s.trust_env = False
        s.verify = str(cfg.ca_file)
    adapter: HTTPAdapter = LoginHostAdapter(cfg.login_url) if cfg.login_url else HTTPAdapter(pool_maxsize=16)
    s.mount("https://", adapter)
    return s


def _need(cfg: SalesforceSettings, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) in (None, ""):
            raise NurtureError(f"salesforce.{name}: required for auth = {cfg.auth!r} "
                               f"(set it in the config file or NURTURE_SALESFORCE__{name.upper()})")


def _secret(value: Any) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value or "")


def connect(cfg: SalesforceSettings, session: requests.Session | None = None) -> Salesforce:
    """Log in with the configured flow and return the client (raises NurtureError on bad config/credentials)."""
    s = session or make_session(cfg)
    common: dict[str, Any] = {"session": s, "version": cfg.api_version, "domain": cfg.domain}
    with warnings.catch_warnings():  # simple-salesforce prints a multi-line hint for unapproved users
        warnings.simplefilter("ignore")
        return _login(cfg, common)


def _login(cfg: SalesforceSettings, common: dict[str, Any]) -> Salesforce:
    from simple_salesforce.api import Salesforce
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

    try:
        if cfg.auth == "jwt":
            _need(cfg, "username", "consumer_key", "private_key_file")
            assert cfg.private_key_file is not None
            if not cfg.private_key_file.exists():
                raise NurtureError(f"salesforce.private_key_file: {cfg.private_key_file}: file not found")
            return Salesforce(username=cfg.username, consumer_key=cfg.consumer_key,
                              privatekey_file=str(cfg.private_key_file), **common)
        if cfg.auth == "client_credentials":
            _need(cfg, "consumer_key", "consumer_secret")
            if cfg.domain in ("login", "test"):
                raise NurtureError("salesforce.domain: client credentials need your My Domain (e.g. "
                                   "'acme.my'), not 'login' or 'test'")
            return Salesforce(consumer_key=cfg.consumer_key, consumer_secret=_secret(cfg.consumer_secret), **common)
        if cfg.auth == "password":
            _need(cfg, "username", "password", "consumer_key", "consumer_secret")
            return Salesforce(username=cfg.username, password=_secret(cfg.password) + _secret(cfg.security_token),
                              consumer_key=cfg.consumer_key, consumer_secret=_secret(cfg.consumer_secret), **common)
        _need(cfg, "username", "password", "security_token")
        return Salesforce(username=cfg.username, password=_secret(cfg.password),
                          security_token=_secret(cfg.security_token), **common)
    except SalesforceAuthenticationFailed as exc:
        hint = " (pre-authorize the integration user's profile on the connected app)" if "approved" in str(exc) else ""
        raise NurtureError(f"salesforce login failed ({cfg.auth}): {' '.join(str(exc).split())}{hint}") from exc
    except (SalesforceError, requests.RequestException) as exc:
        raise NurtureError(f"salesforce login failed ({cfg.auth}): {type(exc).__name__}: {exc}") from exc
