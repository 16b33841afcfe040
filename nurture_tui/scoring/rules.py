"""Score rules: activity kind + optional filters → points, with caps and one-time rules.

A rule matches an activity when the kind is equal and every filter given matches:
- `template`: template name(s) (or ids) the activity refers to;
- `sequence`: sequence name(s) (or ids);
- `url`: a glob over the activity URL (`*` = anything, case-insensitive), e.g. `*/pricing*`;
- `form`: a glob over the form name (`activity.meta["form"]`).

Every matching rule applies (a pricing-page click earns the click points *and* the pricing points).
`cap: {points: P, per: 7d, distinct: message}` limits what one rule gives one lead per window; with
`distinct: message` repeats of one message and URL (the same tracked link, the same open pixel, the same
page) count once per window, so a replayed link earns its points once, not up to the cap (issue 20
item 7); without it every match counts toward the cap. Windows are consecutive
periods of that length counted from 1970-01-01 UTC (fixed buckets, so the bulk rescore and the
incremental path compute exactly the same thing). `cap` without `per` is a lifetime cap; `once: true`
is a lifetime cap of the rule's own points (the first matching activity counts, later ones do not).
For a negative rule the cap limits the magnitude of the deduction. A score reset (recycle) starts a
new cycle: caps and one-time rules count again from the reset.

The same compiled rule evaluates in Python (incremental scoring, per-lead history) and compiles to a
SQLAlchemy Core filter (bulk rescore), so both paths agree by construction.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, select, update
from sqlalchemy import false as sa_false
from sqlalchemy.exc import IntegrityError

from ..activity import ActivityFacts
from ..errors import ValidationError
from ..sequences.model import parse_duration
from ..store import meta
from ..store.models import ACTIVITY_KINDS
from ..store.tables import activity, score_rule, sequence, template
from .scale import put_once

#: Kinds a rule may score (bookkeeping kinds written by nurture itself are not scorable).
SCORABLE_KINDS = tuple(k for k in ACTIVITY_KINDS if k not in {"sent", "score_change", "stage_change", "mql",
                                                                 "entered", "exited", "goal"})
FILTER_KEYS = ("template", "sequence", "url", "form")
_RULE_KEYS = {"name", "kind", "points", "once", "cap", "active", *FILTER_KEYS}
_SEEDED_KEY = "score_rules_seeded"
DISTINCT_KEYS = ("message",)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The rule set a new workspace starts with (Pardot-like defaults; edit with `nurture scoring rules apply`).
#: Every rule a recipient (or anyone holding their link) can trigger again at will — opens, clicks, page
#: views — is capped per window, so replaying one tracked link 100 times earns what a few genuine clicks
#: do, not 100 × the points (issue 20 item 7; docs/scoring.md "Replayed clicks and opens").
DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "email open", "kind": "open", "points": 1, "cap": {"points": 5, "per": "7d", "distinct": "message"}},
    {"name": "email click", "kind": "click", "points": 3, "cap": {"points": 9, "per": "1d", "distinct": "message"}},
    {"name": "pricing page click", "kind": "click", "url": "*pricing*", "points": 10,
     "cap": {"points": 10, "per": "1d", "distinct": "message"}},
    {"name": "page view", "kind": "page_view", "points": 1, "cap": {"points": 10, "per": "1d", "distinct": "message"}},
    {"name": "pricing page view", "kind": "page_view", "url": "*pricing*", "points": 10,
     "cap": {"points": 10, "per": "1d", "distinct": "message"}},
    {"name": "form submission", "kind": "form", "points": 15},
    {"name": "email reply", "kind": "reply", "points": 10},
    {"name": "meeting booked", "kind": "meeting", "points": 30, "once": True},
    {"name": "campaign response", "kind": "campaign_response", "points": 5},
    {"name": "unsubscribe", "kind": "unsubscribe", "points": -20, "once": True},
    {"name": "hard bounce", "kind": "bounce", "points": -10, "once": True},
]


def glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern.lower()), re.DOTALL)


def glob_like(pattern: str) -> str:
    """A glob as a LIKE pattern (`*` → `%`, `?` → `_`, LIKE metacharacters escaped with `\\`)."""
    out = pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return out.replace("*", "%").replace("?", "_")


@dataclass(frozen=True)
class RuleSpec:
    """A validated rule as written in a rules file (names, not ids)."""

    name: str
    kind: str
    points: float
    filters: dict[str, Any]
    cap_points: float | None = None
    cap_window_days: float | None = None
    once: bool = False
    active: bool = True
    cap_distinct: str | None = None  # "message": repeats of one message/URL count once per window

    def as_row(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "points": self.points, "filters": self.filters,
                "cap_points": self.cap_points, "cap_window_days": self.cap_window_days, "once": self.once,
                "active": self.active, "cap_distinct": self.cap_distinct}


def parse_rule(data: Any, where: str = "rule") -> RuleSpec:
    """Validate one rule mapping; errors name the path (`rules[3].cap.per: not a duration …`)."""
    if not isinstance(data, Mapping):
        raise ValidationError(where, "a rule must be a mapping")
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_RULE_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{where}.name", "a rule needs a name")
    kind = data.get("kind")
    if kind not in SCORABLE_KINDS:
        raise ValidationError(f"{where}.kind", f"{kind!r} is not a scorable activity kind "
                                               f"({', '.join(SCORABLE_KINDS)})")
    points = data.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)):
        raise ValidationError(f"{where}.points", "points must be a number (negative allowed)")
    filters: dict[str, Any] = {}
    for key in FILTER_KEYS:
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if key in ("url", "form"):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"{where}.{key}", "must be a non-empty glob pattern")
            filters[key] = value.strip()
        else:
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
                raise ValidationError(f"{where}.{key}", "must be a name, an id, or a list of them")
            filters[key] = values
    cap_points: float | None = None
    cap_days: float | None = None
    cap_distinct: str | None = None
    cap = data.get("cap")
    if cap is not None:
        if not isinstance(cap, Mapping) or "points" not in cap or set(cap) - {"points", "per", "distinct"}:
            raise ValidationError(f"{where}.cap", "expected {points: N, per: DURATION, distinct: message} "
                                                  "(per and distinct optional)")
        if cap.get("distinct") is not None:
            if cap["distinct"] not in DISTINCT_KEYS:
                raise ValidationError(f"{where}.cap.distinct", f"expected one of {', '.join(DISTINCT_KEYS)}, "
                                                               f"got {cap['distinct']!r}")
            cap_distinct = str(cap["distinct"])
        cp = cap["points"]
        if isinstance(cp, bool) or not isinstance(cp, (int, float)) or cp <= 0:
            raise ValidationError(f"{where}.cap.points", "must be a positive number")
        cap_points = float(cp)
        if cap.get("per") is not None:
            try:
                cap_days = parse_duration(cap["per"]).total_seconds() / 86400.0
            except ValueError as exc:
                raise ValidationError(f"{where}.cap.per", str(exc)) from None
            if cap_days <= 0:
                raise ValidationError(f"{where}.cap.per", "must be longer than zero")
    once = data.get("once", False)
    active = data.get("active", True)
    if not isinstance(once, bool) or not isinstance(active, bool):
        raise ValidationError(f"{where}.once" if not isinstance(once, bool) else f"{where}.active",
                              "must be true or false")
    if once and cap is not None:
        raise ValidationError(f"{where}.once", "a one-time rule cannot also have a cap")
    return RuleSpec(name=name.strip(), kind=str(kind), points=float(points), filters=filters,
                    cap_points=cap_points, cap_window_days=cap_days, once=once, active=active,
                    cap_distinct=cap_distinct)


def parse_rules_file(path: Path) -> list[RuleSpec]:
    """A YAML (or JSON) file with a top-level `rules:` list."""
    from ..yamlfile import load_yaml_file

    data = load_yaml_file(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise ValidationError(str(path), "expected a top-level `rules:` list")
    specs = [parse_rule(item, f"{path}: rules[{i}]") for i, item in enumerate(data["rules"])]
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise ValidationError(f"{path}: rules[{i}].name", f"duplicate rule name {spec.name!r}")
        seen.add(spec.name)
    return specs


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to evaluate: names resolved to ids, globs compiled. `cap` is None (uncapped) or the
    max magnitude per lead per bucket; `window_s` None = one lifetime bucket."""

    id: int
    name: str
    kind: str
    points: float
    cap: float | None
    window_s: float | None
    template_ids: frozenset[int] | None
    sequence_ids: frozenset[int] | None
    url: str | None
    form: str | None
    distinct: bool = False  # cap.distinct: message — repeats of one (message, URL) count once per window

    @property
    def capped(self) -> bool:
        return self.cap is not None

    @staticmethod
    def repeat_key(outbox_id: int | None, url: str | None) -> tuple[int, str] | None:
        """What makes two matches "the same" for `distinct: message`: the message and the URL. An activity
        that names neither (an event without a URL) is never a repeat: None. The SQL (rescore) partitions
        the same way."""
        if outbox_id is None and not url:
            return None
        return (int(outbox_id or 0), url or "")

    def bucket(self, at: datetime) -> int:
        if self.window_s is None:
            return 0
        return int((at - UNIX_EPOCH).total_seconds() // self.window_s)

    def matches(self, act: ActivityFacts) -> bool:
        """`act` is an activity event or row (kind already equal to this rule's kind)."""
        if self.template_ids is not None and act.template_id not in self.template_ids:
            return False
        if self.sequence_ids is not None and act.sequence_id not in self.sequence_ids:
            return False
        if self.url is not None:
            url = act.url
            if not url or not _regex(self.url).match(str(url).lower()):
                return False
        if self.form is not None:
            form = (act.meta or {}).get("form")
            if not form or not _regex(self.form).match(str(form).lower()):
                return False
        return True

    def sql_filter(self, *, kind_index: bool = True) -> ColumnElement[bool]:
        """The same match as a Core boolean over the `activity` table. `kind_index=False` hides the kind
        term from the planner (for lookups by lead id, where a kind-first index would scan every recent
        activity of that kind instead of probing a few leads)."""
        kind = activity.c.kind if kind_index else func.coalesce(activity.c.kind, "")
        conds: list[ColumnElement[bool]] = [kind == self.kind, activity.c.bot == sa_false()]
        if self.template_ids is not None:
            conds.append(activity.c.template_id.in_(sorted(self.template_ids)))
        if self.sequence_ids is not None:
            conds.append(activity.c.sequence_id.in_(sorted(self.sequence_ids)))
        if self.url is not None:
            conds.append(func.lower(activity.c.url).like(glob_like(self.url), escape="\\"))
        if self.form is not None:
            conds.append(func.lower(activity.c.meta["form"].as_string()).like(glob_like(self.form), escape="\\"))
        return and_(*conds)


def granted(rule: CompiledRule, index: int) -> float:
    """Points the `index`-th (0-based) match of `rule` in one lead's cap bucket earns: all of them uncapped,
    else what is left of the cap (a `once` rule: the first match only)."""
    if rule.cap is None:
        return rule.points
    step = abs(rule.points)
    return math.copysign(max(0.0, min(step, rule.cap - index * step)), rule.points)


#: One lead's matches so far in its current scoring cycle, per (rule id, cap bucket) — see `grant` — and,
#: for `distinct` rules, the (rule id, cap bucket, repeat key) already counted.
CapCounts = MutableMapping[tuple[Any, ...], int]


def grant(rule: CompiledRule, at: datetime, counts: CapCounts, repeat: tuple[int, str] | None = None) -> float:
    """Points one lead earns for a match of `rule` at `at`, counting the match in `counts` (that lead's earlier
    matches). `repeat` is the match's `CompiledRule.repeat_key` (for `distinct` rules: a repeat within the
    window earns nothing and is not counted). Pure, so whatever replays a history in Python (the demo
    generator, history derivations) caps exactly as scoring does."""
    if rule.cap is None:
        return rule.points
    bucket = rule.bucket(at)
    if rule.distinct and repeat is not None:
        seen = (rule.id, bucket, repeat)
        if seen in counts:
            return 0.0
        counts[seen] = 1
    key = (rule.id, bucket)
    index = counts.get(key, 0)
    counts[key] = index + 1
    return granted(rule, index)


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _regex(pattern: str) -> re.Pattern[str]:
    rx = _REGEX_CACHE.get(pattern)
    if rx is None:
        rx = _REGEX_CACHE[pattern] = glob_regex(pattern)
    return rx


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[CompiledRule, ...]

    def for_kind(self, kind: str) -> tuple[CompiledRule, ...]:
        return self._by_kind.get(kind, ())

    @property
    def _by_kind(self) -> dict[str, tuple[CompiledRule, ...]]:
        cached: dict[str, tuple[CompiledRule, ...]] | None = self.__dict__.get("_kind_index")
        if cached is None:
            index: dict[str, list[CompiledRule]] = {}
            for r in self.rules:
                index.setdefault(r.kind, []).append(r)
            cached = {k: tuple(v) for k, v in index.items()}
            object.__setattr__(self, "_kind_index", cached)
        return cached

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(r.kind for r in self.rules)

    def by_id(self, rule_id: int) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def _resolve(conn: Connection, table: Any, values: list[Any]) -> frozenset[int]:
    ids = {int(v) for v in values if isinstance(v, int)}
    names = [v for v in values if isinstance(v, str)]
    if names:
        q = select(table.c.name, table.c.id).where(table.c.name.in_(names))
        found: dict[str, int] = {str(n): int(i) for n, i in conn.execute(q)}
        for n in names:
            if n in found:
                ids.add(int(found[n]))
            elif n.isdigit():
                ids.add(int(n))
            # An unknown name matches nothing (the template may be created later); not an error at score time.
    return frozenset(ids)


def compile_rule(conn: Connection, row: Mapping[Any, Any]) -> CompiledRule:
    filters = row["filters"] or {}
    points = float(row["points"])
    cap: float | None = float(row["cap_points"]) if row["cap_points"] is not None else None
    # Whole seconds: the SQL bucket arithmetic (rescore) works on whole seconds too.
    window_s: float | None = float(max(1, round(float(row["cap_window_days"]) * 86400.0))) \
        if row["cap_window_days"] else None
    if row["once"]:
        cap, window_s = abs(points), None
    return CompiledRule(
        id=int(row["id"]), name=row["name"], kind=row["kind"], points=points, cap=cap, window_s=window_s,
        template_ids=_resolve(conn, template, filters["template"]) if "template" in filters else None,
        sequence_ids=_resolve(conn, sequence, filters["sequence"]) if "sequence" in filters else None,
        url=filters.get("url"), form=filters.get("form"),
        distinct=cap is not None and not row["once"] and row.get("cap_distinct") == "message",
    )


def ensure_default_rules(conn: Connection) -> None:
    """Install DEFAULT_RULES once per workspace (an emptied rule set stays empty)."""
    if meta.get(conn, _SEEDED_KEY):
        return
    try:
        with conn.begin_nested():  # a concurrent first use seeds once; the loser sees its rows
            if conn.execute(select(func.count()).select_from(score_rule)).scalar_one() == 0:
                conn.execute(insert(score_rule), [parse_rule(r).as_row() for r in DEFAULT_RULES])
            put_once(conn, _SEEDED_KEY, True)
    except IntegrityError:
        return


def load_rules(conn: Connection) -> RuleSet:
    """The active rule set, compiled (seeding the defaults on first use)."""
    ensure_default_rules(conn)
    return active_rules(conn)


def active_rules(conn: Connection) -> RuleSet:
    """The active rule set as stored, compiled, without seeding (for readers on a read-only connection)."""
    rows = conn.execute(select(score_rule).where(score_rule.c.active == True).order_by(score_rule.c.id))  # noqa: E712
    return RuleSet(tuple(compile_rule(conn, r._mapping) for r in rows))


def list_rules(conn: Connection) -> list[dict[str, Any]]:
    ensure_default_rules(conn)
    return [dict(r._mapping) for r in conn.execute(select(score_rule).order_by(score_rule.c.id))]


def save_rules(conn: Connection, specs: Iterable[RuleSpec], *, replace: bool) -> dict[str, list[str]]:
    """Upsert rules by name; with `replace`, rules not in `specs` are deactivated. Returns what changed."""
    ensure_default_rules(conn)
    existing = {r["name"]: r for r in list_rules(conn)}
    changed: dict[str, list[str]] = {"added": [], "updated": [], "deactivated": []}
    names: set[str] = set()
    for spec in specs:
        names.add(spec.name)
        row = spec.as_row()
        old = existing.get(spec.name)
        if old is None:
            conn.execute(insert(score_rule).values(**row))
            changed["added"].append(spec.name)
        elif any(old[k] != v for k, v in row.items()):
            conn.execute(update(score_rule).where(score_rule.c.id == old["id"]).values(**row))
            changed["updated"].append(spec.name)
    if replace:
        for name, old in existing.items():
            if name not in names and old["active"]:
                conn.execute(update(score_rule).where(score_rule.c.id == old["id"]).values(active=False))
                changed["deactivated"].append(name)
    return changed


def render_rule(spec: RuleSpec | Mapping[str, Any]) -> dict[str, Any]:
    """A rule as it is written in a rules file (for `scoring rules export`)."""
    row = spec.as_row() if isinstance(spec, RuleSpec) else dict(spec)
    out: dict[str, Any] = {"name": row["name"], "kind": row["kind"], "points": row["points"]}
    out.update(row.get("filters") or {})
    if row.get("once"):
        out["once"] = True
    if row.get("cap_points") is not None:
        cap: dict[str, Any] = {"points": row["cap_points"]}
        if row.get("cap_window_days"):
            cap["per"] = f"{row['cap_window_days']:g}d"
        if row.get("cap_distinct"):
            cap["distinct"] = row["cap_distinct"]
        out["cap"] = cap
    if not row.get("active", True):
        out["active"] = False
    return out
