"""The merge-field schema templates are validated against, and batch loading of the render context.

Context roots a template may use:

- `lead.*`      lead fields (below) + `full_name`; `lead.custom.<key>` for custom fields
- `account.*`   the lead's account (all None when the lead has none)
- `owner.*`     the lead's owner: name, first_name, email, signature
- `sequence.*`  `name`, `id` of the sending sequence; `step.id` the send step's node id
- `recent.*`    `last_click_url`, `last_click_at`, `last_page_url`, `last_page_at` (loaded only when used)
- `sender.*`    `name`, `email`, `postal_address` from the mail settings
- `unsubscribe_url`, `preferences_url`

Everything is loaded for a whole batch of leads with a handful of Core queries (no per-row queries).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from ..batching import chunks
from ..store.tables import account, activity, lead, sequence, user

LEAD_FIELDS = (
    "id", "email", "first_name", "last_name", "title", "company", "phone", "industry", "employees",
    "country", "state", "city", "timezone", "lead_source", "status", "persona", "stage", "grade", "custom",
    "account_id", "owner_id",
)
ACCOUNT_FIELDS = ("id", "name", "domain", "industry", "employees", "country", "custom")
OWNER_FIELDS = ("id", "name", "email", "signature")
RECENT_FIELDS = ("last_click_url", "last_click_at", "last_page_url", "last_page_at")

#: root name → allowed attribute names (None = a plain value, no attributes checked).
SCHEMA: dict[str, frozenset[str] | None] = {
    "lead": frozenset((*LEAD_FIELDS, "full_name")),
    "account": frozenset(ACCOUNT_FIELDS),
    "owner": frozenset((*OWNER_FIELDS, "first_name")),
    "sequence": frozenset(("id", "name")),
    "step": frozenset(("id",)),
    "recent": frozenset(RECENT_FIELDS),
    "sender": frozenset(("name", "email", "postal_address")),
    "unsubscribe_url": None,
    "preferences_url": None,
}
#: Attributes whose value is an open dict (any key allowed below them).
OPEN_FIELDS = frozenset({("lead", "custom"), ("account", "custom")})


class OpenDict(dict[str, Any]):
    """Custom fields: sparse by nature, so a key a lead doesn't have reads as None (and `default` applies)
    instead of failing the render."""

    def __missing__(self, key: str) -> None:
        return None


_EMPTY_ACCOUNT: dict[str, Any] = {f: None for f in ACCOUNT_FIELDS} | {"custom": OpenDict()}
_EMPTY_OWNER: dict[str, Any] = {f: None for f in OWNER_FIELDS} | {"first_name": None}
_EMPTY_RECENT: dict[str, Any] = dict.fromkeys(RECENT_FIELDS)
_ALWAYS = ("id", "email", "account_id", "owner_id")  # compose needs these whatever the template reads


def load_leads(conn: Connection, lead_ids: Iterable[int],
               fields: Iterable[str] | None = None) -> dict[int, dict[str, Any]]:
    """Lead contexts by id. `fields` (the `lead.*` fields the batch's templates read; None = all) limits
    what is fetched: the other keys are absent, which a template that doesn't read them never notices."""
    ids = sorted(set(lead_ids))
    wanted = set(LEAD_FIELDS) if fields is None else set(fields) | set(_ALWAYS)
    full_name = "full_name" in wanted
    if full_name:
        wanted |= {"first_name", "last_name"}
    names = [f for f in LEAD_FIELDS if f in wanted]
    custom = "custom" in wanted
    cols = [lead.c[f] for f in names]
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(ids):
        for row in conn.execute(select(*cols).where(lead.c.id.in_(part))):
            data = dict(zip(names, row, strict=True))
            if custom:
                data["custom"] = OpenDict(data["custom"] if isinstance(data["custom"], dict) else {})
            if full_name:
                data["full_name"] = " ".join(n for n in (data["first_name"], data["last_name"]) if n) or None
            out[data["id"]] = data
    return out


def load_accounts(conn: Connection, account_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    ids = sorted({a for a in account_ids if a is not None})
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(ids):
        for row in conn.execute(select(*[account.c[f] for f in ACCOUNT_FIELDS]).where(account.c.id.in_(part))):
            data = dict(row._mapping)
            data["custom"] = OpenDict(data["custom"] if isinstance(data["custom"], dict) else {})
            out[data["id"]] = data
    return out


def load_owners(conn: Connection, owner_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    ids = sorted({o for o in owner_ids if o is not None})
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(ids):
        for row in conn.execute(select(*[user.c[f] for f in OWNER_FIELDS]).where(user.c.id.in_(part))):
            data = dict(row._mapping)
            data["first_name"] = (data["name"] or "").split(" ")[0] or None
            out[data["id"]] = data
    return out


def load_sequences(conn: Connection, sequence_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    ids = sorted({s for s in sequence_ids if s is not None})
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(ids):
        for row in conn.execute(select(sequence.c.id, sequence.c.name).where(sequence.c.id.in_(part))):
            out[row.id] = {"id": row.id, "name": row.name}
    return out


def load_recent(conn: Connection, lead_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The latest non-bot click and page view per lead (one windowed query per kind and chunk)."""
    ids = sorted(set(lead_ids))
    out: dict[int, dict[str, Any]] = {i: dict(_EMPTY_RECENT) for i in ids}
    for kind, prefix in (("click", "last_click"), ("page_view", "last_page")):
        for part in chunks(ids):
            ranked = (
                select(
                    activity.c.lead_id, activity.c.url, activity.c.at,
                    func.row_number().over(partition_by=activity.c.lead_id, order_by=activity.c.at.desc()).label("rn"),
                )
                .where(activity.c.lead_id.in_(part), activity.c.kind == kind, activity.c.bot.is_(False))
                .subquery()
            )
            for row in conn.execute(select(ranked.c.lead_id, ranked.c.url, ranked.c.at).where(ranked.c.rn == 1)):
                out[row.lead_id][f"{prefix}_url"] = row.url
                out[row.lead_id][f"{prefix}_at"] = row.at
    return out


def empty_account() -> dict[str, Any]:
    return _EMPTY_ACCOUNT


def empty_owner() -> dict[str, Any]:
    return _EMPTY_OWNER


def sample_context() -> dict[str, Any]:
    """A context with every schema field present (placeholder values), for validating and previewing."""
    ctx: dict[str, Any] = {}
    for root, fields in SCHEMA.items():
        if fields is None:
            ctx[root] = f"https://example.invalid/{root}"
        else:
            ctx[root] = {f: (OpenDict() if (root, f) in OPEN_FIELDS else f"{root}.{f}") for f in fields}
    return ctx
