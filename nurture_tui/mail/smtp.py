"""SMTP transport: a relay given as a URL, and a small pool of reusable connections.

URL forms (credentials are URL-encoded):

    smtp://host[:25]                      plain; STARTTLS used when the server offers it (starttls=auto)
    smtp://user:pass@host:587?starttls=require
    smtps://user:pass@host[:465]          implicit TLS
    ...?verify=false&timeout=30           skip certificate checks (test relays), socket timeout seconds

`SmtpPool.send()` classifies the outcome: `sent`, `temp` (4xx, connection trouble: retry later),
`bounce` (5xx for the recipient or the message: hard bounce) or `fail` (5xx for our sender address:
a configuration problem, the lead is not suppressed).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import ValidationError

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: str = "auto"  # auto / require / off
    verify: bool = True
    timeout: float = 30.0

    def describe(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_smtp_url(url: str, where: str = "mail.smtp_url") -> SmtpTarget:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValidationError(where, f"unsupported scheme {parts.scheme!r} in {url!r} (use smtp:// or smtps://)")
    if not parts.hostname:
        raise ValidationError(where, f"no host in {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    starttls = query.get("starttls", "off" if scheme == "smtps" else "auto").lower()
    if starttls not in ("auto", "require", "off"):
        raise ValidationError(where, f"starttls must be auto, require or off (got {starttls!r})")
    verify = query.get("verify", "true").lower() not in ("0", "false", "no", "off")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
        timeout = float(query.get("timeout", "30"))
    except ValueError as exc:
        raise ValidationError(where, f"{exc}") from None
    return SmtpTarget(scheme, parts.hostname, port, unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None, starttls, verify, timeout)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent / temp / bounce / fail
    code: int | None = None
    detail: str = ""


def _text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


class SmtpPool:
    """At most `size` connections, reused across sends; threads block while all are busy."""

    def __init__(self, target: SmtpTarget, size: int = 4) -> None:
        self.target = target
        self.size = max(1, size)
        self._idle: list[smtplib.SMTP] = []
        self._slots = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self.opened = 0  # connections opened over the pool's life (observability, tests)

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.target.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        conn: smtplib.SMTP
        if t.scheme == "smtps":
            conn = smtplib.SMTP_SSL(t.host, t.port, timeout=t.timeout, context=self._tls_context())
        else:
            conn = smtplib.SMTP(t.host, t.port, timeout=t.timeout)
        try:
            conn.ehlo()
            if t.scheme == "smtp" and (t.starttls == "require" or (t.starttls == "auto" and conn.has_extn("starttls"))):
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if t.username:
                conn.login(t.username, t.password or "")
        except BaseException:
            _close(conn)
            raise
        with self._lock:
            self.opened += 1
        return conn

    @contextmanager
    def connection(self) -> Iterator[smtplib.SMTP]:
        """A connection for the caller's exclusive use; broken ones are discarded, not returned."""
        self._slots.acquire()
        conn: smtplib.SMTP | None = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            yield conn
        except BaseException:
            if conn is not None:
                _close(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                with self._lock:
                    self._idle.append(conn)
            self._slots.release()

    def send(self, sender: str, recipient: str, data: bytes) -> SendOutcome:
        """Deliver one message; a stale pooled connection is replaced once before giving up."""
        for attempt in (1, 2):
            try:
                with self.connection() as conn:
                    conn.sendmail(sender, [recipient], data)
                return SendOutcome("sent", 250)
            except smtplib.SMTPRecipientsRefused as exc:
                code, resp = exc.recipients.get(recipient, (550, b"recipient refused"))
                return SendOutcome("bounce" if code >= 500 else "temp", code, _text(resp))
            except smtplib.SMTPSenderRefused as exc:
                return SendOutcome("fail" if exc.smtp_code >= 500 else "temp", exc.smtp_code, _text(exc.smtp_error))
            except smtplib.SMTPAuthenticationError as exc:
                return SendOutcome("temp", exc.smtp_code, f"authentication failed: {_text(exc.smtp_error)}")
            except smtplib.SMTPResponseException as exc:  # DATA refused, or a 421 at connect
                status = "bounce" if exc.smtp_code >= 500 else "temp"
                return SendOutcome(status, exc.smtp_code, _text(exc.smtp_error))
            except smtplib.SMTPServerDisconnected as exc:
                if attempt == 2:
                    return SendOutcome("temp", None, f"disconnected: {exc}")
            except (TimeoutError, OSError, smtplib.SMTPException) as exc:
                return SendOutcome("temp", None, f"{type(exc).__name__}: {exc}")
        return SendOutcome("temp", None, "unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except Exception:
        with suppress(Exception):
            conn.close()
