"""What a rule may filter on: lead columns, account columns (`account.<name>`), custom JSON keys
(`custom.<key>`) and the derived fields (score, grade, stage, persona, owner, tags), with the operators
each kind of field accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..store.models.people import GRADES, PERSONAS, STAGES

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
