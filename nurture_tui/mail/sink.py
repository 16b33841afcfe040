"""A local SMTP server (aiosmtpd) that keeps what it receives: the demo's transport and the tests' relay.

Nothing leaves the machine. Messages are kept in memory (bounded) and, with `maildir=`, written to a
Maildir as well (`open_maildir`: a missing or empty directory is made a Maildir, anything else that is not
one is refused at start; a write that fails later answers 451, a temporary failure, never a 5xx bounce).
Tests (and the demo) can make it answer RCPT with a chosen SMTP code for an address, e.g.
`sink.fail("bob@x.test", 451, times=1)` (then it accepts) or `sink.fail("gone@x.test", 550)`.
"""

from __future__ import annotations

import mailbox
import os
import ssl
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ..errors import ValidationError

_MAILDIR_SUBDIRS = ("cur", "new", "tmp")


def open_maildir(path: Path | str) -> mailbox.Maildir:
    """`path` as a Maildir, made one if it is missing or an empty directory; ValidationError (one line) if
    it is something else (a file, a directory holding other things) or cannot be written.

    (`mailbox.Maildir(create=True)` only creates a directory that does not exist: given an existing empty
    one it succeeds and then every `add` fails with FileNotFoundError.)"""
    root = Path(path)
    where = str(root)
    try:
        if root.exists() and not root.is_dir():
            raise ValidationError(where, "not a directory (give a Maildir or an empty or new directory)")
        root.mkdir(parents=True, exist_ok=True)
        entries = {p.name: p for p in root.iterdir()}
        strangers = sorted(n for n, p in entries.items() if n not in _MAILDIR_SUBDIRS or not p.is_dir())
        if strangers:
            shown = ", ".join(strangers[:3]) + (" …" if len(strangers) > 3 else "")
            raise ValidationError(where, f"exists and is not a Maildir (it holds {shown}); "
                                         "give a Maildir or an empty or new directory")
        for sub in _MAILDIR_SUBDIRS:
            (root / sub).mkdir(mode=0o700, exist_ok=True)
        probe = root / "tmp" / f".nurture-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValidationError(where, f"cannot use as a Maildir: {exc.strerror or exc}") from None
    return mailbox.Maildir(os.fspath(root), create=False)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any = None

    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class _Fault:
    code: int
    text: str
    remaining: int | None  # None = forever


@dataclass
class _Handler:
    keep: int
    maildir: mailbox.Maildir | None
    messages: deque[Received] = field(default_factory=deque)
    faults: dict[str, _Fault] = field(default_factory=dict)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)
        self.messages = deque(maxlen=self.keep)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        with self.lock:
            fault = self.faults.get(address.lower())
            if fault is not None:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self.faults[address.lower()]
                return f"{fault.code} {fault.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(data), session.peer)
        if self.maildir is not None:
            try:
                self.maildir.add(item.data)
            except OSError as exc:  # disk full, directory removed under us: retry later, not a hard bounce
                return f"451 4.3.0 Maildir write failed: {type(exc).__name__}"
        with self.arrived:
            self.messages.append(item)
            self.count += 1
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's controller, able to listen on port 0 (a free port chosen by the OS)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Authenticator:
    """AUTH PLAIN/LOGIN against a fixed user → password map."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = login in self.users and self.users[login] == auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False)


class SmtpSink:
    """`with SmtpSink() as sink: ... sink.url` — an SMTP server on 127.0.0.1 (free port by default).

    `tls=` (a server SSLContext) offers and requires STARTTLS, or with `implicit_tls=True` speaks TLS
    from the first byte (smtps); `users=` requires AUTH with one of those logins."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, maildir: Path | str | None = None,
                 keep: int = 100_000, tls: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 users: dict[str, str] | None = None) -> None:
        md = open_maildir(maildir) if maildir else None
        self._handler = _Handler(keep=keep, maildir=md)
        kwargs: dict[str, Any] = {}
        if tls is not None and not implicit_tls:
            kwargs.update(tls_context=tls, require_starttls=True)
        if users:
            # with implicit TLS the whole connection is encrypted (aiosmtpd only tracks STARTTLS itself)
            kwargs.update(authenticator=_Authenticator(users), auth_required=True,
                          auth_require_tls=tls is not None and not implicit_tls)
        self._controller = _Controller(self._handler, hostname=host, port=port, ready_timeout=10.0,
                                       ssl_context=tls if implicit_tls else None, **kwargs)
        self.host = host
        self.scheme = "smtps" if implicit_tls else "smtp"

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        """Messages accepted since start (including ones dropped from the bounded memory list)."""
        return self._handler.count

    @property
    def messages(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.messages)

    def clear(self) -> None:
        with self._handler.lock:
            self._handler.messages.clear()

    def fail(self, address: str, code: int, text: str | None = None, *, times: int | None = None) -> None:
        """Answer RCPT TO:<address> with `code` (`times` times, or until `heal`)."""
        default = "4.3.0 Try again later" if code < 500 else "5.1.1 No such user"
        with self._handler.lock:
            self._handler.faults[address.lower()] = _Fault(code, text or default, times)

    def heal(self, address: str) -> None:
        with self._handler.lock:
            self._handler.faults.pop(address.lower(), None)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least `count` messages have arrived since start."""
        with self._handler.arrived:
            return self._handler.arrived.wait_for(lambda: self._handler.count >= count, timeout)
