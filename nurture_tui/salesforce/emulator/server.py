"""The emulator's HTTPS server: a threaded `http.server` with TLS, keep-alive and TCP_NODELAY.

Routing: `/services/Soap/u/{ver}` (SOAP login/logout, convertLead, getUserInfo, getServerTimestamp),
`/services/oauth2/token|revoke|userinfo` (OAuth), `/id/…` (identity URL), `/services/data/` (versions),
`/services/data/vXX.X/…` (REST + Bulk 2.0; counted as API calls, `Sforce-Limit-Info` on every response),
`/services/async/{ver}/…` (Bulk API 1.0, JSON or CSV jobs; session in `X-SFDC-Session`) and
`/_emulator/…` (admin: stats, faults, convert, merge, expire sessions; not counted).
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import soap
from .auth import ORG_ID, AuthState, Credentials, identity, oauth_token, revoke_token, soap_login
from .bulk import BulkApi
from .bulk1 import Bulk1Api
from .faults import DROP, Faults
from .rest import Request, Response, RestApi, dumps
from .schema import INFLUENCE_MODELS
from .store import Org, OrgError
from .tls import make_tls_files

_DATA = re.compile(r"^/services/data/v(\d+\.\d)(?:/(.*))?$")
_SOAP = re.compile(r"^/services/Soap/u/(\d+\.\d)")
_ASYNC = re.compile(r"^/services/async/(\d+\.\d)/(.*)$")
_ROUTE_KEY = re.compile(r"/(?:[a-zA-Z0-9]{15,18}|01g\d+-\d+)(?=/|$)")


def api_versions(last: int = 64) -> list[dict[str, str]]:
    """`GET /services/data/`: every version from 20.0 (Winter '11), three releases a year, up to `last`; the
    emulator serves them all alike."""
    out = []
    for v in range(20, last + 1):
        k = v - 20
        out.append({"label": f"{('Winter', 'Spring', 'Summer')[k % 3]} '{11 + k // 3:02d}",
                    "url": f"/services/data/v{v}.0", "version": f"{v}.0"})
    return out


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.api_calls = 0
        self.by_route: Counter[str] = Counter()
        self.faults = 0

    def count(self, method: str, path: str) -> None:
        key = f"{method} {_ROUTE_KEY.sub('/{id}', path)}"
        with self.lock:
            self.api_calls += 1
            self.by_route[key] += 1

    def reset(self) -> None:
        with self.lock:
            self.api_calls = 0
            self.by_route.clear()
            self.faults = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"api_calls": self.api_calls, "faults": self.faults, "by_route": dict(self.by_route)}


class Emulator:
    """A Salesforce org on loopback. `start()` serves it in a background thread; `stop()` shuts it down."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, directory: Path | None = None,
                 clock: Callable[[], datetime] | None = None, batch_size: int = 2000,
                 daily_api_limit: int = 1_000_000, bulk_polls_before_done: int = 0,
                 username: str = "integration@nurture.example", password: str = "nurture-pass",
                 security_token: str = "EMULATORTOKEN", campaign_influence: bool = True) -> None:
        self.host = host
        self._port = port
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="nurture-sf-emulator-")
        self.directory = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.org = Org(clock, campaign_influence=campaign_influence)
        self.faults = Faults()
        self.org.record_hook = self.faults.check_record
        self.stats = Stats()
        self.daily_api_limit = daily_api_limit
        self.api_used = 0
        self.auth = AuthState()
        self.rest = RestApi(self.org, batch_size=batch_size, daily_limit=lambda: (self.api_used, self.daily_api_limit))
        self.bulk = BulkApi(self.org, self.faults, polls_before_done=bulk_polls_before_done)
        self.bulk1 = Bulk1Api(self.org)
        self.username, self.password, self.security_token = username, password, security_token
        self.integration_user_id = self.org.create("User", {
            "Username": username, "FirstName": "Nurture", "LastName": "Integration",
            "Email": "integration@example.com"})
        self.org.system_user = self.integration_user_id
        if campaign_influence:  # Customizable Campaign Influence on: its models exist (set up in Setup)
            self.org.insert_trusted("CampaignInfluenceModel", [
                {"DeveloperName": name, "MasterLabel": label, "IsModelLocked": locked, "IsDefaultModel": locked}
                for name, label, locked in INFLUENCE_MODELS])
        self.add_login(username, password, security_token, self.integration_user_id)
        self.auth.run_as = self.integration_user_id
        self.tls = make_tls_files(self.directory / "tls", host)
        self.jwt_key_file = self.auth.make_jwt_key(self.directory)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------- admin
    def add_login(self, username: str, password: str, security_token: str, user_id: str) -> None:
        self.auth.users[username] = Credentials(password, security_token, user_id)

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    def client_settings(self, auth: str = "jwt") -> dict[str, Any]:
        """`SalesforceSettings` fields that point the sync at this emulator."""
        return {"enabled": True, "auth": auth, "login_url": self.url, "ca_file": self.ca_file,
                "username": self.username, "password": self.password, "security_token": self.security_token,
                "consumer_key": self.auth.consumer_key, "consumer_secret": self.auth.consumer_secret,
                "private_key_file": self.jwt_key_file, "domain": "login" if auth != "client_credentials" else
                "emulator.my"}

    def credentials(self, version: str = "59.0") -> dict[str, str]:
        """Everything each login flow needs, plus a ready session id for direct use (`nurture salesforce
        emulator` prints it and writes it to credentials.json)."""
        url = self.url
        return {"instance_url": url, "login_url": url, "api_version": version, "organization_id": ORG_ID,
                "username": self.username, "password": self.password, "security_token": self.security_token,
                "consumer_key": self.auth.consumer_key, "consumer_secret": self.auth.consumer_secret,
                "jwt_private_key_file": str(self.jwt_key_file), "ca_file": str(self.ca_file),
                "session_id": self.auth.issue(self.integration_user_id),
                "soap_login_url": f"{url}/services/Soap/u/{version}", "token_url": f"{url}/services/oauth2/token"}

    def expire_sessions(self) -> None:
        self.auth.revoke()

    # ------------------------------------------------------------------------------------------ server
    def start(self) -> Emulator:
        emu = self

        class Handler(_Handler):
            emulator = emu

        server = ThreadingHTTPServer((self.host, self._port), Handler)
        server.daemon_threads = True
        ctx = self.tls.server_context()
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="sf-emulator", daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------------------------------- dispatching
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        split = urlsplit(raw_path)
        path = split.path
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        if path.startswith("/_emulator/"):
            return self._admin(method, path[len("/_emulator/"):], body)
        m = _SOAP.match(path)
        if m and method == "POST":
            if re.search(rb"<(?:\w+:)?(?:login|logout)\b", body):
                status, ctype, text = soap_login(self.auth, body, self.url, m.group(1))
                return Response(status, text, content_type=ctype)
            self.stats.count(method, path)
            with self.stats.lock:
                self.api_used += 1
            status, text = soap.call(self.org, self.auth, body, self.url)
            return Response(status, text, content_type=soap.XML)
        if path.rstrip("/") == "/services/oauth2/token" and method == "POST":
            status, payload = oauth_token(self.auth, body, headers, self.url, int(self.org.clock().timestamp() * 1000))
            return Response(status, payload)
        if path.rstrip("/") == "/services/oauth2/revoke" and method == "POST":
            form = body or (f"token={params['token']}".encode() if params.get("token") else b"")
            status, revoked = revoke_token(self.auth, form)
            return Response(status, revoked)
        if path.startswith("/id/") or path.rstrip("/") == "/services/oauth2/userinfo":
            token = headers.get("authorization", "").removeprefix("Bearer ").removeprefix("OAuth ").strip()
            user_id = self.auth.user_for(token or params.get("oauth_token", ""))
            user = self.org.find(user_id) if user_id else None
            if user is None:
                return Response(403, "Bad_OAuth_Token", content_type="text/plain")
            return Response(200, identity(user, self.url, openid=path.startswith("/services/")))
        if path.rstrip("/") == "/services/data":
            return Response(200, api_versions())
        m = _ASYNC.match(path)
        if m:
            return self._bulk1(method, path, m.group(1), m.group(2), params, headers, body)
        m = _DATA.match(path)
        if not m:
            return Response(404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
        self.stats.count(method, path)
        version, rest_path = m.group(1), m.group(2) or ""
        token = headers.get("authorization", "").removeprefix("Bearer ").removeprefix("OAuth ").strip()
        fault = self.faults.for_request(method, path)
        if fault is not None and not fault.after:
            with self.stats.lock:
                self.stats.faults += 1
            if fault.revoke_session:
                self.auth.revoke(token)
            return Response(fault.status, fault.body())
        user_id = self.auth.user_for(token)
        if user_id is None:
            return Response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        with self.stats.lock:
            if self.api_used >= self.daily_api_limit:
                return Response(403, [{"message": "TotalRequests Limit exceeded.",
                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
            self.api_used += 1
        req = Request(method, rest_path, version, params, headers, body, user_id)
        if rest_path.startswith("jobs/") or rest_path == "jobs":
            resp = self.bulk.handle(req, rest_path.split("/")[1:])
        else:
            resp = self.rest.handle(req)
        resp.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.daily_api_limit}"
        if fault is not None:  # processed, but the client never sees the answer
            with self.stats.lock:
                self.stats.faults += 1
            return Response(fault.status, fault.body())
        return resp

    def _bulk1(self, method: str, path: str, version: str, rest_path: str, params: dict[str, str],
               headers: dict[str, str], body: bytes) -> Response:
        """Bulk API 1.0: the session is in X-SFDC-Session; errors are {exceptionCode, exceptionMessage}."""
        self.stats.count(method, path)
        user_id = self.auth.user_for(headers.get("x-sfdc-session", "").strip())
        if user_id is None:
            return Response(400, {"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid session id"})
        with self.stats.lock:
            if self.api_used >= self.daily_api_limit:
                return Response(403, {"exceptionCode": "ExceededQuota",
                                      "exceptionMessage": "TotalRequests Limit exceeded."})
            self.api_used += 1
        req = Request(method, rest_path, version, params, headers, body, user_id)
        resp = self.bulk1.handle(req, [p for p in rest_path.strip("/").split("/") if p])
        resp.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.daily_api_limit}"
        return resp

    def _admin(self, method: str, action: str, body: bytes) -> Response:
        try:
            data = json.loads(body or b"{}")
            if action == "stats" and method == "GET":
                return Response(200, {**self.stats.snapshot(), "api_used": self.api_used,
                                      "daily_api_limit": self.daily_api_limit})
            if method != "POST":
                return Response(405, {"error": "use POST"})
            if action == "reset-stats":
                self.stats.reset()
            elif action == "faults":
                kind = data.pop("kind")
                self.faults.add(kind, **data)
            elif action == "clear-faults":
                self.faults.clear()
            elif action == "expire-sessions":
                self.expire_sessions()
            elif action == "convert":
                return Response(200, self.org.convert_lead(data["leadId"],
                                                           create_opportunity=data.get("opportunity", True)))
            elif action == "merge":
                self.org.merge(data["sobject"], data["master"], data["losers"])
            else:
                return Response(404, {"error": f"unknown admin action {action}"})
            return Response(200, {"ok": True})
        except OrgError as err:
            return Response(400, err.rest_body())
        except (KeyError, TypeError, ValueError) as exc:
            return Response(400, {"error": f"bad admin request: {exc}"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emulator: Emulator

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:  # a chunk size that is not hex: the stream cannot be resynchronised
            self.close_connection = True
            self.send_error(400, "malformed chunked request body")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            resp = self.emulator.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug in the emulator must not kill the connection silently
            resp = Response(500, [{"message": f"emulator error: {type(exc).__name__}: {exc}",
                                   "errorCode": "UNKNOWN_EXCEPTION"}])
        if resp.status == DROP:  # an injected lost connection: no answer at all
            self.close_connection = True
            return
        if resp.body is None:
            payload = b""
        elif isinstance(resp.body, bytes):
            payload = resp.body
        elif isinstance(resp.body, str):
            payload = resp.body.encode()
        else:
            payload = dumps(resp.body)
        self.send_response(resp.status)
        if payload or resp.status not in (204, 304):
            self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and resp.status not in (204, 304):
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        """The request body: Content-Length, or `Transfer-Encoding: chunked` (what jsforce/node-fetch send for
        login requests; `http.server` does not decode it by itself)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailer headers, then the blank line that ends the message
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
