"""The salted hashes of erased addresses: what stays of a person after `nurture leads erase`, so that a
re-import or a Salesforce pull does not bring them back.

A hash is HMAC-SHA256 of the trimmed, lower-cased address with a random salt kept in the workspace's `meta`
table (not the mail secret: rotating that must not forget who was erased). It lives in `suppression`
(reason `erased`), the table every send already checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ..store.inlist import in_values
from ..store.tables import meta, suppression

ERASED = "erased"
_SALT_KEY = "erasure_salt"


def _salt(conn: Connection, *, create: bool) -> bytes | None:
    value = conn.execute(select(meta.c.value).where(meta.c.key == _SALT_KEY)).scalar()
    if value is None and create:
        try:
            with conn.begin_nested():  # two first erasures at once: one salt wins, both use it
                conn.execute(insert(meta).values(key=_SALT_KEY, value=secrets.token_hex(32)))
        except IntegrityError:
            pass
        value = conn.execute(select(meta.c.value).where(meta.c.key == _SALT_KEY)).scalar()
    return None if value is None else str(value).encode()


def _digest(salt: bytes, email: str) -> str:
    return hmac.new(salt, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def email_hash(conn: Connection, email: str) -> str:
    """The stored form of an erased address (creates the workspace salt on first use)."""
    salt = _salt(conn, create=True)
    assert salt is not None
    return _digest(salt, email)


def erased_emails(conn: Connection, emails: Iterable[str]) -> set[str]:
    """Which of these addresses were erased (one query, the hashes in one bound parameter; none before the first
    erasure)."""
    salt = _salt(conn, create=False)
    if salt is None:  # nobody erased yet (checked first: a pulled page asks about 25,000 addresses)
        return set()
    wanted = {e.strip().lower() for e in emails if e}
    if not wanted:
        return set()
    by_hash = {_digest(salt, e): e for e in wanted}
    return {by_hash[h] for h in conn.execute(select(suppression.c.email).where(
        suppression.c.reason == ERASED, in_values(conn, suppression.c.email, list(by_hash)))).scalars()}


def erased_lead_ids(conn: Connection, lead_ids: Iterable[int]) -> set[int]:
    """Which of these (local) leads are erased ones."""
    ids = sorted(set(lead_ids))
    if not ids:
        return set()
    return set(conn.execute(select(suppression.c.lead_id).where(
        suppression.c.reason == ERASED, in_values(conn, suppression.c.lead_id, ids))).scalars())


def unblock(conn: Connection, email: str) -> bool:
    """Forget that an address was erased (the person came back of their own accord): imports, pulls and
    signups accept it again. The erased lead stays erased. Returns False if the address was not blocked."""
    salt = _salt(conn, create=False)
    if salt is None:
        return False
    return bool(conn.execute(delete(suppression).where(suppression.c.reason == ERASED,
                                                       suppression.c.email == _digest(salt, email))).rowcount)
