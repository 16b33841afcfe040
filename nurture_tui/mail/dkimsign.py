"""DKIM signing of outgoing mail (RFC 6376 with RSA-SHA256, RFC 8463 with Ed25519-SHA256) through `dkimpy`.

Configured by `[mail.dkim]` (`selector`, `domain` — default the From domain — and `key_file`). The key
file is read once, when the dispatcher (or a test send) starts: an RSA key in PEM (PKCS#1 or PKCS#8), or an
Ed25519 key in PEM (PKCS#8, `openssl genpkey -algorithm ed25519`) or as dkimpy's base64 seed
(`dknewkey --ktype ed25519`). A key that cannot be read is a one-line error at start, not a failure per
message.

Every header nurture writes is signed, including `List-Unsubscribe` and `List-Unsubscribe-Post`: Gmail and
Yahoo honour one-click unsubscribe only when the DKIM signature covers both. Canonicalisation is
relaxed/relaxed, which survives the header refolding and whitespace changes relays make.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ..config import MailSettings
from ..errors import NurtureError

#: Headers signed when present (h=). From is listed twice, which "oversigns" it: a From header added
#: later by someone else breaks the signature instead of riding on it.
SIGNED_HEADERS = (b"from", b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version",
                  b"content-type", b"list-unsubscribe", b"list-unsubscribe-post", b"list-id", b"feedback-id")


@dataclass(frozen=True)
class DkimKey:
    algorithm: str  # "rsa" or "ed25519"
    private: bytes  # what dkim.sign takes: PKCS#1 PEM (RSA) or the base64 seed (Ed25519)
    public: bytes  # the p= value of the DNS record (base64)

    def dns_record(self) -> str:
        """The TXT record to publish at `<selector>._domainkey.<domain>`."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public.decode()}"


def load_key(path: Path) -> DkimKey:
    """Read an RSA or Ed25519 private key; NurtureError naming the file when it is not one."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise NurtureError(f"mail.dkim.key_file {path}: cannot read it ({exc.strerror or exc})") from None
    text = raw.strip()
    if not text.startswith(b"-----BEGIN"):
        try:
            seed = base64.b64decode(text, validate=True)
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise NurtureError(f"mail.dkim.key_file {path}: not a PEM key or a base64 Ed25519 seed")
        return _ed25519(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError) as exc:
        raise NurtureError(f"mail.dkim.key_file {path}: not a usable private key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _ed25519(key)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise NurtureError(f"mail.dkim.key_file {path}: RSA key of {key.key_size} bits; use 2048")
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return DkimKey("rsa", pem, base64.b64encode(der))
    raise NurtureError(f"mail.dkim.key_file {path}: {type(key).__name__} keys are not used for DKIM; "
                       "use RSA or Ed25519")


def _ed25519(key: ed25519.Ed25519PrivateKey) -> DkimKey:
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return DkimKey("ed25519", base64.b64encode(seed), base64.b64encode(pub))


class DkimSigner:
    """Signs message bytes for one selector and domain (thread-safe: no state after construction)."""

    def __init__(self, selector: str, domain: str, key: DkimKey) -> None:
        self.selector, self.domain, self.key = selector, domain, key
        self._algorithm = b"ed25519-sha256" if key.algorithm == "ed25519" else b"rsa-sha256"

    def sign(self, message: bytes) -> bytes:
        """`message` with its DKIM-Signature header in front."""
        present = {line.split(b":", 1)[0].strip().lower() for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                   if line and line[:1] not in (b" ", b"\t")}
        headers = [h for h in SIGNED_HEADERS if h in present]
        sig = dkim.sign(message, self.selector.encode(), self.domain.encode(), self.key.private,
                        canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=self._algorithm,
                        include_headers=headers, linesep=b"\r\n")
        return sig + message


def signer_for(mail: MailSettings) -> DkimSigner | None:
    """The configured signer, or None when DKIM is not configured (selector or key file missing)."""
    cfg = mail.dkim
    if not cfg.selector and not cfg.key_file:
        return None
    if not cfg.selector or not cfg.key_file:
        missing = "selector" if not cfg.selector else "key_file"
        raise NurtureError(f"mail.dkim: {missing} is not set (DKIM needs selector and key_file)")
    domain = (cfg.domain or mail.from_email.rsplit("@", 1)[-1]).strip().lower()
    return DkimSigner(cfg.selector.strip(), domain, load_key(cfg.key_file))
