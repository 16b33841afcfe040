"""SMTP transport against aiosmtpd with TLS and AUTH: STARTTLS + login, implicit TLS (smtps), wrong
password, a relay that requires STARTTLS, and URL parsing."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nurture_tui.errors import ValidationError
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.mail.smtp import SmtpPool, parse_smtp_url

MSG = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: tls\r\n\r\nhello over tls\r\n"


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)  # clock-ok: certificate validity, not domain time
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    d: Path = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


def test_starttls_and_auth(server_tls: ssl.SSLContext) -> None:
    with SmtpSink(tls=server_tls, users={"mailer": "s3cret/+"}) as sink:
        good = SmtpPool(parse_smtp_url(f"smtp://mailer:s3cret%2F%2B@127.0.0.1:{sink.port}"
                                       "?starttls=require&verify=false"), 2)
        try:
            assert good.send("a@x.test", "b@y.test", MSG).status == "sent"
            assert good.send("a@x.test", "c@y.test", MSG).status == "sent"
            assert good.opened == 1  # the pooled connection was reused
        finally:
            good.close()
        assert sink.wait_for(2) and sink.messages[0].message().get_content().strip() == "hello over tls"
        wrong = SmtpPool(parse_smtp_url(f"smtp://mailer:nope@127.0.0.1:{sink.port}?verify=false"), 1)
        out = wrong.send("a@x.test", "b@y.test", MSG)
        assert out.status == "temp" and "authentication failed" in out.detail
        plain = SmtpPool(parse_smtp_url(f"smtp://127.0.0.1:{sink.port}?starttls=off"), 1)
        out = plain.send("a@x.test", "b@y.test", MSG)
        assert out.status != "sent" and out.code == 530  # the relay insists on STARTTLS first
        unverified = SmtpPool(parse_smtp_url(f"smtp://mailer:s3cret%2F%2B@127.0.0.1:{sink.port}"), 1)
        out = unverified.send("a@x.test", "b@y.test", MSG)  # self-signed certificate: verification fails
        assert out.status == "temp" and "CERTIFICATE_VERIFY_FAILED" in out.detail
        assert sink.count == 2


# aiosmtpd cannot tell that an implicit-TLS connection is encrypted, hence its warning about AUTH
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(server_tls: ssl.SSLContext) -> None:
    with SmtpSink(tls=server_tls, implicit_tls=True, users={"u": "p"}) as sink:
        assert sink.url.startswith("smtps://")
        pool = SmtpPool(parse_smtp_url(f"smtps://u:p@127.0.0.1:{sink.port}?verify=false"), 1)
        try:
            assert pool.send("a@x.test", "b@y.test", MSG).status == "sent"
        finally:
            pool.close()
        assert sink.wait_for(1)


@pytest.mark.parametrize(("url", "error"), [
    ("http://x", "unsupported scheme"), ("smtp://", "no host"), ("smtp://h?starttls=maybe", "starttls must be"),
    ("smtp://h:notaport", "mail.smtp_url"), ("smtp://h?timeout=soon", "mail.smtp_url"),
])
def test_bad_urls(url: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        parse_smtp_url(url)


def test_url_defaults() -> None:
    t = parse_smtp_url("smtps://user%40x:p%3Aw@relay.example.com")
    assert (t.scheme, t.host, t.port, t.username, t.password, t.starttls) == \
        ("smtps", "relay.example.com", 465, "user@x", "p:w", "off")
    assert parse_smtp_url("smtp://relay").port == 25 and parse_smtp_url("smtp://relay").starttls == "auto"
