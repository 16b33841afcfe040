"""The quick filter syntax of the TUI `/` prompt, compiled to an ordinary Rule (all terms ANDed).

    industry=Software score>=50 stage:decision opened<14d "acme corp"

| term                          | means                                                     |
|-------------------------------|-----------------------------------------------------------|
| `field=v`, `field:v`          | equals (case-insensitive); `field=a,b` is "in"            |
| `field!=v`                    | not equal / not in                                         |
| `field>v` `>=` `<` `<=`       | comparisons (score, employees, grade, stage, dates)        |
| `field~text`                  | contains                                                   |
| `field=` / `field!=`          | is empty / is not empty                                    |
| `created<30d` / `created>90d` | date within the last 30 days / older than 90 days          |
| `opened` `clicked>=2<14d`     | behaviour: verb, optional count `>=N` `=N` `<=N`, window `<14d`|
| `opened>30d`                  | performed, but last time more than 30 days ago             |
| `#vip`, `tag:vip`             | has tag                                                    |
| `seg:Name` `seq:Name` `campaign:Name` `mql:new` | membership                              |
| `-term` or `!term`            | negation of any term                                       |
| anything else (`acme`)        | name, email or company contains it                          |
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..errors import ValidationError
from . import fields as F
from .rules import MQL_STATUSES, Group, Rule, parse_rule

VERBS = {"opened": "open", "clicked": "click", "replied": "reply", "submitted": "form", "visited": "page_view",
         "unsubscribed": "unsubscribe", "bounced": "bounce", "sent": "sent", "met": "meeting",
         "responded": "campaign_response"}
_BEHAVIOUR = re.compile(
    r"^(?P<verb>[a-z]+)(?:(?P<cop>>=|<=|=)(?P<n>\d+)(?![\d.]*[wdhms]))?(?:(?P<wop>[<>])(?P<dur>\d+(?:\.\d+)?[wdhm]))?$"
)
_TERM = re.compile(r"^(?P<field>[A-Za-z_][\w.-]*?)(?P<op>>=|<=|!=|=|:|>|<|~)(?P<value>.*)$", re.DOTALL)
_DURATION = re.compile(r"^\d+(?:\.\d+)?[wdhm]$")
_FREE_TEXT_FIELDS = ("first_name", "last_name", "email", "company")
_MEMBERSHIP = {"seg": "in_segment", "segment": "in_segment", "seq": "in_sequence", "sequence": "in_sequence",
               "campaign": "in_campaign"}


def parse_quick(text: str) -> Rule:
    """Parse the `/` filter into a Rule; raises ValidationError naming the offending term."""
    try:
        tokens = shlex.split(text or "")
    except ValueError as exc:
        raise ValidationError("filter", f"{exc} (close the quote)") from None
    items = []
    for i, token in enumerate(tokens, start=1):
        try:
            data = _term(token)
            node = parse_rule(data, "term").root
        except ValidationError as exc:
            raise ValidationError(f"filter term {i} {token!r}", exc.message) from None
        items.append(node)
    return Rule(root=Group(op="all", items=tuple(items)))


def _term(token: str) -> dict[str, Any]:
    if len(token) > 1 and token[0] in "-!" and not token[1:2].isdigit():
        return {"none": [_term(token[1:])]}
    if token.startswith("#") and len(token) > 1:
        return {"field": "tags", "op": "contains", "value": token[1:]}
    behaviour = _BEHAVIOUR.match(token)
    if behaviour and behaviour.group("verb") in VERBS:
        return _behaviour(behaviour)
    term = _TERM.match(token)
    if term is None:
        return {"any": [{"field": f, "op": "contains", "value": token} for f in _FREE_TEXT_FIELDS]}
    name, op, value = term.group("field").lower(), term.group("op"), term.group("value")
    if op in (":", "=") and name in _MEMBERSHIP:
        return {_MEMBERSHIP[name]: value}
    if op in (":", "=") and name == "mql" and value.lower() in MQL_STATUSES:
        return {"mql_status": value}
    spec = F.lookup(name)
    if spec is None:
        raise ValidationError("", f"unknown field {name!r}")
    return _field_term(spec, op, value)


def _behaviour(m: re.Match[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"activity": VERBS[m.group("verb")]}
    cop, n, wop, dur = m.group("cop"), m.group("n"), m.group("wop"), m.group("dur")
    if wop == ">":
        if cop:
            raise ValidationError("", "a count cannot be combined with `>duration` (last performed before)")
        data["last_performed"] = {"before": dur}
        return data
    if cop:
        data[{">=": "at_least", "<=": "at_most", "=": "exactly"}[cop]] = int(n)
    if wop == "<":
        data["within"] = dur
    return data


def _field_term(spec: F.FieldSpec, op: str, value: str) -> dict[str, Any]:
    field = spec.name
    if spec.kind == F.TAGS and op in (":", "="):
        op = "~"
    if value == "" and op in (":", "=", "!="):
        return {"field": field, "op": "is_empty" if op != "!=" else "not_empty"}
    if spec.kind == F.DATE:
        return _date_term(field, op, value)
    values = [_typed(spec, v) for v in value.split(",")] if "," in value else None
    if op in (":", "="):
        return {"field": field, "op": "in", "value": values} if values else \
            {"field": field, "op": "eq", "value": _typed(spec, value)}
    if op == "!=":
        return {"field": field, "op": "not_in", "value": values} if values else \
            {"field": field, "op": "ne", "value": _typed(spec, value)}
    if op == "~":
        return {"field": field, "op": "contains", "value": value}
    return {"field": field, "op": {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}[op], "value": _typed(spec, value)}


def _date_term(field: str, op: str, value: str) -> dict[str, Any]:
    word = value.lower()
    periods = {"today": "today", "this_week": "this_week", "thisweek": "this_week", "this_month": "this_month",
               "thismonth": "this_month"}
    if op in (":", "=") and word in periods:
        return {"field": field, "op": periods[word]}
    if _DURATION.match(word) and op in ("<", "<=", ">", ">="):
        return {"field": field, "op": "within_last" if op.startswith("<") else "older_than", "value": word}
    ops = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
    if op not in ops:
        raise ValidationError("", f"use <, <=, >, >= with dates (or =today, =this_week, =this_month), got {op!r}")
    return {"field": field, "op": ops[op], "value": value}


def _typed(spec: F.FieldSpec, text: str) -> Any:
    """Quick-filter values are text; custom fields take numbers and booleans as such."""
    if spec.kind != F.CUSTOM:
        return text
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
