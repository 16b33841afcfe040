"""Start-up check that the From domain's SPF, DKIM and DMARC records make the mail we send plausibly
authenticated and aligned (what Gmail's and Yahoo's bulk-sender rules require), with clear warnings.

The check reads TXT records through a resolver: `mail.dns_records` when configured (tests, air-gapped
set-ups, or to try a record before publishing it), otherwise live DNS (dnspython). The dispatcher runs it
once when it starts, in a background thread, and only logs: a DNS problem never stops mail. With the
default local sink (`smtp_url` on 127.0.0.1) nothing leaves the machine, so nothing is looked up.
`nurture mail check-dns` runs it by hand and prints every finding.

It cannot know the relay's sending IPs, so SPF is checked for presence and shape, not for the relay's
address; "aligned" uses the registrable domain approximated by the last two labels (a DMARC
organisational domain under a public suffix such as co.uk is not recognised).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import MailSettings
from .dkimsign import DkimSigner

log = logging.getLogger("nurture.mail.dns")

#: name → TXT strings ([] when there are none). Raises LookupError when the lookup itself failed.
Resolver = Callable[[str], list[str]]
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warning"
    check: str  # "spf", "dkim", "dmarc"
    text: str


def config_resolver(records: dict[str, list[str]]) -> Resolver:
    table = {k.strip().lower().rstrip("."): list(v) for k, v in records.items()}
    return lambda name: table.get(name.lower().rstrip("."), [])


def dns_resolver(timeout: float = 3.0) -> Resolver:
    import dns.exception
    import dns.resolver

    def resolve(name: str) -> list[str]:
        try:
            answer = dns.resolver.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise LookupError(f"{name}: {type(exc).__name__}") from None
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    return resolve


def org_domain(domain: str) -> str:
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def _tags(record: str) -> dict[str, str]:
    out = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            out[key.strip().lower()] = value.strip()
    return out


def check_alignment(mail: MailSettings, signer: DkimSigner | None, resolve: Resolver) -> list[Finding]:
    domain = mail.from_email.rsplit("@", 1)[-1].strip().lower()
    findings: list[Finding] = []

    def lookup(name: str) -> list[str] | None:
        try:
            return resolve(name)
        except LookupError as exc:
            findings.append(Finding("warning", "dns", f"cannot look up {name}: {exc}"))
            return None

    # SPF is checked for the envelope sender: mail.from_email, or the VERP bounce address's domain
    envelope = (mail.bounce_address or mail.from_email).rsplit("@", 1)[-1].strip().lower()
    if org_domain(envelope) != org_domain(domain):
        findings.append(Finding("warning", "spf", f"the envelope sender's domain {envelope} (mail.bounce_address) "
                                f"does not align with From domain {domain}: SPF cannot pass DMARC"))
    spf = lookup(envelope)
    if spf is not None:
        records = [r for r in spf if r.lower().startswith("v=spf1")]
        if not records:
            findings.append(Finding("warning", "spf", f"no SPF record at {envelope}: publish one that includes "
                                    "your relay"))
        elif len(records) > 1:
            findings.append(Finding("warning", "spf", f"{len(records)} SPF records at {envelope}: receivers treat "
                                    "that as an error (permerror); merge them into one"))
        elif records[0].split()[-1] in ("+all", "all"):
            findings.append(Finding("warning", "spf", f"SPF at {envelope} ends in +all: anyone may send as you"))
        else:
            findings.append(Finding("ok", "spf", f"SPF at {envelope}: {records[0]}"))

    strict_dkim = False
    dmarc = lookup(f"_dmarc.{domain}")
    if dmarc is not None and not any(r.lower().startswith("v=dmarc1") for r in dmarc) \
            and org_domain(domain) != domain:
        dmarc = lookup(f"_dmarc.{org_domain(domain)}")
    if dmarc is not None:
        records = [r for r in dmarc if r.lower().startswith("v=dmarc1")]
        if not records:
            findings.append(Finding("warning", "dmarc", f"no DMARC record at _dmarc.{domain}: Gmail and Yahoo "
                                    "require one from bulk senders (start with v=DMARC1; p=none; rua=mailto:…)"))
        else:
            tags = _tags(records[0])
            strict_dkim = tags.get("adkim", "r") == "s"
            policy = tags.get("p", "")
            note = " (monitoring only; move to quarantine or reject once reports are clean)" if policy == "none" else ""
            findings.append(Finding("ok", "dmarc", f"DMARC policy p={policy or '?'}{note}"))

    if signer is None:
        findings.append(Finding("warning", "dkim", "DKIM signing is off: set mail.dkim.selector and key_file "
                                "(bulk senders to Gmail and Yahoo must sign)"))
    else:
        aligned = signer.domain == domain if strict_dkim else org_domain(signer.domain) == org_domain(domain)
        if not aligned:
            findings.append(Finding("warning", "dkim", f"DKIM d={signer.domain} does not align with From "
                                    f"domain {domain}{' (DMARC adkim=s)' if strict_dkim else ''}: DMARC fails"))
        name = f"{signer.selector}._domainkey.{signer.domain}"
        published = lookup(name)
        if published is not None:
            keys = [_tags(r) for r in published if "p=" in r]
            if not keys:
                findings.append(Finding("warning", "dkim", f"no DKIM key published at {name}: publish "
                                        f"\"{signer.key.dns_record()}\""))
            elif not any(k.get("p", "").replace(" ", "") == signer.key.public.decode() for k in keys):
                findings.append(Finding("warning", "dkim", f"the key at {name} is not the public half of "
                                        "mail.dkim.key_file: signatures will fail to verify"))
            else:
                findings.append(Finding("ok", "dkim", f"DKIM key at {name} matches ({signer.key.algorithm})"))
    return findings


def local_relay(mail: MailSettings) -> bool:
    return (urlsplit(mail.smtp_url).hostname or "") in _LOCAL_HOSTS


def resolver_for(mail: MailSettings) -> Resolver:
    return config_resolver(mail.dns_records) if mail.dns_records else dns_resolver()


def warn_in_background(mail: MailSettings, signer: DkimSigner | None) -> threading.Thread | None:
    """Run the check off the caller's thread and log each warning (not for a relay on this host unless
    `dns_records` is configured)."""
    if not mail.dns_records and local_relay(mail):
        return None

    def run() -> None:
        for f in check_alignment(mail, signer, resolver_for(mail)):
            if f.level == "warning":
                log.warning("deliverability: %s: %s", f.check, f.text)

    thread = threading.Thread(target=run, name="dns-check", daemon=True)
    thread.start()
    return thread
