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

`to_quick(rule)` goes the other way for the builder: the quick text of a rule when every condition of its
top-level `all` has a quick form, else None; `parse_quick(to_quick(rule))` gives the rule back.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..errors import ValidationError
from . import fields as F
from .rules import (
    MQL_STATUSES,
    ActivityCondition,
    CampaignCondition,
    ConsentCondition,
    FieldCondition,
    Group,
    MqlCondition,
    Node,
    Rule,
    SegmentCondition,
    SequenceCondition,
    parse_rule,
)

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


# ------------------------------------------------------------------------------------- rule → quick text

_KIND_VERBS = {kind: verb for verb, kind in VERBS.items()}
_FIELD_SYMBOLS = {"eq": "=", "ne": "!=", "in": "=", "not_in": "!=", "contains": "~", "lt": "<", "le": "<=",
                  "gt": ">", "ge": ">="}
_COUNT_SYMBOLS = {"at_least": ">=", "at_most": "<=", "exactly": "="}
_NEEDS_QUOTES = re.compile(r"[\s'\"\\]")


def to_quick(rule: Rule | Node | dict[str, Any] | list[Any]) -> str | None:
    """The quick-filter text for `rule`, or None when some condition has no quick form (only a top-level
    `all` of quick terms does: no nested any/all, no templates/URLs/sequences on behaviour, no `between`…).
    Every term is checked by parsing it back, so `parse_quick(to_quick(rule))` is `rule` (up to `in [x]`
    reading back as `= x`, and a lone condition as `all` of it)."""
    root = rule.root if isinstance(rule, Rule) else rule if isinstance(rule, _NODE_TYPES) else parse_rule(rule).root
    items = root.items if isinstance(root, Group) and root.op == "all" else (root,)
    terms: list[str] = []
    for node in items:
        term = _quick_term(node)
        if term is None:
            return None
        terms.append(term)
    return " ".join(terms)


_NODE_TYPES = (Group, FieldCondition, ActivityCondition, SegmentCondition, SequenceCondition, CampaignCondition,
               MqlCondition, ConsentCondition)


def normalise(node: Rule | Node) -> Node:
    """The form the quick syntax reads back: a lone condition as `all` of it, `in [x]` as `= x` (same
    meaning); used to compare a rule with `parse_quick(to_quick(rule))`."""
    root = node.root if isinstance(node, Rule) else node
    if not isinstance(root, Group) or root.op != "all":
        root = Group(op="all", items=(root,))
    return _normal(root)


def _normal(node: Node) -> Node:
    if isinstance(node, Group):
        return Group(op=node.op, items=tuple(_normal(item) for item in node.items))
    if isinstance(node, FieldCondition) and node.op in ("in", "not_in") and len(node.value) == 1:
        return FieldCondition(field=node.field, op="eq" if node.op == "in" else "ne", value=node.value[0])
    return node


def _quick_term(node: Node) -> str | None:
    for text in _candidates(node):
        try:
            back = parse_quick(text).root
        except ValidationError:
            continue
        if isinstance(back, Group) and len(back.items) == 1 and _normal(back.items[0]) == _normal(node):
            return text
    return None


def _q(value: str) -> str:
    if value and not _NEEDS_QUOTES.search(value):
        return value
    return f'"{value}"' if '"' not in value and "\\" not in value else shlex.quote(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _candidates(node: Node) -> list[str]:
    if isinstance(node, FieldCondition):
        return _field_candidates(node)
    if isinstance(node, ActivityCondition):
        text = _activity_text(node)
        return [text] if text else []
    if isinstance(node, SegmentCondition):
        return [f"seg:{_q(node.segment)}"]
    if isinstance(node, SequenceCondition):
        return [f"seq:{_q(node.sequence)}"] if node.status == "any" else []
    if isinstance(node, CampaignCondition):
        return [f"campaign:{_q(node.campaign)}"] if node.status is None else []
    if isinstance(node, MqlCondition):
        return [f"mql:{node.status}"]
    if isinstance(node, ConsentCondition):
        return []  # no quick-syntax term: written as a rule
    if node.op == "none" and len(node.items) == 1:
        return [f"-{text}" for text in _candidates(node.items[0])]
    if node.op == "any" and len(node.items) == len(_FREE_TEXT_FIELDS):
        items = node.items
        if all(isinstance(c, FieldCondition) and c.op == "contains" for c in items):
            values = {c.value for c in items if isinstance(c, FieldCondition)}
            if len(values) == 1:
                return [_q(_text(values.pop()))]
    return []


def _field_candidates(node: FieldCondition) -> list[str]:
    f, op, v = node.field, node.op, node.value
    if op == "is_empty":
        return [f"{f}="]
    if op == "not_empty":
        return [f"{f}!="]
    if op in ("today", "this_week", "this_month"):
        return [f"{f}={op}"]
    if op == "within_last":
        return [f"{f}<{v}"]
    if op == "older_than":
        return [f"{f}>{v}"]
    if op not in _FIELD_SYMBOLS:
        return []
    value = ",".join(_text(x) for x in v) if op in ("in", "not_in") else _text(v)
    texts = [f"{f}{_FIELD_SYMBOLS[op]}{_q(value)}"]
    if f == "tags" and op == "contains":
        texts.insert(0, f"#{_q(value)}")
    return texts


def _activity_text(node: ActivityCondition) -> str | None:
    if len(node.kinds) != 1 or node.kinds[0] not in _KIND_VERBS:
        return None
    if node.template is not None or node.sequence is not None or node.url is not None or node.since is not None \
            or node.until is not None:
        return None
    verb = _KIND_VERBS[node.kinds[0]]
    if node.last_op is not None:
        return f"{verb}>{node.last_value}" if node.last_op == "before" and node.last_value else None
    count = "" if (node.count_op, node.count) == ("at_least", 1) else f"{_COUNT_SYMBOLS[node.count_op]}{node.count}"
    window = f"<{node.within}" if node.within is not None else ""
    return f"{verb}{count}{window}"
