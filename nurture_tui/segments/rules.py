"""The segment rule language: a pydantic AST, parsed from YAML/JSON-shaped data with precise error paths,
serialised back to the same shape, and rendered as one line of English.

    all:                                   # groups: all / any / none, nested freely
      - {field: industry, op: in, value: [Software, Fintech]}
      - {field: score, ge: 50}             # shorthand: the operator as the key
      - {activity: open, within: 14d}      # behaviour
      - {in_segment: Customers}            # membership
    → industry in [Software, Fintech] AND score ≥ 50 AND opened any email within 14d

See docs/segments.md for every condition kind. `parse_rule` raises `ValidationError(path, message)` with
the path inside the rule (`rule.all[2].any[0].value: expected a number, got "abc"`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from re import _constants as re_constants  # type: ignore[attr-defined]
from re import _parser as re_parser  # type: ignore[attr-defined]
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from ..errors import ValidationError
from ..sequences.model import format_duration, parse_duration
from ..store.models.activity import ACTIVITY_KINDS
from ..store.models.compliance import CONSENT_STATUSES
from ..yamlfile import parse_yaml, read_text
from . import fields as F
from .fields import MQL_STATUSES as MQL_STATUSES  # re-exported: the vocabularies live in fields
from .fields import SEQUENCE_STATUSES as SEQUENCE_STATUSES

GROUP_OPS = ("all", "any", "none")
CONSENT_RULE_STATUSES = (*CONSENT_STATUSES, "any")
COUNT_OPS = ("at_least", "at_most", "exactly")


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldCondition(_Node):
    """`field op value` on a lead/account/custom field. `value` is normalised for the field's kind:
    numbers as numbers, enumerations canonical, dates as ISO text or a duration meaning "that long ago"."""

    field: str
    op: str
    value: Any = None


class ActivityCondition(_Node):
    """Performed an activity (kinds) matching the filters, a number of times, in a window; or when it
    was last performed. Bot-flagged activities never count."""

    kinds: tuple[str, ...]
    template: str | None = None
    sequence: str | None = None
    url: str | None = None
    within: str | None = None  # duration: at >= now - within
    since: str | None = None  # absolute instant: at >= since
    until: str | None = None  # absolute instant: at < until
    count_op: Literal["at_least", "at_most", "exactly"] = "at_least"
    count: int = 1
    last_op: Literal["before", "after"] | None = None
    last_value: str | None = None  # date or duration ago


class SegmentCondition(_Node):
    segment: str


class SequenceCondition(_Node):
    sequence: str
    status: str = "any"


class CampaignCondition(_Node):
    campaign: str
    status: str | None = None


class MqlCondition(_Node):
    status: str = "any"


class ConsentCondition(_Node):
    """Has a consent record for a subscription category with this status (`any`: any record)."""

    category: str
    status: str = "granted"


class Group(_Node):
    op: Literal["all", "any", "none"]
    items: tuple[Node, ...] = ()


Node = Group | FieldCondition | ActivityCondition | SegmentCondition | SequenceCondition | CampaignCondition | \
    MqlCondition | ConsentCondition
Group.model_rebuild()


class Rule(_Node):
    root: Node

    def to_data(self) -> dict[str, Any]:
        return to_data(self.root)

    def render(self) -> str:
        return render(self)


# --------------------------------------------------------------------------------------------- parsing


def parse_rule(data: Any, where: str = "rule") -> Rule:
    """Build a Rule from YAML/JSON-shaped data (a group, a single condition, or a list = `all`)."""
    if isinstance(data, Rule):
        return data
    if isinstance(data, list):
        data = {"all": data}
    return Rule(root=_parse_node(data, where))


def parse_rule_text(text: str, where: str = "rule") -> Rule:
    """Parse YAML or JSON text (JSON is YAML)."""
    data = parse_yaml(text, where, what="YAML/JSON")
    if data is None:
        raise ValidationError(where, "empty rule")
    return parse_rule(data, "rule" if where == "rule" else f"{where}: rule")


def load_rule_file(path: str | Path) -> Rule:
    return parse_rule_text(read_text(path), str(path))


# ------------------------------------------------------------------------------ per-condition checks


class ConditionError(ValidationError):
    """A problem at one condition of a rule. `where` is the full path with the offending key
    (`rule.all[2].any[0].value`); `at` locates the condition (or group) in the rule data as keys and list
    indexes from the root — `("all", 2, "any", 0)` — so a builder can show the error on that row."""

    def __init__(self, where: str, message: str, at: tuple[str | int, ...]) -> None:
        super().__init__(where, message)
        self.at = at


Location = tuple[str | int, ...]


def check_node(data: Any, where: str = "rule") -> list[ConditionError]:
    """Every problem of rule data, one per offending condition, without stopping at the first (what a
    builder validates on each keystroke; `parse_rule` still raises the first). Conditions are checked
    independently, so a bad one never hides an error in its siblings; a malformed group is one problem
    at the group. Takes what `parse_rule` takes (a list at the root is an `all`, located as such)."""
    if isinstance(data, Rule):
        return []
    problems: list[ConditionError] = []
    for at, path, leaf in condition_items(data, where, problems):
        try:
            _parse_node(leaf, path)
        except ValidationError as exc:
            problems.append(ConditionError(exc.where, exc.message, at))
    return sorted(problems, key=lambda problem: problem.at)  # rule order (a location never mixes types)


def condition_items(data: Any, where: str = "rule",
                    problems: list[ConditionError] | None = None) -> list[tuple[Location, str, Any]]:
    """(location, path, data) of every condition (non-group) in rule data, depth first. Malformed groups
    are skipped and, when `problems` is given, reported there."""
    out: list[tuple[Location, str, Any]] = []
    sink: list[ConditionError] = [] if problems is None else problems

    def visit(node: Any, path: str, at: Location) -> None:
        if isinstance(node, dict) and set(node) & set(GROUP_OPS):
            keys = set(node)
            if len(keys) != 1:
                sink.append(ConditionError(path, f"a group has exactly one key (all/any/none), got {sorted(keys)}",
                                           at))
                return
            op = next(iter(keys))
            items = node[op]
            items = [] if items is None else [items] if isinstance(items, dict) else items
            if not isinstance(items, list):
                sink.append(ConditionError(f"{path}.{op}", f"expected a list of conditions, got {_show(items)}", at))
                return
            for i, item in enumerate(items):
                visit(item, f"{path}.{op}[{i}]", (*at, op, i))
            return
        out.append((at, path, node))

    visit({"all": data} if isinstance(data, list) else data, where, ())
    return out


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(where, message)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return json.dumps(value, default=str, ensure_ascii=False)


def _parse_node(data: Any, where: str) -> Node:
    if not isinstance(data, dict):
        raise _fail(where, f"expected a condition or a group (a mapping), got {_show(data)}")
    if not data:
        raise _fail(where, "empty condition")
    keys = set(data)
    groups = keys & set(GROUP_OPS)
    if groups:
        if len(keys) != 1:
            raise _fail(where, f"a group has exactly one key (all/any/none), got {sorted(keys)}")
        op = groups.pop()
        items = data[op]
        if items is None:
            items = []
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise _fail(f"{where}.{op}", f"expected a list of conditions, got {_show(items)}")
        return Group(op=op, items=tuple(_parse_node(item, f"{where}.{op}[{i}]") for i, item in enumerate(items)))
    if "field" in keys:
        return _parse_field(data, where)
    if "activity" in keys:
        return _parse_activity(data, where)
    if "in_segment" in keys:
        _only(data, {"in_segment"}, where)
        return SegmentCondition(segment=_name(data["in_segment"], f"{where}.in_segment"))
    if "in_sequence" in keys:
        _only(data, {"in_sequence", "status"}, where)
        status = _choice(data.get("status", "any"), SEQUENCE_STATUSES, f"{where}.status")
        return SequenceCondition(sequence=_name(data["in_sequence"], f"{where}.in_sequence"), status=status)
    if "in_campaign" in keys:
        _only(data, {"in_campaign", "status"}, where)
        cstatus = data.get("status")
        if cstatus is not None:
            cstatus = _name(cstatus, f"{where}.status")
        return CampaignCondition(campaign=_name(data["in_campaign"], f"{where}.in_campaign"), status=cstatus)
    if "mql_status" in keys:
        _only(data, {"mql_status"}, where)
        return MqlCondition(status=_choice(data["mql_status"], MQL_STATUSES, f"{where}.mql_status"))
    if "consent" in keys:
        _only(data, {"consent", "status"}, where)
        return ConsentCondition(category=_name(data["consent"], f"{where}.consent"),
                                status=_choice(data.get("status", "granted"), CONSENT_RULE_STATUSES, f"{where}.status"))
    raise _fail(where, f"unknown condition {sorted(map(str, keys))}: expected one of all/any/none, field, "
                       "activity, in_segment, in_sequence, in_campaign, mql_status, consent")


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(map(str, data)) - allowed)
    if extra:
        raise _fail(f"{where}.{extra[0]}", f"unexpected key (allowed here: {', '.join(sorted(allowed))})")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise _fail(where, f"expected a name, got {_show(value)}")
    return str(value).strip()


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in choices:
        raise _fail(where, f"expected one of {', '.join(choices)}, got {_show(value)}")
    return text


# ------------------------------------------------------------------------------------- field conditions


def _parse_field(data: dict[str, Any], where: str) -> FieldCondition:
    name = data["field"]
    if not isinstance(name, str):
        raise _fail(f"{where}.field", f"expected a field name, got {_show(name)}")
    spec = F.lookup(name)
    if spec is None:
        raise _fail(f"{where}.field", f"unknown field {_show(name)} (lead fields, account.<field>, custom.<key>, "
                                      "score, grade, stage, persona, owner, tags)")
    rest = {k: v for k, v in data.items() if k != "field"}
    if "op" in rest:
        op = rest.pop("op")
        value = rest.pop("value", None)
        value_where = f"{where}.value"
        if rest:
            raise _fail(f"{where}.{sorted(map(str, rest))[0]}", "unexpected key (a field condition has field, op, "
                                                                "value)")
    else:
        ops = [k for k in rest if k != "value"]
        if len(ops) != 1:
            raise _fail(where, f"a field condition needs one operator (op: …, or e.g. `ge: 50`), got {sorted(rest)}")
        op = ops[0]
        value = rest[op]
        value_where = f"{where}.{op}"
        if "value" in rest:
            raise _fail(f"{where}.value", "give the value as the operator's value, or use op:/value:")
    if not isinstance(op, str) or op.lower() not in F.ALL_OPS:
        raise _fail(f"{where}.op", f"unknown operator {_show(op)}")
    op = op.lower()
    if op not in F.OPS_BY_KIND[spec.kind]:
        raise _fail(f"{where}.op", f"{op} does not apply to {spec.name} ({spec.kind}); use one of "
                                   f"{', '.join(F.OPS_BY_KIND[spec.kind])}")
    return FieldCondition(field=spec.name, op=op, value=_field_value(spec, op, value, value_where))


def _field_value(spec: F.FieldSpec, op: str, value: Any, where: str) -> Any:
    if op in F.NO_VALUE_OPS:
        if value not in (None, True, ""):
            raise _fail(where, f"{op} takes no value, got {_show(value)}")
        return None
    if op in F.DURATION_OPS:
        return _duration(value, where)
    if op in F.LIST_OPS:
        if not isinstance(value, list):
            value = [value] if value is not None and not isinstance(value, dict) else value
        if not isinstance(value, list):
            raise _fail(where, f"expected a list, got {_show(value)}")
        if not value:
            raise _fail(where, "empty list: `in` needs at least one value")
        items = [_scalar(spec, op, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if spec.kind == F.CUSTOM and len({type(v) for v in items}) > 1:
            raise _fail(where, "mixed value types in one list")
        return items
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(where, f"between needs [low, high], got {_show(value)}")
        low, high = (_scalar(spec, op, v, f"{where}[{i}]") for i, v in enumerate(value))
        if spec.kind == F.CUSTOM and not all(_is_number(v) for v in (low, high)):
            raise _fail(where, "between on a custom field needs numbers")
        if _is_number(low) and _is_number(high) and low > high:
            raise _fail(where, f"low {low} is above high {high}")
        return [low, high]
    scalar = _scalar(spec, op, value, where)
    if op == "regex":
        _check_regex(scalar, where)
    if spec.kind == F.CUSTOM:
        if op in ("lt", "le", "gt", "ge") and not _is_number(scalar):
            raise _fail(where, f"expected a number, got {_show(value)}")
        if op in ("contains", "not_contains", "starts_with", "ends_with", "regex") and not isinstance(scalar, str):
            raise _fail(where, f"expected text, got {_show(value)}")
    return scalar


#: Longest regular expression a rule may hold.
MAX_REGEX = 200


def _check_regex(pattern: str, where: str) -> None:
    """A regex that compiles and cannot backtrack catastrophically: a rule runs it over every lead, so
    `(a+)+$` on a long value would stall a count (and, on SQLite, the writer) for minutes."""
    if len(pattern) > MAX_REGEX:
        raise _fail(where, f"regular expression of {len(pattern)} characters is too long (at most {MAX_REGEX})")
    try:
        parsed = re_parser.parse(pattern)
    except re.error as exc:
        raise _fail(where, f"bad regular expression {_show(pattern)}: {exc}") from None
    if _nested_repeat(parsed):
        raise _fail(where, f"regular expression {_show(pattern)} repeats a repetition (like `(a+)+`), which can "
                           "take exponential time; write it without the nested repeat")


def _nested_repeat(items: Any) -> bool:
    """True when a repeated sub-pattern is itself nothing but a repeat (`(a+)+`, `(.*)*`, `((a+))*`): the
    same text then splits across the two loops in exponentially many ways. A body with anything else in
    it (`(\\.[a-z]+)*`) anchors each turn of the outer loop and is allowed."""
    for op, arg in items:
        if op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT, re_constants.POSSESSIVE_REPEAT):
            _low, high, sub = arg
            body = _flatten(sub)
            unbounded = high is re_constants.MAXREPEAT or high > 1
            if unbounded and len(body) == 1 and body[0][0] in (
                    re_constants.MAX_REPEAT, re_constants.MIN_REPEAT):
                return True
            if _nested_repeat(sub):
                return True
        elif op == re_constants.SUBPATTERN:
            if _nested_repeat(arg[-1]):
                return True
        elif op == re_constants.BRANCH:
            if any(_nested_repeat(branch) for branch in arg[1]):
                return True
        elif op in (re_constants.ASSERT, re_constants.ASSERT_NOT) and _nested_repeat(arg[1]):
            return True
    return False


def _flatten(items: Any) -> list[Any]:
    """A sub-pattern's items with groups opened (`((a+))` is `a+`)."""
    out: list[Any] = []
    for op, arg in items:
        if op == re_constants.SUBPATTERN:
            out += _flatten(arg[-1])
        else:
            out.append((op, arg))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalar(spec: F.FieldSpec, op: str, value: Any, where: str) -> Any:
    kind = spec.kind
    if value is None or isinstance(value, (list, dict)):
        raise _fail(where, f"expected a value, got {_show(value)}")
    if kind in (F.NUMBER, F.SCORE):
        return _number(value, where)
    if kind == F.BOOL:
        return _bool(value, where)
    if kind == F.DATE:
        return _instant_text(value, where)
    if kind in F.ENUM_VALUES:
        allowed = F.ENUM_VALUES[kind]
        text = str(value).strip()
        for candidate in allowed:
            if candidate.lower() == text.lower():
                return candidate
        raise _fail(where, f"expected one of {', '.join(allowed)}, got {_show(value)}")
    if kind == F.CUSTOM:
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        if not isinstance(value, (bool, int, float, str)):
            raise _fail(where, f"unsupported value {_show(value)}")
        return value
    if isinstance(value, bool):
        raise _fail(where, f"expected text, got {_show(value)}")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, bool):
        raise _fail(where, f"expected a number, got {_show(value)}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            if number == number and number not in (float("inf"), float("-inf")):
                return number
    raise _fail(where, f"expected a number, got {_show(value)}")


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise _fail(where, f"expected true or false, got {_show(value)}")


def _duration(value: Any, where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise _fail(where, f"expected a duration like 14d, got {_show(value)}")
    try:
        delta = parse_duration(value)
    except ValueError:
        raise _fail(where, f"expected a duration like 14d, 36h or 2w, got {_show(value)}") from None
    if delta <= timedelta(0):
        raise _fail(where, f"expected a positive duration, got {_show(value)}")
    return value.strip().lower().replace(" ", "") if isinstance(value, str) else format_duration(delta)


def _instant_text(value: Any, where: str) -> str:
    """An absolute date/datetime (kept as ISO text) or a duration meaning "that long ago"."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _RELATIVE.match(text):
            return _duration(text, where)
        try:
            parse_instant(text, datetime(2000, 1, 1, tzinfo=UTC))
            return text
        except ValueError:
            pass
    raise _fail(where, f"expected a date (2026-01-31), a datetime or a duration ago (30d), got {_show(value)}")


_RELATIVE = re.compile(r"^\d[\d.\swdhms]*$", re.IGNORECASE)


def parse_instant(text: str, now: datetime) -> datetime:
    """Resolve a rule's date value: ISO date (midnight UTC), ISO datetime (naive = UTC) or a duration ago."""
    text = text.strip()
    if _RELATIVE.match(text) and not re.match(r"^\d{4}-", text):
        return now - parse_duration(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ---------------------------------------------------------------------------------- activity conditions

_ACTIVITY_KEYS = {"activity", "template", "sequence", "url", "within", "since", "until", *COUNT_OPS, "never",
                  "last_performed"}


def _parse_activity(data: dict[str, Any], where: str) -> ActivityCondition:
    _only(data, _ACTIVITY_KEYS, where)
    raw = data["activity"]
    raw_kinds = raw if isinstance(raw, list) else [raw]
    if not raw_kinds:
        raise _fail(f"{where}.activity", "empty list of activity kinds")
    kinds: list[str] = []
    for i, kind in enumerate(raw_kinds):
        at = f"{where}.activity" if not isinstance(raw, list) else f"{where}.activity[{i}]"
        text = str(kind).strip().lower() if isinstance(kind, str) else None
        if text not in ACTIVITY_KINDS:
            raise _fail(at, f"unknown activity kind {_show(kind)} (one of {', '.join(ACTIVITY_KINDS)})")
        if text not in kinds:
            kinds.append(text)
    fields: dict[str, Any] = {"kinds": tuple(kinds)}
    for key in ("template", "sequence", "url"):
        if data.get(key) is not None:
            fields[key] = _name(data[key], f"{where}.{key}")
    if data.get("within") is not None:
        fields["within"] = _duration(data["within"], f"{where}.within")
    for key in ("since", "until"):
        if data.get(key) is not None:
            fields[key] = _instant_text(data[key], f"{where}.{key}")
    counts = [k for k in (*COUNT_OPS, "never") if k in data]
    if len(counts) > 1:
        raise _fail(f"{where}.{counts[1]}", f"use only one of at_least/at_most/exactly/never (also got {counts[0]})")
    if counts:
        key = counts[0]
        if key == "never":
            if data["never"] is not True:
                raise _fail(f"{where}.never", f"expected true, got {_show(data['never'])}")
            fields["count_op"], fields["count"] = "exactly", 0
        else:
            n = data[key]
            if isinstance(n, bool) or not isinstance(n, int) or n < (1 if key == "at_least" else 0):
                low = 1 if key == "at_least" else 0
                raise _fail(f"{where}.{key}", f"expected a whole number ≥ {low}, got {_show(n)}")
            fields["count_op"], fields["count"] = key, n
    if "last_performed" in data:
        if counts or "within" in fields or "since" in fields or "until" in fields:
            raise _fail(f"{where}.last_performed", "last_performed cannot be combined with a count or a window")
        last = data["last_performed"]
        if not isinstance(last, dict) or len(last) != 1 or next(iter(last)) not in ("before", "after"):
            raise _fail(f"{where}.last_performed", f"expected {{before: …}} or {{after: …}}, got {_show(last)}")
        (op, value), = last.items()
        fields["last_op"] = op
        fields["last_value"] = _instant_text(value, f"{where}.last_performed.{op}")
    return ActivityCondition(**fields)


# ----------------------------------------------------------------------------------------- to data


def to_data(node: Node) -> dict[str, Any]:
    """The canonical YAML/JSON shape of a node (what `parse_rule` reads back to an equal node)."""
    if isinstance(node, Group):
        return {node.op: [to_data(item) for item in node.items]}
    if isinstance(node, FieldCondition):
        out: dict[str, Any] = {"field": node.field, "op": node.op}
        if node.value is not None:
            out["value"] = node.value
        return out
    if isinstance(node, ActivityCondition):
        act: dict[str, Any] = {"activity": node.kinds[0] if len(node.kinds) == 1 else list(node.kinds)}
        for key in ("template", "sequence", "url", "within", "since", "until"):
            if getattr(node, key) is not None:
                act[key] = getattr(node, key)
        if node.last_op is not None:
            act["last_performed"] = {node.last_op: node.last_value}
        elif node.count_op == "exactly" and node.count == 0:
            act["never"] = True
        elif not (node.count_op == "at_least" and node.count == 1):
            act[node.count_op] = node.count
        return act
    if isinstance(node, SegmentCondition):
        return {"in_segment": node.segment}
    if isinstance(node, SequenceCondition):
        return {"in_sequence": node.sequence, "status": node.status}
    if isinstance(node, CampaignCondition):
        camp: dict[str, Any] = {"in_campaign": node.campaign}
        if node.status is not None:
            camp["status"] = node.status
        return camp
    if isinstance(node, ConsentCondition):
        return {"consent": node.category} if node.status == "granted" else \
            {"consent": node.category, "status": node.status}
    return {"mql_status": node.status}


def dump_yaml(rule: Rule) -> str:
    return yaml.safe_dump(rule.to_data(), sort_keys=False, allow_unicode=True)


def segment_refs(node: Node) -> list[str]:
    """Names of the saved segments a rule refers to (directly)."""
    if isinstance(node, Group):
        return [name for item in node.items for name in segment_refs(item)]
    return [node.segment] if isinstance(node, SegmentCondition) else []


def walk(node: Node) -> list[Node]:
    """Every node of the tree, depth first."""
    if isinstance(node, Group):
        return [node, *(n for item in node.items for n in walk(item))]
    return [node]


# ------------------------------------------------------------------------------------------- render

_SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥", "in": "in", "not_in": "not in",
            "contains": "contains", "not_contains": "does not contain", "starts_with": "starts with",
            "ends_with": "ends with", "before": "before", "after": "after"}
_VERBS = {"open": "opened", "click": "clicked", "sent": "was sent", "form": "submitted a form",
          "page_view": "viewed a page", "reply": "replied", "unsubscribe": "unsubscribed", "bounce": "bounced",
          "meeting": "had a meeting", "campaign_response": "responded to a campaign",
          "opportunity": "had an opportunity", "score_change": "had a score change",
          "stage_change": "changed stage", "mql": "became an MQL", "entered": "entered a sequence",
          "exited": "exited a sequence", "goal": "reached a goal"}
_EMAIL_KINDS = {"open", "click", "sent", "bounce", "reply", "unsubscribe"}
_BARE = re.compile(r"^[\w.@+:/-]+$", re.UNICODE)


def render(rule: Rule | Node) -> str:
    """One line of English: `industry in [Software, Fintech] AND score ≥ 50 AND opened any email within 14d`."""
    return _render(rule.root if isinstance(rule, Rule) else rule, top=True)


def _val(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float)):
        return str(v)
    text = str(v)
    return text if _BARE.match(text) else json.dumps(text, ensure_ascii=False)


def _when(v: str) -> str:
    return f"{v} ago" if _RELATIVE.match(v) and not re.match(r"^\d{4}-", v) else _val(v)


def _render(node: Node, top: bool = False) -> str:
    if isinstance(node, Group):
        parts = [_render(item) for item in node.items]
        if node.op == "none":
            if not parts:
                return "everyone"
            inner = parts[0] if len(parts) == 1 else " OR ".join(parts)
            return f"NOT ({inner})" if len(parts) > 1 or " " in inner else f"NOT {inner}"
        if not parts:
            return "everyone" if node.op == "all" else "no one"
        text = (" AND " if node.op == "all" else " OR ").join(parts)
        return text if top or len(parts) == 1 else f"({text})"
    if isinstance(node, FieldCondition):
        return _render_field(node)
    if isinstance(node, ActivityCondition):
        return _render_activity(node)
    if isinstance(node, SegmentCondition):
        return f"in segment {_val(node.segment)}"
    if isinstance(node, SequenceCondition):
        status = "" if node.status == "any" else f" ({node.status})"
        return f"in sequence {_val(node.sequence)}{status}"
    if isinstance(node, CampaignCondition):
        status = "" if node.status is None else f" with status {_val(node.status)}"
        return f"in campaign {_val(node.campaign)}{status}"
    if isinstance(node, ConsentCondition):
        return f"has a consent record for {_val(node.category)}" if node.status == "any" else \
            f"consent for {_val(node.category)} {node.status}"
    return "is an MQL" if node.status == "any" else f"MQL status {node.status}"


def _render_field(node: FieldCondition) -> str:
    f, op, v = node.field, node.op, node.value
    if op in ("in", "not_in"):
        return f"{f} {_SYMBOLS[op]} [{', '.join(_val(x) for x in v)}]"
    if op == "between":
        lo, hi = v
        return f"{f} between {_when(lo) if isinstance(lo, str) else _val(lo)} and " \
               f"{_when(hi) if isinstance(hi, str) else _val(hi)}"
    if op in ("is_empty", "not_empty"):
        return f"{f} is {'empty' if op == 'is_empty' else 'not empty'}"
    if op in ("today", "this_week", "this_month"):
        return f"{f} is {op.replace('_', ' ')}"
    if op == "within_last":
        return f"{f} within last {v}"
    if op == "older_than":
        return f"{f} older than {v}"
    if op == "regex":
        return f"{f} matches /{v}/"
    spec = F.lookup(f)
    if isinstance(v, str) and spec is not None and spec.kind == F.DATE:
        return f"{f} {_SYMBOLS[op]} {_when(v)}"
    return f"{f} {_SYMBOLS[op]} {_val(v)}"


def _render_activity(node: ActivityCondition) -> str:
    kinds = node.kinds
    verb = " or ".join(_VERBS.get(k, k) for k in kinds)
    parts: list[str] = []
    if node.template is not None:
        parts.append(f"email {_val(node.template)}")
    elif node.url is None and all(k in _EMAIL_KINDS - {"reply", "unsubscribe"} for k in kinds):
        parts.append("any email")
    if node.url is not None:
        parts.append(f"url {_val(node.url)}")
    if node.sequence is not None:
        parts.append(f"in sequence {_val(node.sequence)}")
    if node.last_op is not None:
        return " ".join([f"last {verb}", *parts, node.last_op, _when(node.last_value or "")])
    never = node.count_op == "exactly" and node.count == 0
    if not never and not (node.count_op == "at_least" and node.count == 1):
        times = "time" if node.count == 1 else "times"
        parts.append(f"{node.count_op.replace('_', ' ')} {node.count} {times}")
    if node.within is not None:
        parts.append(f"within {node.within}")
    if node.since is not None:
        parts.append(f"since {_val(node.since)}")
    if node.until is not None:
        parts.append(f"until {_val(node.until)}")
    head = f"never {verb}" if never else verb
    return " ".join([head, *parts])
