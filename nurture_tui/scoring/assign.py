"""Who gets an MQL: the lead's owner, its account's owner, a territory, a round-robin group, or a queue.

`settings.scoring.assign_order` lists the strategies tried in turn; the first that yields an active user
(or, for `queue`, a queue name) wins:
- `owner`: the lead's current owner;
- `account_owner`: the owner of the lead's account (ABM: the named-account owner keeps its people);
- `territory`: the first rep group (by id) whose `rules` match the lead (`country`, `industry`: lists,
  case-insensitive; every key given must match), then round-robin inside that group;
- `group`: round-robin inside `settings.scoring.assign_group`;
- `queue`: no rep; the entry waits in `settings.scoring.assign_queue` for someone to take it.
Round-robin advances `rep_group.rr_cursor` with one `UPDATE … RETURNING`, so concurrent assigners (several
workers on PostgreSQL) never hand two leads the same turn, and inactive members are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from ..config import ScoringSettings
from ..errors import ValidationError
from ..store.tables import account, lead, rep_group, user

STRATEGIES = ("owner", "account_owner", "territory", "group", "queue")
TERRITORY_KEYS = ("country", "industry")


@dataclass(frozen=True)
class Assignment:
    rep_id: int | None
    queue: str | None
    how: str  # e.g. "owner", "territory:emea", "group:inside-sales", "queue"


def _active_user(conn: Connection, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    ok = conn.execute(select(user.c.id).where(user.c.id == user_id, user.c.active == True)).first()  # noqa: E712
    return int(user_id) if ok else None


def round_robin(conn: Connection, group_id: int) -> int | None:
    """Next active member of the group (advancing its cursor); None if it has no active member."""
    members = conn.execute(select(rep_group.c.member_ids).where(rep_group.c.id == group_id)).scalar_one()
    ids = [int(m) for m in members or []]
    if not ids:
        return None
    active = {int(r[0]) for r in conn.execute(select(user.c.id).where(user.c.id.in_(ids), user.c.active == True))}  # noqa: E712
    ordered = [m for m in ids if m in active]
    if not ordered:
        return None
    cursor = conn.execute(update(rep_group).where(rep_group.c.id == group_id)
                          .values(rr_cursor=rep_group.c.rr_cursor + 1).returning(rep_group.c.rr_cursor)).scalar_one()
    return ordered[(int(cursor) - 1) % len(ordered)]


def territory_matches(rules: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    if not rules:
        return False
    for key in TERRITORY_KEYS:
        wanted = rules.get(key)
        if not wanted:
            continue
        values = {str(v).strip().lower() for v in (wanted if isinstance(wanted, list) else [wanted])}
        if str(fields.get(key) or "").strip().lower() not in values:
            return False
    return any(rules.get(k) for k in TERRITORY_KEYS)


def validate_territory(rules: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(rules, Mapping):
        raise ValidationError(where, "territory rules must be a mapping of country/industry lists")
    out: dict[str, list[str]] = {}
    for key, value in rules.items():
        if key not in TERRITORY_KEYS:
            raise ValidationError(f"{where}.{key}", f"unknown territory key (use {', '.join(TERRITORY_KEYS)})")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise ValidationError(f"{where}.{key}", "must be a non-empty list of names")
        out[key] = [v.strip() for v in values]
    return out


def assign(conn: Connection, lead_id: int, settings: ScoringSettings) -> Assignment:
    row = conn.execute(select(lead.c.owner_id, lead.c.account_id, lead.c.country, lead.c.industry)
                       .where(lead.c.id == lead_id)).one()
    for strategy in settings.assign_order:
        if strategy == "owner":
            rep = _active_user(conn, row.owner_id)
            if rep is not None:
                return Assignment(rep, None, "owner")
        elif strategy == "account_owner" and row.account_id is not None:
            owner = conn.execute(select(account.c.owner_id).where(account.c.id == row.account_id)).scalar()
            rep = _active_user(conn, owner)
            if rep is not None:
                return Assignment(rep, None, "account_owner")
        elif strategy == "territory":
            fields = {"country": row.country, "industry": row.industry}
            for g in conn.execute(select(rep_group.c.id, rep_group.c.name, rep_group.c.rules).order_by(rep_group.c.id)):
                if territory_matches(g.rules or {}, fields):
                    rep = round_robin(conn, int(g.id))
                    if rep is not None:
                        return Assignment(rep, None, f"territory:{g.name}")
        elif strategy == "group" and settings.assign_group:
            gid = conn.execute(select(rep_group.c.id).where(rep_group.c.name == settings.assign_group)).scalar()
            if gid is None:
                raise ValidationError("scoring.assign_group", f"no rep group named {settings.assign_group!r}")
            rep = round_robin(conn, int(gid))
            if rep is not None:
                return Assignment(rep, None, f"group:{settings.assign_group}")
        elif strategy == "queue":
            return Assignment(None, settings.assign_queue, "queue")
        elif strategy not in STRATEGIES:
            raise ValidationError("scoring.assign_order", f"unknown strategy {strategy!r} "
                                                          f"(use {', '.join(STRATEGIES)})")
    return Assignment(None, settings.assign_queue, "queue")
