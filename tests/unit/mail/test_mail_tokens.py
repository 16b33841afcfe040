"""Tracking tokens: signed, expiring, tamper-evident."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nurture_tui.errors import ValidationError
from nurture_tui.mail.tokens import TokenSigner


def test_roundtrip_and_tampering(clock) -> None:
    now = clock.now()
    s = TokenSigner("k1")
    tok = s.sign("click", 42, "abc", now + timedelta(days=1), "https://x.test/a|b?c=1")
    data = s.verify(tok, now, kind="click")
    assert (data.lead_id, data.message_ref, data.url) == (42, "abc", "https://x.test/a|b?c=1")
    payload, sig = tok.split(".")
    forged = TokenSigner("k1").sign("click", 42, "abc", now + timedelta(days=1), "https://evil.test")
    for bad in (payload + "." + forged.split(".")[1], forged.split(".")[0] + "." + sig, tok[:-2], "x", "a.b.c",
                payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + sig):
        with pytest.raises(ValidationError, match="token"):
            s.verify(bad, now)
    with pytest.raises(ValidationError, match="bad signature"):
        TokenSigner("other").verify(tok, now)
    with pytest.raises(ValidationError, match=r"wrong kind \(expected open\)"):
        s.verify(tok, now, kind="open")


def test_expiry(clock) -> None:
    now = clock.now()
    s = TokenSigner("k")
    tok = s.sign("open", 1, "r", now + timedelta(seconds=10))
    s.verify(tok, now + timedelta(seconds=9))
    with pytest.raises(ValidationError, match="expired"):
        s.verify(tok, now + timedelta(seconds=10))
