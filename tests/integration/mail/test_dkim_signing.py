"""DKIM: the dispatcher signs what it sends (RSA and Ed25519) and the message received by a real SMTP server
verifies with dkimpy against the public key; the start-up alignment check reads records from config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from mail_support import add_people, save_template
from sqlalchemy import insert

from nurture_tui.errors import NurtureError
from nurture_tui.mail.compose import SendRequest, compose_outbox_rows
from nurture_tui.mail.dispatch import close_dispatcher, dispatch_due
from nurture_tui.mail.dkimsign import load_key, signer_for
from nurture_tui.mail.dnscheck import check_alignment, config_resolver
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import outbox


def _write_key(tmp_path: Path, kind: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
        else ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / f"{kind}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_dispatched_mail_is_signed_and_verifies(workspace, clock, tmp_path, kind) -> None:
    key_file = _write_key(tmp_path, kind)
    mail = workspace.settings.mail
    mail.dkim.selector, mail.dkim.key_file = "nw2026", key_file
    ids = add_people(workspace, clock.now())
    save_template(workspace, clock.now())
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(outbox), compose_outbox_rows(
            conn, [SendRequest(ids["bob"], "welcome", idempotency_key="bob:1")], workspace.settings, clock.now()))
    with SmtpSink() as sink:
        mail.smtp_url, mail.rate_per_second = sink.url, 1000
        try:
            assert dispatch_due(workspace).sent == 1 and sink.wait_for(1)
        finally:
            close_dispatcher(workspace)
        raw = sink.messages[0].data
    record = load_key(key_file).dns_record().encode()
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record

    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"nw2026._domainkey.example.com."]
    signed = raw.split(b"h=", 1)[1].split(b";", 1)[0].replace(b"\r\n", b"").replace(b" ", b"")
    assert b"list-unsubscribe:list-unsubscribe-post" in signed and b"list-id" in signed
    assert (b"a=ed25519-sha256" if kind == "ed25519" else b"a=rsa-sha256") in raw
    tampered = raw.replace(b"Hello Bob", b"Hello Rob")
    assert tampered != raw and not dkim.verify(tampered, dnsfunc=dns)


def test_dknewkey_style_ed25519_seed_and_bad_keys(tmp_path) -> None:
    seed = tmp_path / "seed.key"
    key = ed25519.Ed25519PrivateKey.generate()
    import base64
    seed.write_bytes(base64.b64encode(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                        serialization.NoEncryption())) + b"\n")
    assert load_key(seed).algorithm == "ed25519"
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(NurtureError, match=r"junk\.pem: not a PEM key"):
        load_key(tmp_path / "junk.pem")
    with pytest.raises(NurtureError, match="cannot read"):
        load_key(tmp_path / "missing.pem")
    if subprocess.run(["which", "openssl"], capture_output=True).returncode == 0:
        ec = tmp_path / "ec.pem"
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ec)],
                       check=True, capture_output=True)
        with pytest.raises(NurtureError, match="use RSA or Ed25519"):
            load_key(ec)


def test_alignment_check_warns_clearly(settings, tmp_path) -> None:
    mail = settings.mail
    mail.from_email = "marketing@news.example.com"
    findings = check_alignment(mail, None, config_resolver({}))
    text = "\n".join(f"{f.level} {f.check} {f.text}" for f in findings)
    assert "warning spf no SPF record at news.example.com" in text
    assert "warning dmarc no DMARC record" in text and "warning dkim DKIM signing is off" in text

    mail.dkim.selector, mail.dkim.key_file = "s1", _write_key(tmp_path, "ed25519")
    signer = signer_for(mail)
    good = signer.key.dns_record()
    records = {"news.example.com": ["v=spf1 include:_spf.relay.example -all"],
               "_dmarc.example.com": ["v=DMARC1; p=quarantine; adkim=r"],
               "s1._domainkey.news.example.com": [good]}
    findings = check_alignment(mail, signer, config_resolver(records))
    assert [f.level for f in findings] == ["ok", "ok", "ok"], findings
    # a key that is not ours, strict DKIM alignment with another d=, and two SPF records
    mail.dkim.domain = "mailer.example.com"
    signer = signer_for(mail)
    records |= {"news.example.com": ["v=spf1 -all", "v=spf1 +all"],
                "_dmarc.news.example.com": ["v=DMARC1; p=reject; adkim=s"],
                "s1._domainkey.mailer.example.com": ["v=DKIM1; k=ed25519; p=AAAA"]}
    text = "\n".join(f.text for f in check_alignment(mail, signer, config_resolver(records)))
    assert "2 SPF records" in text and "does not align with From domain news.example.com (DMARC adkim=s)" in text
    assert "is not the public half of mail.dkim.key_file" in text


def test_dispatcher_start_logs_alignment_warnings_and_cli_prints_them(workspace, tmp_path, caplog, capsys) -> None:
    import logging

    from cli_support import run_cli

    from nurture_tui.mail.dnscheck import warn_in_background

    mail = workspace.settings.mail
    assert warn_in_background(mail, None) is None  # the local sink: nothing looked up
    mail.dns_records = {"example.com": ["v=spf1 include:relay.example ~all"]}
    with caplog.at_level(logging.WARNING, logger="nurture.mail.dns"):
        thread = warn_in_background(mail, None)
        assert thread is not None
        thread.join(5)
    assert "deliverability: dmarc: no DMARC record at _dmarc.example.com" in caplog.text
    assert "deliverability: dkim: DKIM signing is off" in caplog.text and "spf" not in caplog.text.split("dmarc")[0]
    db = f"sqlite:///{tmp_path / 'ws.db'}"
    assert run_cli(capsys, "init", "--db", db)[0] == 0
    cfg = tmp_path / "nurture.toml"
    cfg.write_text('[mail.dns_records]\n"example.com" = ["v=spf1 -all"]\n"_dmarc.example.com" = ["v=DMARC1; p=none"]\n')
    code, out, _ = run_cli(capsys, "--config", str(cfg), "mail", "check-dns", "--db", db)
    assert code == 1
    assert "ok       spf    SPF at example.com: v=spf1 -all" in out and "p=none (monitoring only" in out
    assert "warning  dkim   DKIM signing is off" in out
