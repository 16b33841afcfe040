"""One condition of a segment rule as the builder's form edits it: a subject (a field, a behaviour, or a
membership), an operator valid for that subject, and the value as typed. `build` turns the three into rule
data (checked by the rule language itself, so a bad value is refused with the same one-line message as the
CLI); `split` turns rule data back into the three for editing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..segments import fields as F
from ..segments.rules import MQL_STATUSES, SEQUENCE_STATUSES, parse_rule
from ..store.models.activity import ACTIVITY_KINDS

#: Longest value a form accepts: a paste of 10,000 characters is refused in one line, not parsed.
MAX_VALUE = 2000
_COUNT = re.compile(r"^\s*(\d+)\s*(?:(?:within|in|<)\s*(\S+))?\s*$")
_WINDOW = re.compile(r"^\s*(?:within|in|<)?\s*(\S+)\s*$")

ACTIVITY_OPS = ("within", "any_time", "at_least", "at_most", "exactly", "never", "last_before", "last_after")
MEMBERSHIP = {"in_segment": "in segment", "in_sequence": "in sequence", "in_campaign": "in campaign",
              "mql_status": "MQL status", "consent": "consent"}
OP_HELP = {
    "eq": "=", "ne": "≠", "in": "is one of", "not_in": "is none of", "is_empty": "is empty",
    "not_empty": "is not empty", "lt": "<", "le": "≤", "gt": ">", "ge": "≥", "between": "between",
    "contains": "contains", "not_contains": "does not contain", "starts_with": "starts with",
    "ends_with": "ends with", "regex": "matches regex", "before": "before", "after": "after",
    "within_last": "within the last", "older_than": "older than", "today": "today", "this_week": "this week",
    "this_month": "this month", "within": "within (a window, e.g. 14d)", "any_time": "ever",
    "at_least": "at least N times [within 14d]", "at_most": "at most N times [within 14d]",
    "exactly": "exactly N times [within 14d]", "never": "never [within 14d]",
    "last_before": "last time before (date or 30d)", "last_after": "last time after (date or 30d)",
    "is": "is",
    "pending": "waiting for double opt-in", "withdrawn": "withdrawn", "any": "any record",
}


@dataclass(frozen=True)
class Subject:
    """Something a condition can be about, as the field picker lists it."""

    key: str  # "industry", "custom.plan", "activity:open", "in_segment" …
    label: str
    kind: str  # a field kind, "activity" or "membership"
    ops: tuple[str, ...]
    choices: tuple[str, ...] = ()  # values to pick from (enums, names), when known
    hint: str = ""  # what the value looks like


def field_subject(name: str, choices: tuple[str, ...] = ()) -> Subject:
    spec = F.lookup(name)
    if spec is None:
        raise ValidationError("field", f"unknown field {name!r}")
    enum = F.ENUM_VALUES.get(spec.kind, ())
    hints = {F.NUMBER: "a number", F.SCORE: "a number", F.BOOL: "true or false", F.DATE: "a date or 30d",
             F.TAGS: "a tag", F.OWNER: "a user name", F.CUSTOM: "text or a number", F.GRADE: "a grade",
             F.STAGE: "a stage", F.PERSONA: "a persona"}
    return Subject(spec.name, spec.name, spec.kind, F.OPS_BY_KIND[spec.kind], choices or enum,
                   hints.get(spec.kind, "text"))


#: The subjects nurture rules are most often about, listed first (in this order): the picker shows them first
#: with no search, and a search's ties go to them (`s` finds stage, `m` the MQL status, `t` tags).
COMMON_FIRST = ("stage", "score", "grade", "status", "mql_status", "tags", "opted_out", "bounced",
                "last_activity_at", "persona", "owner", "industry", "country")


def subjects(custom_keys: tuple[str, ...] = (), data_choices: dict[str, tuple[str, ...]] | None = None,
             names: dict[str, tuple[str, ...]] | None = None) -> list[Subject]:
    """Everything the picker offers: every field of the rule language (custom keys seen in the data),
    every behaviour kind, and the memberships (with the names that exist); the common ones first
    (`COMMON_FIRST`)."""
    data_choices = data_choices or {}
    names = names or {}
    out = [field_subject(name, data_choices.get(name, ())) for name in F.FIELDS]
    out += [field_subject(f"custom.{key}", data_choices.get(f"custom.{key}", ())) for key in custom_keys]
    out += [Subject(f"activity:{kind}", f"activity: {kind}", "activity", ACTIVITY_OPS,
                    hint="14d, or N [within 14d]; template:…, url:…, also:click") for kind in ACTIVITY_KINDS]
    out += [
        Subject("in_segment", "in segment", "membership", ("is",), names.get("segments", ()), "a segment name"),
        Subject("in_sequence", "in sequence", "membership", ("is", *SEQUENCE_STATUSES[1:]),
                names.get("sequences", ()), "a sequence name"),
        Subject("in_campaign", "in campaign", "membership", ("is",), names.get("campaigns", ()),
                "a campaign name"),
        Subject("mql_status", "MQL status", "membership", ("is",), MQL_STATUSES, "an MQL status"),
        # `is` = granted (docs/compliance.md)
        Subject("consent", "consent", "membership", ("is", "pending", "withdrawn", "any"), names.get("consents", ()),
                "a subscription category"),
    ]
    rank = {key: i for i, key in enumerate(COMMON_FIRST)}
    return sorted(out, key=lambda subject: rank.get(subject.key, len(rank)))  # stable: the rest keep their order


def _values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build(subject: Subject, op: str, text: str) -> dict[str, Any]:
    """Rule data for one condition; a ValidationError names what is wrong with the value."""
    if len(text) > MAX_VALUE:
        raise ValidationError("value", f"{len(text):,} characters is too long (at most {MAX_VALUE:,})")
    if op not in subject.ops:
        raise ValidationError("operator", f"{op} does not apply to {subject.label}")
    text = text.strip()
    data: dict[str, Any]
    if subject.kind == "activity":
        data = _activity(subject.key.split(":", 1)[1], op, text)
    elif subject.kind == "membership":
        if not text:
            raise ValidationError("value", f"name the {subject.label.split()[-1]}")
        if subject.key in ("in_sequence", "consent") and op != "is":
            data = {subject.key: text, "status": op}
        else:
            data = {subject.key: text}
    elif op in F.NO_VALUE_OPS:
        data = {"field": subject.key, "op": op}
    elif op in F.LIST_OPS or op == "between":
        data = {"field": subject.key, "op": op, "value": _values(text)}
    else:
        if not text:
            raise ValidationError("value", f"type {subject.hint or 'a value'}")
        data = {"field": subject.key, "op": op, "value": text}
    # The rule language's own checks (types, enums, regexes, durations), and its canonical shape.
    return parse_rule(data, "condition").to_data()


#: Filters a behaviour value may carry after the count or window: `template:welcome-1`, `url:*pricing*`,
#: `sequence:Welcome`, and more kinds with `also:click,reply` (opened OR clicked).
_FILTER = re.compile(r"(?:^|\s)(template|url|sequence|also):(\S+)")


def _activity(kind: str, op: str, text: str) -> dict[str, Any]:
    data: dict[str, Any] = {"activity": kind}
    for key, value in _FILTER.findall(text):
        if key == "also":
            data["activity"] = [kind, *(k for k in value.split(",") if k and k != kind)]
        else:
            data[key] = value
    text = _FILTER.sub(" ", text).strip()
    if op == "any_time":
        return data
    if op == "within":
        m = _WINDOW.match(text)
        if not m:
            raise ValidationError("value", "type a window such as 14d")
        data["within"] = m.group(1)
        return data
    if op in ("last_before", "last_after"):
        if not text:
            raise ValidationError("value", "type a date (2026-01-31) or a time ago (30d)")
        data["last_performed"] = {op.split("_")[1]: text}
        return data
    if op == "never":
        data["never"] = True
        window = _WINDOW.match(text) if text else None
        if text:
            data["within"] = window.group(1) if window else text
        return data
    m = _COUNT.match(text)
    if not m:
        raise ValidationError("value", "type a count, optionally with a window: 3 within 14d")
    data[op] = int(m.group(1))
    if m.group(2):
        data["within"] = m.group(2)
    return data


def split(data: dict[str, Any]) -> tuple[str, str, str]:
    """(subject key, operator, value text) of a condition's rule data, for the form to edit."""
    if "field" in data:
        value = data.get("value")
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
        spec = F.lookup(str(data["field"]))
        return (spec.name if spec else str(data["field"])), str(data.get("op", "eq")), text
    if "activity" in data:
        kinds = data["activity"] if isinstance(data["activity"], list) else [data["activity"]]
        kind = kinds[0]
        filters = "".join(f" {key}:{data[key]}" for key in ("template", "url", "sequence") if data.get(key))
        if len(kinds) > 1:
            filters += " also:" + ",".join(kinds[1:])
        key, op, text = _activity_split(kind, data)
        return key, op, (text + filters).strip()
    for key in MEMBERSHIP:
        if key in data:
            if key == "consent":
                status = str(data.get("status", "granted"))
                return key, "is" if status == "granted" else status, str(data[key])
            op = str(data.get("status", "is")) if key == "in_sequence" else "is"
            return key, "is" if op == "any" else op, str(data[key])
    raise ValidationError("condition", f"cannot edit {data!r} in the form")


def _activity_split(kind: str, data: dict[str, Any]) -> tuple[str, str, str]:
    """The operator and value text of a behaviour condition (its filters are added by `split`)."""
    window = f" within {data['within']}" if data.get("within") else ""
    for op in ("at_least", "at_most", "exactly"):
        if op in data:
            return f"activity:{kind}", op, f"{data[op]}{window}"
    if data.get("never"):
        return f"activity:{kind}", "never", window.strip()
    if "last_performed" in data:
        (which, value), = data["last_performed"].items()
        return f"activity:{kind}", f"last_{which}", str(value)
    if data.get("within"):
        return f"activity:{kind}", "within", str(data["within"])
    return f"activity:{kind}", "any_time", ""
