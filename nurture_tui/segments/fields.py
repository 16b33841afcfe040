"""What a rule may filter on: lead columns, account columns (`account.<name>`), custom JSON keys
(`custom.<key>`) and the derived fields (score, grade, stage, persona, owner, tags), with the operators
each kind of field accepts.

For the builder, `catalogue(conn)` lists every subject a condition can be about (fields, the custom keys
seen in the data, behaviour kinds, memberships) with its operators and known choices, and
`value_choices(conn, field)` the most frequent values of a field in the data. Both read bounded samples
(the most recent leads by id, a primary-key range), so they stay fast on millions of leads.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from ..errors import ValidationError
from ..store.models.activity import ACTIVITY_KINDS
from ..store.models.compliance import CONSENT_STATUSES
from ..store.models.people import GRADES, PERSONAS, STAGES
from ..store.tables import (
    account,
    campaign,
    campaign_member,
    consent,
    lead,
    lead_tag,
    segment,
    sequence,
    template,
    user,
)

# Field kinds. `stage` and `grade` are ordered enumerations; `score` is a number on the live scale.
STRING, NUMBER, BOOL, DATE = "string", "number", "bool", "date"
STAGE, GRADE, PERSONA, OWNER, TAGS, SCORE, CUSTOM = "stage", "grade", "persona", "owner", "tags", "score", "custom"

NO_VALUE_OPS = frozenset({"is_empty", "not_empty", "today", "this_week", "this_month"})
LIST_OPS = frozenset({"in", "not_in"})
DURATION_OPS = frozenset({"within_last", "older_than"})
#: Operators that are the negation of a positive one: they also match leads where the value is missing.
NEGATIONS = {"ne": "eq", "not_in": "in", "not_contains": "contains", "is_empty": "not_empty"}

_EQUALITY = ("eq", "ne", "in", "not_in", "is_empty", "not_empty")
_ORDER = ("lt", "le", "gt", "ge", "between")
_TEXT = ("contains", "not_contains", "starts_with", "ends_with", "regex")
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    STRING: _EQUALITY + _TEXT,
    NUMBER: _EQUALITY + _ORDER,
    SCORE: ("eq", "ne", *_ORDER),
    BOOL: ("eq", "ne"),
    DATE: (*_ORDER, "before", "after", "within_last", "older_than", "today", "this_week", "this_month",
           "is_empty", "not_empty"),
    STAGE: _EQUALITY + _ORDER,
    GRADE: _EQUALITY + _ORDER,
    PERSONA: _EQUALITY,
    OWNER: _EQUALITY,
    TAGS: ("contains", "not_contains", "in", "not_in", "is_empty", "not_empty"),
    CUSTOM: _EQUALITY + _ORDER + _TEXT,
}
ALL_OPS = frozenset(op for ops in OPS_BY_KIND.values() for op in ops)

ENUM_VALUES: dict[str, tuple[str, ...]] = {STAGE: STAGES, GRADE: GRADES, PERSONA: PERSONAS}

#: `active` covers the enrollment statuses active and waiting; the others are ENROLLMENT_STATUSES.
SEQUENCE_STATUSES = ("any", "active", "done", "exited", "goal")
MQL_STATUSES = ("any", "new", "accepted", "rejected", "recycled", "snoozed")
#: The keys a behaviour condition takes besides `activity` (filters, window, count, last performed).
BEHAVIOUR_KEYS = ("template", "sequence", "url", "within", "since", "until", "at_least", "at_most", "exactly",
                  "never", "last_performed")


@dataclass(frozen=True)
class FieldSpec:
    name: str  # as written in rules
    kind: str
    table: str  # "lead", "account", or "" for derived fields compiled specially
    column: str  # column name (for custom: the JSON key)


def _specs() -> dict[str, FieldSpec]:
    lead_cols = {
        STRING: ("email", "first_name", "last_name", "title", "company", "phone", "industry", "country",
                 "state", "city", "timezone", "lead_source", "status", "sf_id", "sf_type"),
        NUMBER: ("employees",),
        BOOL: ("opted_out", "bounced"),
        DATE: ("mql_at", "last_activity_at", "created_at", "updated_at"),
    }
    account_cols = {
        STRING: ("name", "domain", "industry", "country", "timezone"),
        NUMBER: ("employees", "score"),
        BOOL: ("named_account",),
        DATE: ("created_at", "mqa_at"),
    }
    specs: dict[str, FieldSpec] = {}
    for kind, cols in lead_cols.items():
        for col in cols:
            specs[col] = FieldSpec(col, kind, "lead", col)
    for kind, cols in account_cols.items():
        for col in cols:
            specs[f"account.{col}"] = FieldSpec(f"account.{col}", kind, "account", col)
    specs["score"] = FieldSpec("score", SCORE, "lead", "score")
    specs["grade"] = FieldSpec("grade", GRADE, "lead", "grade_rank")
    specs["stage"] = FieldSpec("stage", STAGE, "lead", "stage")
    specs["persona"] = FieldSpec("persona", PERSONA, "lead", "persona")
    specs["owner"] = FieldSpec("owner", OWNER, "lead", "owner_id")
    specs["tags"] = FieldSpec("tags", TAGS, "", "tag")
    return specs


FIELDS: dict[str, FieldSpec] = _specs()
ALIASES = {"tag": "tags", "account": "account.name", "created": "created_at", "updated": "updated_at",
           "last_activity": "last_activity_at", "mql": "mql_at", "source": "lead_source"}
_CUSTOM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def lookup(name: str) -> FieldSpec | None:
    """The field a rule names (case-insensitive), or None when unknown."""
    key = name.strip()
    if key.lower().startswith("custom."):
        custom_key = key[len("custom."):]
        if not _CUSTOM_KEY.match(custom_key):
            return None
        return FieldSpec(f"custom.{custom_key}", CUSTOM, "lead", custom_key)
    key = key.lower()
    key = ALIASES.get(key, key)
    return FIELDS.get(key)


# ------------------------------------------------------------------------------ catalogue for the builder

#: How many of the most recent leads `catalogue` reads for custom keys, and `value_choices` for values.
CUSTOM_SAMPLE = 5_000
VALUE_SAMPLE = 20_000
MAX_CHOICES = 50
_MAX_NAMES = 500  # segment / sequence / campaign names offered for membership

ACTIVITY = "activity"
MEMBERSHIP = "membership"
_DERIVED = ("score", "grade", "stage", "persona", "owner", "tags")
_CUSTOM_OPS = {"number": _EQUALITY + _ORDER, "bool": ("eq", "ne", "in", "not_in", "is_empty", "not_empty"),
               "text": _EQUALITY + _TEXT}


@dataclass(frozen=True)
class FieldChoice:
    """One subject a condition can be about, as the builder's picker offers it.

    `key` is the condition key in a rule and `name` its value: `{field: industry}` → key "field", name
    "industry"; `{activity: open}` → "activity", "open"; `{in_segment: …}` → "in_segment", "in_segment".
    `ops`: the operators a field takes; for behaviour, the keys it takes (`BEHAVIOUR_KEYS`); none for
    membership. `choices`: values known without a scan (stage/grade/persona in order, true/false, owner
    usernames, the names of segments/sequences/campaigns, MQL statuses). `statuses`: the `status:` values
    of sequence and campaign membership. `value_type`: for `custom.<key>`, what the data holds there
    ("number", "text", "bool", or "mixed"); custom operators follow it."""

    name: str
    key: str
    kind: str
    group: str  # lead, account, derived, custom, behaviour, membership
    ops: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    value_type: str | None = None


def catalogue(conn: Connection) -> list[FieldChoice]:
    """Every subject the rule language knows, in picker order: lead fields, account fields, derived
    fields, the custom keys seen in the most recent `CUSTOM_SAMPLE` leads, behaviour kinds, memberships."""
    users = tuple(conn.execute(select(user.c.username).order_by(func.lower(user.c.username)).limit(_MAX_NAMES))
                  .scalars())
    out: list[FieldChoice] = []
    for spec in FIELDS.values():
        if spec.name in _DERIVED:
            continue
        group = "account" if spec.table == "account" else "lead"
        out.append(FieldChoice(spec.name, "field", spec.kind, group, OPS_BY_KIND[spec.kind],
                               ("true", "false") if spec.kind == BOOL else ()))
    for name in _DERIVED:
        spec = FIELDS[name]
        choices = ENUM_VALUES.get(spec.kind, users if spec.kind == OWNER else ())
        out.append(FieldChoice(name, "field", spec.kind, "derived", OPS_BY_KIND[spec.kind], choices))
    for key, value_type in custom_keys(conn).items():
        ops = _CUSTOM_OPS.get(value_type, OPS_BY_KIND[CUSTOM])
        out.append(FieldChoice(f"custom.{key}", "field", CUSTOM, "custom", ops,
                               ("true", "false") if value_type == "bool" else (), value_type=value_type))
    out += [FieldChoice(kind, "activity", ACTIVITY, "behaviour", BEHAVIOUR_KEYS) for kind in ACTIVITY_KINDS]

    def names(table: Any) -> tuple[str, ...]:
        return tuple(conn.execute(select(table.c.name).order_by(func.lower(table.c.name)).limit(_MAX_NAMES))
                     .scalars())

    member_statuses = tuple(sorted({s for s in conn.execute(
        select(campaign_member.c.status).order_by(campaign_member.c.id.desc()).limit(CUSTOM_SAMPLE)).scalars()
        if s}, key=str.lower))
    out += [
        FieldChoice("in_segment", "in_segment", MEMBERSHIP, "membership", choices=names(segment)),
        FieldChoice("in_sequence", "in_sequence", MEMBERSHIP, "membership", choices=names(sequence),
                    statuses=SEQUENCE_STATUSES),
        FieldChoice("in_campaign", "in_campaign", MEMBERSHIP, "membership", choices=names(campaign),
                    statuses=member_statuses),
        FieldChoice("mql_status", "mql_status", MEMBERSHIP, "membership", choices=MQL_STATUSES),
        FieldChoice("consent", "consent", MEMBERSHIP, "membership", choices=_consent_categories(conn),
                    statuses=(*CONSENT_STATUSES, "any")),
    ]
    return out


def _consent_categories(conn: Connection) -> tuple[str, ...]:
    """Categories consent can be about: those with a consent record and those a template sends."""
    found = set(conn.execute(select(consent.c.category).distinct()).scalars())
    found |= set(conn.execute(select(template.c.category).distinct()).scalars())
    return tuple(sorted(found - {"transactional"}, key=str.lower))


def _sample_floor(conn: Connection, size: int) -> int | None:
    """The smallest id among the `size` most recent leads (a primary-key walk), or None for no leads."""
    ids = select(lead.c.id).order_by(lead.c.id.desc()).limit(size).subquery()
    floor = conn.execute(select(func.min(ids.c.id))).scalar()
    return None if floor is None else int(floor)


def _value_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def custom_keys(conn: Connection, *, sample: int = CUSTOM_SAMPLE) -> dict[str, str]:
    """Custom JSON keys seen in the most recent `sample` leads (usable in rules: `custom.<key>`), most
    frequent first, each with the type of value it holds ("number", "text", "bool", or "mixed")."""
    floor = _sample_floor(conn, sample)
    if floor is None:
        return {}
    seen: Counter[str] = Counter()
    types: dict[str, set[str]] = {}
    for data in conn.execute(select(lead.c.custom).where(lead.c.id >= floor)).scalars():
        if not isinstance(data, dict):
            continue
        for key, value in data.items():
            if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
                continue
            seen[key] += 1
            kind = _value_type(value)
            if kind is not None and value != "":
                types.setdefault(key, set()).add(kind)
    out: dict[str, str] = {}
    for key, _n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0].lower())):
        kinds = types.get(key, set())
        out[key] = kinds.pop() if len(kinds) == 1 else "mixed" if kinds else "text"
    return out


def value_choices(conn: Connection, field: str, *, limit: int = MAX_CHOICES) -> list[Any]:
    """The values a field takes, for the builder's value picker: stage, grade and persona in their order
    (all of them); owners as usernames; for text fields (lead, account, tags) and `custom.<key>` the
    `limit` most frequent values among the most recent `VALUE_SAMPLE` leads, spellings that differ only
    in case counted together (text compares case-insensitively). Custom values keep their JSON type.
    Fields without a useful list (numbers, dates, score) give []; an unknown field raises."""
    spec = lookup(field)
    if spec is None:
        raise ValidationError("field", f"unknown field {field!r}")
    if spec.kind in ENUM_VALUES:
        return list(ENUM_VALUES[spec.kind])
    if spec.kind == BOOL:
        return [True, False]
    if spec.kind not in (STRING, OWNER, TAGS, CUSTOM):
        return []
    floor = _sample_floor(conn, VALUE_SAMPLE)
    if floor is None:
        return _fill_owners(conn, [], limit) if spec.kind == OWNER else []
    recent = lead.c.id >= floor
    if spec.kind == CUSTOM:  # grouped by the JSON value in SQL (jsonb on PostgreSQL, JSON text on SQLite)
        item = lead.c.custom[spec.column]
        counts: Counter[Any] = Counter()
        for value, n in conn.execute(select(item, func.count()).where(recent).group_by(item)):
            if _value_type(value) is not None and value != "":
                counts[(type(value) is bool, value)] += int(n)
        ranked_values = sorted(counts.items(), key=lambda kv: (-kv[1], repr(kv[0][1])))
        return [value for (_b, value), _n in ranked_values[:limit]]
    col: ColumnElement[Any]
    if spec.kind == OWNER:
        col, stmt = user.c.username, select(user.c.username, func.count()).select_from(
            lead.join(user, user.c.id == lead.c.owner_id))
    elif spec.kind == TAGS:  # the tags of the sample leads: a primary-key range (the LIMIT keeps it one)
        tags = select(lead_tag.c.tag).where(lead_tag.c.lead_id >= floor).limit(VALUE_SAMPLE * 10).subquery()
        col, stmt = tags.c.tag, select(tags.c.tag, func.count())
    elif spec.table == "account":
        col = account.c[spec.column]
        stmt = select(col, func.count()).select_from(lead.join(account, account.c.id == lead.c.account_id))
    else:
        col = lead.c[spec.column]
        stmt = select(col, func.count())
    if spec.kind != TAGS:
        stmt = stmt.where(recent)
    rows = conn.execute(stmt.where(col.is_not(None), col != "").group_by(col)
                        .order_by(func.count().desc()).limit(limit * 4)).all()
    spellings: dict[str, Counter[str]] = {}  # lower-case → count per spelling
    for value, n in rows:
        text = str(value)
        spellings.setdefault(text.lower(), Counter())[text] += int(n)
    ranked = sorted(spellings.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    # Each value as its most frequent spelling (ties: the first in code-point order, so results are stable).
    values = [min(counts, key=lambda t: (-counts[t], t)) for _low, counts in ranked][:limit]
    return _fill_owners(conn, values, limit) if spec.kind == OWNER else values


def _fill_owners(conn: Connection, owners: list[Any], limit: int) -> list[Any]:
    """Owners of recent leads first, then the other users by name (a rule may name any user)."""
    if len(owners) >= limit:
        return owners
    taken = {o.lower() for o in owners}
    rest = [u for u in conn.execute(select(user.c.username).order_by(func.lower(user.c.username))
                                    .limit(limit + len(owners))).scalars() if u.lower() not in taken]
    return owners + rest[: limit - len(owners)]
