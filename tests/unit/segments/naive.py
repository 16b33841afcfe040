"""A deliberately naive, row-by-row Python evaluator of segment rules — the oracle the property test
checks the SQL compiler against. Tests only: production code never evaluates rules in Python."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from nurture_tui.scoring.decay import EPOCH_KEY, ScoreScale
from nurture_tui.segments import fields as F
from nurture_tui.segments.compiler import period_bounds
from nurture_tui.segments.rules import (
    ActivityCondition,
    CampaignCondition,
    FieldCondition,
    Group,
    MqlCondition,
    Node,
    SegmentCondition,
    SequenceCondition,
    parse_instant,
    parse_rule,
)
from nurture_tui.sequences.model import parse_duration
from nurture_tui.store import meta
from nurture_tui.store.models.people import GRADES, STAGES
from nurture_tui.store.tables import (
    account,
    activity,
    campaign,
    campaign_member,
    enrollment,
    lead,
    lead_tag,
    mql,
    segment,
    sequence,
    template,
    user,
)


@dataclass
class Snapshot:
    now: datetime
    factor: float
    leads: list[dict[str, Any]]
    accounts: dict[int, dict[str, Any]]
    users: dict[int, str]
    tags: dict[int, list[str]] = field(default_factory=dict)
    activities: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    templates: dict[int, str] = field(default_factory=dict)
    sequences: dict[int, str] = field(default_factory=dict)
    enrollments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    campaigns: dict[int, str] = field(default_factory=dict)
    campaign_members: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    mqls: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    segments: dict[str, Any] = field(default_factory=dict)


def _group(rows: Any) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["lead_id"]].append(dict(r))
    return out


def snapshot(conn: Connection, now: datetime, half_life_days: float) -> Snapshot:
    raw = meta.get(conn, EPOCH_KEY)
    factor = 1.0 if raw is None else ScoreScale(datetime.fromisoformat(raw), half_life_days).factor(now)
    m = lambda stmt: [dict(r._mapping) for r in conn.execute(stmt)]  # noqa: E731
    return Snapshot(
        now=now, factor=factor,
        leads=m(select(lead).order_by(lead.c.id)),
        accounts={r["id"]: r for r in m(select(account))},
        users={r["id"]: r["username"] for r in m(select(user))},
        tags={k: [r["tag"] for r in v] for k, v in _group(m(select(lead_tag))).items()},
        activities=_group(m(select(activity))),
        templates={r["id"]: r["name"] for r in m(select(template))},
        sequences={r["id"]: r["name"] for r in m(select(sequence))},
        enrollments=_group(m(select(enrollment))),
        campaigns={r["id"]: r["name"] for r in m(select(campaign))},
        campaign_members=_group(m(select(campaign_member))),
        mqls=_group(m(select(mql))),
        segments={r["name"]: r["rule"] for r in m(select(segment))},
    )


def members(snap: Snapshot, node: Node) -> set[int]:
    return {ld["id"] for ld in snap.leads if evaluate(snap, node, ld)}


def evaluate(snap: Snapshot, node: Node, ld: dict[str, Any]) -> bool:
    if isinstance(node, Group):
        results = [evaluate(snap, item, ld) for item in node.items]
        if node.op == "all":
            return all(results)
        return any(results) if node.op == "any" else not any(results)
    if isinstance(node, FieldCondition):
        return _field(snap, node, ld)
    if isinstance(node, ActivityCondition):
        return _activity(snap, node, ld)
    if isinstance(node, SegmentCondition):
        return evaluate(snap, parse_rule(snap.segments[node.segment]).root, ld)
    if isinstance(node, SequenceCondition):
        wanted = {"active": {"active", "waiting"}}.get(node.status, {node.status})
        return any(snap.sequences[e["sequence_id"]].lower() == node.sequence.lower()
                   and (node.status == "any" or e["status"] in wanted) for e in snap.enrollments.get(ld["id"], []))
    if isinstance(node, CampaignCondition):
        return any(snap.campaigns[cm["campaign_id"]].lower() == node.campaign.lower()
                   and (node.status is None or cm["status"].lower() == node.status.lower())
                   for cm in snap.campaign_members.get(ld["id"], []))
    assert isinstance(node, MqlCondition)
    rows = snap.mqls.get(ld["id"], [])
    if node.status == "any":
        return bool(rows)
    return bool(rows) and max(rows, key=lambda r: r["id"])["status"] == node.status


def _field(snap: Snapshot, node: FieldCondition, ld: dict[str, Any]) -> bool:
    op = node.op
    if op in F.NEGATIONS:
        return not _field(snap, FieldCondition(field=node.field, op=F.NEGATIONS[op], value=node.value), ld)
    spec = F.lookup(node.field)
    assert spec is not None
    if spec.table == "account":
        acc = snap.accounts.get(ld["account_id"]) if ld["account_id"] is not None else None
        return acc is not None and _test(spec.kind, op, node.value, acc[spec.column], snap)
    kind, value, stored = spec.kind, node.value, ld.get(spec.column)
    if kind == F.SCORE:
        value = [v / snap.factor for v in value] if isinstance(value, list) else value / snap.factor
        kind = F.NUMBER
    elif kind == F.GRADE:
        value = [GRADES.index(v) for v in value] if isinstance(value, list) else \
            None if value is None else GRADES.index(value)
        kind = F.NUMBER
    elif kind == F.STAGE:
        if op in ("lt", "le", "gt", "ge", "between"):
            if stored is None:
                return False
            value = [STAGES.index(v) for v in value] if isinstance(value, list) else STAGES.index(value)
            return _test(F.NUMBER, op, value, STAGES.index(stored), snap) if stored in STAGES else False
        return stored is not None and stored != "" if op == "not_empty" else \
            (stored == value if op == "eq" else stored in value)
    elif kind == F.PERSONA:
        return stored is not None and stored != "" if op == "not_empty" else \
            (stored == value if op == "eq" else stored in value)
    elif kind == F.OWNER:
        if op == "not_empty":
            return stored is not None
        names = [v.lower() for v in (value if isinstance(value, list) else [value])]
        return stored is not None and snap.users[stored].lower() in names
    elif kind == F.TAGS:
        have = [t.lower() for t in snap.tags.get(ld["id"], [])]
        if op == "not_empty":
            return bool(have)
        wanted = [v.lower() for v in (value if isinstance(value, list) else [value])]
        return any(t in wanted for t in have)
    elif kind == F.CUSTOM:
        return _custom(op, value, (ld.get("custom") or {}), spec.column, snap)
    return _test(kind, op, value, stored, snap)


def _custom(op: str, value: Any, custom: dict[str, Any], key: str, snap: Snapshot) -> bool:
    present = key in custom
    stored = custom.get(key)
    if op == "not_empty":
        return present and stored is not None and stored != ""
    sample = value[0] if isinstance(value, list) else value
    if isinstance(sample, bool):
        if not isinstance(stored, bool):
            return False
        return stored is value if op == "eq" else stored in value
    if isinstance(sample, (int, float)):
        number = stored if isinstance(stored, (int, float)) and not isinstance(stored, bool) else None
        return _test(F.NUMBER, op, value, number, snap)
    return _test(F.STRING, op, value, stored if isinstance(stored, str) else None, snap)


def _test(kind: str, op: str, value: Any, stored: Any, snap: Snapshot) -> bool:
    if op == "not_empty":
        return stored is not None and (kind != F.STRING or stored != "")
    if stored is None:
        return False
    if kind == F.STRING:
        s = stored.lower()
        if op == "eq":
            return bool(s == value.lower())
        if op == "in":
            return s in [v.lower() for v in value]
        if op == "contains":
            return value.lower() in s
        if op == "starts_with":
            return bool(s.startswith(value.lower()))
        if op == "ends_with":
            return bool(s.endswith(value.lower()))
        if op == "regex":
            return re.search(f"(?i){value}", stored) is not None
    if kind == F.BOOL:
        return bool(stored) == bool(value)
    if kind == F.DATE:
        return _date(op, value, stored, snap.now)
    if op == "eq":
        return bool(stored == value)
    if op == "lt":
        return bool(stored < value)
    if op == "le":
        return bool(stored <= value)
    if op == "gt":
        return bool(stored > value)
    if op == "ge":
        return bool(stored >= value)
    if op == "between":
        return bool(value[0] <= stored <= value[1])
    if op == "in":
        return stored in value
    raise AssertionError((kind, op))


def _date(op: str, value: Any, stored: datetime, now: datetime) -> bool:
    if op in ("today", "this_week", "this_month"):
        start, end = period_bounds(op, now)
        return start <= stored < end
    if op == "within_last":
        return stored >= now - parse_duration(value)
    if op == "older_than":
        return stored < now - parse_duration(value)
    if op == "between":
        return parse_instant(value[0], now) <= stored <= parse_instant(value[1], now)
    at = parse_instant(value, now)
    return {"lt": stored < at, "before": stored < at, "le": stored <= at, "gt": stored > at, "after": stored > at,
            "ge": stored >= at}[op]


def _glob(pattern: str) -> re.Pattern[str]:
    if "*" not in pattern and "?" not in pattern:
        return re.compile(".*" + re.escape(pattern.lower()) + ".*", re.DOTALL)
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.compile(body, re.DOTALL)


def _activity(snap: Snapshot, node: ActivityCondition, ld: dict[str, Any]) -> bool:
    now = snap.now
    rows = []
    for a in snap.activities.get(ld["id"], []):
        if a["kind"] not in node.kinds or a["bot"]:
            continue
        if node.template is not None and (a["template_id"] is None
                                          or snap.templates[a["template_id"]].lower() != node.template.lower()):
            continue
        if node.sequence is not None and (a["sequence_id"] is None
                                          or snap.sequences[a["sequence_id"]].lower() != node.sequence.lower()):
            continue
        if node.url is not None and (a["url"] is None or not _glob(node.url).fullmatch(a["url"].lower())):
            continue
        if node.within is not None and a["at"] < now - parse_duration(node.within):
            continue
        if node.since is not None and a["at"] < parse_instant(node.since, now):
            continue
        if node.until is not None and a["at"] >= parse_instant(node.until, now):
            continue
        rows.append(a)
    if node.last_op is not None:
        cutoff = parse_instant(node.last_value or "", now)
        if node.last_op == "after":
            return any(a["at"] > cutoff for a in rows)
        return bool(rows) and max(a["at"] for a in rows) < cutoff
    n = len(rows)
    return {"at_least": n >= node.count, "at_most": n <= node.count, "exactly": n == node.count}[node.count_op]
