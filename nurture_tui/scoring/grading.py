"""Fit grades A+…F from grade profiles (Pardot semantics): every lead starts at D and each matching
criterion moves the grade by its `steps` ⅓-letter steps (+1 = D → D+, +3 = a whole letter, negative
steps move down), clamped to F…A+.

A profile file:

    profiles:
      - name: enterprise buyers
        when: {persona: [economic_buyer, technical_evaluator]}   # optional: which leads it grades
        criteria:
          - {field: title, op: contains, value: [vp, director, head of], steps: 3}
          - {field: industry, op: in, value: [Software, Financial Services], steps: 2}
          - {field: employees, op: between, value: [200, 10000], steps: 2}
          - {field: country, op: in, value: [United States, Germany], steps: 1}
          - {field: title, op: contains, value: [student, intern], steps: -3}

Each lead is graded by the first active profile (in file order) whose `when` matches; a profile without
`when` grades everyone not taken by an earlier one; leads no profile takes are ungraded (NULL).
Criteria compile to one SQL `UPDATE` (so regrading 1M leads is one statement); `explain()` evaluates the
same compiled criteria for one lead to say which matched. Text comparisons are case-insensitive.
Regrade runs on profile change (all leads) and on field change (`regrade(conn, lead_ids, …)`, called by
whoever changes lead fields: import, Salesforce pull, sequence actions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, insert, literal, not_, or_, select, update
from sqlalchemy import true as sa_true

from ..batching import chunks
from ..config import ScoringSettings, Settings
from ..errors import ValidationError
from ..store.inlist import in_values
from ..store.models import GRADES
from ..store.tables import grade_profile, lead
from . import mql

START_RANK = GRADES.index("D")
TEXT_FIELDS = ("title", "industry", "country", "state", "city", "company", "persona", "lead_source", "stage",
               "status", "sf_type")
NUMBER_FIELDS = ("employees",)
OPS = {"in": "text", "not_in": "text", "contains": "text", "gte": "number", "lte": "number", "between": "number",
       "empty": "any", "not_empty": "any"}


@dataclass(frozen=True)
class Criterion:
    field: str
    op: str
    value: Any
    steps: int

    def describe(self) -> str:
        return f"{self.field} {self.op} {self.value!r} ({self.steps:+d})"


@dataclass(frozen=True)
class Profile:
    name: str
    when: dict[str, list[str]]
    criteria: tuple[Criterion, ...]
    active: bool = True


def _as_list(value: Any, where: str, number: bool) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    kind = (int, float) if number else str
    if not values or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ValidationError(where, "expected " + ("numbers" if number else "a text value or a list of them"))
    return [v if number else v.strip() for v in values]


def parse_criterion(data: Any, where: str) -> Criterion:
    if not isinstance(data, Mapping):
        raise ValidationError(where, "a criterion is a mapping {field, op, value, steps}")
    unknown = sorted(set(data) - {"field", "op", "value", "steps"})
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", "unknown key (allowed: field, op, value, steps)")
    field = data.get("field")
    if field not in TEXT_FIELDS + NUMBER_FIELDS:
        raise ValidationError(f"{where}.field", f"{field!r} is not a gradable field "
                                                f"({', '.join(TEXT_FIELDS + NUMBER_FIELDS)})")
    op = data.get("op", "in")
    if op not in OPS:
        raise ValidationError(f"{where}.op", f"unknown operator {op!r} ({', '.join(OPS)})")
    number = field in NUMBER_FIELDS
    if (OPS[op] == "text" and number) or (OPS[op] == "number" and not number):
        raise ValidationError(f"{where}.op", f"{op} does not apply to {field}")
    steps = data.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps == 0 or abs(steps) > 12:
        raise ValidationError(f"{where}.steps", "steps must be a non-zero whole number of ⅓-grades (-12…12)")
    value: Any = None
    if OPS[op] != "any":
        if "value" not in data:
            raise ValidationError(f"{where}.value", "a value is required")
        value = _as_list(data["value"], f"{where}.value", number)
        if op == "between" and len(value) != 2:
            raise ValidationError(f"{where}.value", "between takes [low, high]")
        if op in ("gte", "lte"):
            if len(value) != 1:
                raise ValidationError(f"{where}.value", f"{op} takes one number")
            value = value[0]
        if OPS[op] == "text":
            value = [v.lower() for v in value]
    return Criterion(field=str(field), op=str(op), value=value, steps=int(steps))


def parse_profile(data: Any, where: str) -> Profile:
    if not isinstance(data, Mapping):
        raise ValidationError(where, "a profile is a mapping {name, when, criteria}")
    unknown = sorted(set(data) - {"name", "when", "criteria", "active"})
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", "unknown key (allowed: name, when, criteria, active)")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{where}.name", "a profile needs a name")
    when_raw = data.get("when") or {}
    if not isinstance(when_raw, Mapping):
        raise ValidationError(f"{where}.when", "expected a mapping of field: [values]")
    when: dict[str, list[str]] = {}
    for key, value in when_raw.items():
        if key not in TEXT_FIELDS:
            raise ValidationError(f"{where}.when.{key}", f"not a text field ({', '.join(TEXT_FIELDS)})")
        when[key] = [v.lower() for v in _as_list(value, f"{where}.when.{key}", False)]
    crit = data.get("criteria")
    if not isinstance(crit, list) or not crit:
        raise ValidationError(f"{where}.criteria", "a non-empty list of criteria is required")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise ValidationError(f"{where}.active", "must be true or false")
    return Profile(name=name.strip(), when=when, active=active,
                   criteria=tuple(parse_criterion(c, f"{where}.criteria[{i}]") for i, c in enumerate(crit)))


def parse_profiles_file(path: Path) -> list[Profile]:
    """A YAML (or JSON) file with a top-level `profiles:` list."""
    from ..yamlfile import load_yaml_file

    data = load_yaml_file(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("profiles"), list):
        raise ValidationError(str(path), "expected a top-level `profiles:` list")
    profiles = [parse_profile(p, f"{path}: profiles[{i}]") for i, p in enumerate(data["profiles"])]
    names = [p.name for p in profiles]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ValidationError(str(path), f"duplicate profile name {dup!r}")
    return profiles


def _to_row(p: Profile) -> dict[str, Any]:
    return {"name": p.name, "active": p.active, "applies_to": p.when,
            "criteria": [{"field": c.field, "op": c.op, "value": c.value, "steps": c.steps} for c in p.criteria]}


def save_profiles(conn: Connection, profiles: Sequence[Profile], *, replace: bool = True) -> None:
    """Store profiles in file order (position); with `replace`, profiles not given are deactivated."""
    existing = {r.name: r.id for r in conn.execute(select(grade_profile.c.name, grade_profile.c.id))}
    for pos, p in enumerate(profiles):
        row = {**_to_row(p), "position": pos}
        if p.name in existing:
            conn.execute(update(grade_profile).where(grade_profile.c.id == existing[p.name]).values(**row))
        else:
            conn.execute(insert(grade_profile).values(**row))
    if replace:
        keep = [p.name for p in profiles]
        conn.execute(update(grade_profile).where(grade_profile.c.name.not_in(keep)).values(active=False))


def load_profiles(conn: Connection) -> list[Profile]:
    rows = conn.execute(select(grade_profile).where(grade_profile.c.active == sa_true())
                        .order_by(grade_profile.c.position, grade_profile.c.id))
    return [parse_profile({"name": r.name, "when": r.applies_to or {}, "criteria": r.criteria},
                          f"grade_profile {r.name}") for r in rows]


def _text(col: Any) -> Any:
    return func.lower(func.trim(col))


def criterion_sql(c: Criterion) -> ColumnElement[bool]:
    col = lead.c[c.field]
    if c.op == "in":
        return _text(col).in_(c.value)
    if c.op == "not_in":
        return and_(col.is_not(None), _text(col).not_in(c.value))
    if c.op == "contains":
        return or_(*[_text(col).contains(v, autoescape=True) for v in c.value])
    if c.op == "gte":
        return col >= c.value
    if c.op == "lte":
        return col <= c.value
    if c.op == "between":
        return col.between(min(c.value), max(c.value))
    if c.op == "empty":
        return or_(col.is_(None), func.trim(func.coalesce(col, "")) == "") if c.field in TEXT_FIELDS \
            else col.is_(None)
    return not_(or_(col.is_(None), func.trim(col) == "")) if c.field in TEXT_FIELDS else col.is_not(None)


def _when_sql(p: Profile) -> ColumnElement[bool]:
    if not p.when:
        return sa_true()
    return and_(*[_text(func.coalesce(lead.c[k], "")).in_(v) for k, v in p.when.items()])


def rank_expr(p: Profile) -> ColumnElement[int]:
    total: Any = literal(START_RANK)
    for c in p.criteria:
        total = total + case((criterion_sql(c), c.steps), else_=0)
    clamped = case((total < 0, 0), (total > len(GRADES) - 1, len(GRADES) - 1), else_=total)
    return clamped


def grade_expr(rank: ColumnElement[int]) -> ColumnElement[str]:
    return case(*[(rank == i, g) for i, g in enumerate(GRADES)], else_=None)


def regrade(conn: Connection, lead_ids: Sequence[int] | None, now: datetime,
            settings: Settings | ScoringSettings, *, check_mql: bool = True) -> list[int]:
    """Recompute grade + grade_rank (all leads when `lead_ids` is None); returns newly MQL lead ids."""
    profiles = load_profiles(conn)
    # the ids in one bound parameter per 10,000 (store/inlist.py): a pulled page of 25,000 leads is graded in
    # three statements per profile, not 28 statements each compiling an expanded list of 900
    parts: list[Sequence[int] | None] = list(chunks(sorted(set(lead_ids)), 10_000)) if lead_ids is not None else [None]
    for part in parts:
        scope: ColumnElement[bool] = in_values(conn, lead.c.id, part) if part is not None else sa_true()
        taken: list[ColumnElement[bool]] = []
        for p in profiles:
            cond = and_(scope, _when_sql(p), *[not_(t) for t in taken])
            r = rank_expr(p)
            conn.execute(update(lead).where(cond).values(grade_rank=r, grade=grade_expr(r)))
            taken.append(_when_sql(p))
        rest = and_(scope, *[not_(t) for t in taken]) if taken else scope
        conn.execute(update(lead).where(rest, lead.c.grade_rank.is_not(None)).values(grade_rank=None, grade=None))
    if not check_mql:
        return []
    if lead_ids is not None:
        return mql.check(conn, list(lead_ids), now, settings)
    return mql.check_all(conn, now, settings)


@dataclass(frozen=True)
class GradeExplanation:
    profile: str | None
    grade: str | None
    matched: list[str]


def explain(conn: Connection, lead_id: int) -> GradeExplanation:
    """Which profile graded the lead and which criteria matched (same SQL as `regrade`)."""
    for p in load_profiles(conn):
        in_profile = conn.execute(select(lead.c.id).where(lead.c.id == lead_id, _when_sql(p))).first()
        if not in_profile:
            continue
        flags = conn.execute(select(*[case((criterion_sql(c), 1), else_=0) for c in p.criteria],
                                    rank_expr(p)).where(lead.c.id == lead_id)).one()
        matched = [c.describe() for c, hit in zip(p.criteria, flags[:-1], strict=True) if hit]
        return GradeExplanation(profile=p.name, grade=GRADES[int(flags[-1])], matched=matched)
    return GradeExplanation(profile=None, grade=None, matched=[])
