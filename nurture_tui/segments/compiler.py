"""Compile a segment rule to one SQLAlchemy Core boolean over the `lead` table (SQLite and PostgreSQL).

Everything that asks "who is in this segment" goes through `where_clause`: counts, member streams,
samples, exports, and the engine's per-lead checks (`matches` / `matching_ids` run the *same* SQL,
restricted to the given ids, so there is no second evaluator that could drift).

Semantics, identical on both backends:
- Strings compare case-insensitively (`lower()` on both sides, so equal strings always match; case
  folding beyond ASCII follows the database). Stage/persona/grade are canonical enumerations.
- A missing value never satisfies a positive operator; the negative ones (`ne`, `not_in`,
  `not_contains`, `is_empty`) are exactly the negation of their positive twin, so they do match leads
  with no value. `none: [...]` is the exact negation of `any: [...]` (NULLs are folded to false first).
- Behaviour never counts bot-flagged activities.
- `score` is the live, decayed score: `score ≥ X` compiles to `lead.score ≥ X / f(now)` (scoring/decay.py).

Two equivalent shapes are emitted for subquery conditions: *set* form (`lead.id IN (SELECT lead_id …)`,
evaluated once — best for whole-table counts) and *probe* form (correlated `EXISTS`, an index probe per
lead — best when the lead set is already small, as in `matching_ids`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Float,
    Select,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..batching import chunks
from ..config import ScoringSettings
from ..errors import ValidationError
from ..scoring.decay import EPOCH_KEY, HALF_LIFE_KEY, ScoreScale
from ..sequences.model import parse_duration
from ..store import meta
from ..store.models.people import GRADES, STAGES
from ..store.tables import (
    account,
    activity,
    campaign,
    campaign_member,
    consent,
    enrollment,
    lead,
    lead_tag,
    mql,
    segment,
    segment_member,
    sequence,
    template,
    user,
)
from . import fields as F
from .rules import (
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
    parse_instant,
    parse_rule,
)

RuleLike = Rule | Mapping[str, Any]
_CHUNK = 500  # ids per statement in matching_ids (well under every backend's bind-parameter limit)


@dataclass
class _Ctx:
    conn: Connection
    now: datetime
    probe: bool
    half_life_days: float | None  # None: the workspace's (see score_factor)
    use_materialized: bool
    seen: tuple[str, ...] = ()
    id_driven: bool = False  # the caller restricts to a few lead ids (matching_ids): see col()
    _factor: float | None = field(default=None)

    @property
    def sqlite(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    def col(self, column: Any) -> Any:
        """A lead column, or when the query is restricted to a few ids (matching_ids) on SQLite `+column`:
        the unary plus keeps the planner from choosing an attribute index over the `lead.id IN (…)`
        lookup such queries must be driven by. Without ANALYZE statistics SQLite otherwise guesses wrong."""
        if self.id_driven and self.sqlite:
            return UnaryExpression(column, operator=custom_op("+"), type_=column.type)
        return column

    def score_factor(self) -> float:
        """f(now) of the workspace score scale; 1.0 before any score was put on the scale."""
        if self._factor is None:
            raw = meta.get(self.conn, EPOCH_KEY)
            if raw is None:
                self._factor = 1.0
            else:
                half_life = self.half_life_days
                if half_life is None:  # the half-life the scores were put on the scale with (scoring records it)
                    stored = meta.get(self.conn, HALF_LIFE_KEY)
                    half_life = ScoringSettings().half_life_days if stored is None else float(stored)
                scale = ScoreScale(epoch=datetime.fromisoformat(raw), half_life_days=half_life)
                self._factor = scale.factor(self.now)
        return self._factor


# ------------------------------------------------------------------------------------------ public API


def where_clause(
    conn: Connection,
    rule: RuleLike,
    now: datetime,
    *,
    probe: bool = False,
    half_life_days: float | None = None,
    use_materialized: bool = True,
) -> ColumnElement[bool]:
    """The rule as a Core boolean over `lead` (use in `select(...).select_from(lead).where(...)`).

    `probe=True` emits correlated EXISTS (cheap per lead) instead of IN-sets (cheap per table).
    `half_life_days` is `settings.scoring.half_life_days` (default: the half-life scoring last used in this
    workspace, recorded in `meta`, else the built-in default).
    `use_materialized=False` inlines materialised segments' rules instead of reading their members.
    """
    if now.tzinfo is None:
        raise ValueError("where_clause needs a timezone-aware `now`")
    ctx = _Ctx(conn=conn, now=now.astimezone(UTC), probe=probe, half_life_days=_half_life(half_life_days),
               use_materialized=use_materialized, id_driven=probe)
    return _compile(_root(rule), ctx, "rule")


def _half_life(value: float | None) -> float | None:
    return None if value is None else float(value)


def count_statement(conn: Connection, rule: RuleLike, now: datetime, **kw: Any) -> Select[int]:
    hot = _hot_segment_id(conn, rule, kw)
    if hot is not None:
        return select(func.count()).select_from(segment_member).where(segment_member.c.segment_id == hot)
    return select(func.count()).select_from(lead).where(where_clause(conn, rule, now, **kw))


# A hot segment by name: name lookup and membership count in one round trip, built once (a sub-millisecond
# call that live counts in the TUI repeat, so statement construction would be a visible share of it).
_HOT_COUNT = select(
    segment.c.name, segment.c.materialized,
    select(func.count()).where(segment_member.c.segment_id == segment.c.id).scalar_subquery(),
).where(func.lower(segment.c.name) == bindparam("name"))


def count(conn: Connection, rule: RuleLike, now: datetime, **kw: Any) -> int:
    """How many leads match now."""
    root = _root(rule)
    if isinstance(root, SegmentCondition) and kw.get("use_materialized", True):
        rows = conn.execute(_HOT_COUNT, {"name": root.segment.lower()}).all()
        hot = [r for r in rows if r.materialized and (r.name == root.segment or len(rows) == 1)]
        if hot:
            return int(hot[0][2])
    return int(conn.execute(count_statement(conn, Rule(root=root), now, **kw)).scalar_one())


def members_statement(conn: Connection, rule: RuleLike, now: datetime, **kw: Any) -> Select[int]:
    hot = _hot_segment_id(conn, rule, kw)
    if hot is not None:
        return (select(segment_member.c.lead_id).where(segment_member.c.segment_id == hot)
                .order_by(segment_member.c.lead_id))
    return select(lead.c.id).where(where_clause(conn, rule, now, **kw)).order_by(lead.c.id)


def members(conn: Connection, rule: RuleLike, now: datetime, *, batch: int = 5000, **kw: Any) -> Iterator[int]:
    """Matching lead ids in id order, streamed (consume while `conn` is open)."""
    # Per statement: `Connection.execution_options()` would switch the whole connection to streaming.
    result = conn.execute(members_statement(conn, rule, now, **kw), execution_options={"yield_per": batch})
    for row in result:
        yield int(row[0])


def matching_ids(conn: Connection, rule: RuleLike, lead_ids: Iterable[int], now: datetime, **kw: Any) -> set[int]:
    """Which of `lead_ids` match now (the engine's batch check: branch, goal, exit, entry)."""
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        return set()
    kw.setdefault("probe", True)
    clause = where_clause(conn, rule, now, **kw)
    found: set[int] = set()
    for chunk in chunks(ids, _CHUNK):
        stmt = select(lead.c.id).where(lead.c.id.in_(chunk), clause)
        found.update(int(r[0]) for r in conn.execute(stmt))
    return found


def matches(conn: Connection, rule: RuleLike, lead_id: int, now: datetime, **kw: Any) -> bool:
    """Does this one lead match now (branch nodes)? Same SQL as every other entry point."""
    return bool(matching_ids(conn, rule, [lead_id], now, **kw))


@dataclass(frozen=True)
class LeadSample:
    """A matching lead as the segment screen previews it (live score)."""

    id: int
    email: str
    name: str
    company: str | None
    stage: str | None
    score: float
    grade: str | None


SAMPLE_ORDERS = ("score", "recent", "newest", "name", "id", "random")


def sample(conn: Connection, rule: RuleLike, now: datetime, n: int = 20, order: str = "score",
           **kw: Any) -> list[LeadSample]:
    """Up to `n` matching leads, ordered by score (desc), recent activity, newest, name, id or random."""
    orderings: dict[str, list[Any]] = {
        "score": [lead.c.score.desc(), lead.c.id],
        "recent": [lead.c.last_activity_at.desc(), lead.c.id],
        "newest": [lead.c.created_at.desc(), lead.c.id.desc()],
        "name": [func.lower(lead.c.last_name), func.lower(lead.c.first_name), lead.c.id],
        "id": [lead.c.id],
        "random": [func.random()],
    }
    if order not in orderings:
        raise ValidationError("order", f"expected one of {', '.join(SAMPLE_ORDERS)}, got {order!r}")
    ctx_factor = _Ctx(conn=conn, now=now, probe=False, use_materialized=True,
                      half_life_days=_half_life(kw.get("half_life_days"))).score_factor()
    cols = [lead.c.id, lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, lead.c.stage,
            lead.c.score, lead.c.grade]
    stmt = select(*cols).where(where_clause(conn, rule, now, **kw)).order_by(*orderings[order]).limit(max(0, n))
    out = []
    for r in conn.execute(stmt):
        name = " ".join(p for p in (r.first_name, r.last_name) if p)
        out.append(LeadSample(id=int(r.id), email=r.email, name=name, company=r.company, stage=r.stage,
                              score=round(float(r.score or 0.0) * ctx_factor, 2), grade=r.grade))
    return out


def _root(rule: RuleLike) -> Node:
    return (rule if isinstance(rule, Rule) else parse_rule(rule)).root


def _hot_segment_id(conn: Connection, rule: RuleLike, kw: Mapping[str, Any]) -> int | None:
    """A rule that is exactly `in_segment: <materialised>` reads the membership table directly."""
    root = _root(rule)
    if not isinstance(root, SegmentCondition) or not kw.get("use_materialized", True):
        return None
    row = _find_segment(conn, root.segment)
    return int(row.id) if row is not None and row.materialized else None


# ------------------------------------------------------------------------------------------- compiler


def _compile(node: Node, ctx: _Ctx, path: str) -> ColumnElement[bool]:
    if isinstance(node, Group):
        forms = _forms_for_group(node, ctx)
        parts = [_compile(item, form, f"{path}.{node.op}[{i}]")
                 for i, (item, form) in enumerate(zip(node.items, forms, strict=True))]
        if node.op == "all":
            return and_(*parts) if parts else true()
        anyof = or_(*parts) if parts else false()
        return anyof if node.op == "any" else _negate(anyof)
    if isinstance(node, FieldCondition):
        return _field(node, ctx)
    if isinstance(node, ActivityCondition):
        return _activity(node, ctx)
    if isinstance(node, SegmentCondition):
        return _in_segment(node, ctx, path)
    if isinstance(node, SequenceCondition):
        return _in_sequence(node, ctx)
    if isinstance(node, CampaignCondition):
        return _in_campaign(node, ctx)
    if isinstance(node, ConsentCondition):
        return _consent(node, ctx)
    return _mql(node, ctx)


_ESTIMATE_CAP = 25_000  # rows counted per estimate: enough to rank sets, cheap on a covering index


def _forms_for_group(node: Group, ctx: _Ctx) -> list[_Ctx]:
    """For an `all` group with several subquery conditions, in set form: keep only the one estimated to
    match the fewest leads as an IN-set (the driver) and turn the others into EXISTS probes, so the
    database walks the smallest set of leads and checks the rest per lead by index seek, instead of
    building every set and then looking up the largest one's leads."""
    forms = [ctx] * len(node.items)
    if node.op != "all" or ctx.probe:
        return forms
    subqueries = [i for i, item in enumerate(node.items) if _source(item, ctx) is not None]
    drivers = [i for i in subqueries if _is_positive(node.items[i])]
    if len(subqueries) < 2 or not drivers:
        return forms
    driver = min(drivers, key=lambda i: _estimate(node.items[i], ctx))
    probe = replace(ctx, probe=True)
    return [probe if i in subqueries and i != driver else ctx for i in range(len(node.items))]


def _is_positive(node: Node) -> bool:
    """Conditions that only leads with a matching row can satisfy (so their set can drive a query)."""
    if isinstance(node, ActivityCondition):
        return node.last_op is not None or node.count_op == "at_least" or \
            (node.count_op == "exactly" and node.count > 0)
    return True


def _source(node: Node, ctx: _Ctx) -> tuple[Any, list[ColumnElement[bool]]] | None:
    """(lead id column, filters) of the rows a subquery condition looks at; None for lead-row conditions
    and for segments compiled inline."""
    if isinstance(node, ActivityCondition):
        return activity.c.lead_id, _activity_filters(node, ctx)
    if isinstance(node, SequenceCondition):
        return _sequence_source(node)
    if isinstance(node, CampaignCondition):
        return _campaign_source(node)
    if isinstance(node, MqlCondition):
        return _mql_source(node)
    if isinstance(node, ConsentCondition):
        return _consent_source(node)
    if isinstance(node, SegmentCondition) and ctx.use_materialized:
        row = _find_segment(ctx.conn, node.segment)
        if row is not None and row.materialized:
            return segment_member.c.lead_id, [segment_member.c.segment_id == row.id]
    return None


def _estimate(node: Node, ctx: _Ctx) -> float:
    """Rough number of leads a condition admits: its matching rows, capped, over the count it needs."""
    source = _source(node, ctx)
    assert source is not None
    ref, conds = source
    rows = ctx.conn.execute(select(func.count()).select_from(
        select(literal(1)).select_from(ref.table).where(*conds).limit(_ESTIMATE_CAP).subquery())).scalar_one()
    per_lead = node.count if isinstance(node, ActivityCondition) and node.last_op is None else 1
    return float(rows) / max(per_lead, 1)


def _negate(expr: ColumnElement[bool]) -> ColumnElement[bool]:
    """Two-valued NOT: a NULL (unknown) inner result counts as false, so its negation is true."""
    return not_(func.coalesce(expr, false(), type_=Boolean))


def _has(lead_ref: Any, ctx: _Ctx, *conds: ColumnElement[bool]) -> ColumnElement[bool]:
    """Some row of `lead_ref`'s table, satisfying `conds`, belongs to the lead (set or probe form)."""
    if ctx.probe:
        return select(literal(1)).where(lead_ref == lead.c.id, *conds).exists()
    return lead.c.id.in_(select(lead_ref).where(*conds))


def _lower(expr: Any) -> ColumnElement[Any]:
    return func.lower(expr)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------------------------------------- fields


def _field(node: FieldCondition, ctx: _Ctx) -> ColumnElement[bool]:
    spec = F.lookup(node.field)
    assert spec is not None  # parse_rule validated it
    positive = F.NEGATIONS.get(node.op)
    if positive is not None:
        return _negate(_positive(spec, positive, node.value, ctx))
    return _positive(spec, node.op, node.value, ctx)


def _positive(spec: F.FieldSpec, op: str, value: Any, ctx: _Ctx) -> ColumnElement[bool]:
    kind = spec.kind
    if spec.table == "account":
        pred = _predicate(kind, op, value, account.c[spec.column], ctx)
        if ctx.probe:
            return select(literal(1)).where(account.c.id == lead.c.account_id, pred).exists()
        return lead.c.account_id.in_(select(account.c.id).where(pred))
    if kind == F.SCORE:
        factor = ctx.score_factor()
        scaled = [v / factor for v in value] if isinstance(value, list) else value / factor
        return _predicate(F.NUMBER, op, scaled, ctx.col(lead.c.score), ctx)
    if kind == F.GRADE:
        ranks = [GRADES.index(v) for v in value] if isinstance(value, list) else \
            None if value is None else GRADES.index(value)
        return _predicate(F.NUMBER, op, ranks, ctx.col(lead.c.grade_rank), ctx)
    if kind == F.STAGE and op in ("lt", "le", "gt", "ge", "between"):
        return ctx.col(lead.c.stage).in_(_ordered_subset(STAGES, op, value))
    if kind in (F.STAGE, F.PERSONA):
        col = ctx.col(lead.c[spec.column])
        if op == "eq":
            return col == value
        if op == "in":
            return col.in_(value)
        return and_(col.is_not(None), col != "")
    if kind == F.OWNER:
        if op == "not_empty":
            return ctx.col(lead.c.owner_id).is_not(None)
        names = value if isinstance(value, list) else [value]
        users = select(user.c.id).where(_lower(user.c.username).in_([_lower(literal(n)) for n in names]))
        return ctx.col(lead.c.owner_id).in_(users)
    if kind == F.TAGS:
        if op == "not_empty":
            return _has(lead_tag.c.lead_id, ctx)
        tags = value if isinstance(value, list) else [value]
        return _has(lead_tag.c.lead_id, ctx, _lower(lead_tag.c.tag).in_([_lower(literal(t)) for t in tags]))
    if kind == F.CUSTOM:
        return _custom(spec.column, op, value, ctx)
    return _predicate(kind, op, value, ctx.col(lead.c[spec.column]), ctx)


def _ordered_subset(order: tuple[str, ...], op: str, value: Any) -> list[str]:
    """The enumeration values an ordering comparison admits (index-friendly `IN` instead of a CASE)."""
    if op == "between":
        low, high = order.index(value[0]), order.index(value[1])
    else:
        ref = order.index(value)
        low, high = {"lt": (0, ref - 1), "le": (0, ref), "gt": (ref + 1, len(order)), "ge": (ref, len(order))}[op]
    return [v for i, v in enumerate(order) if low <= i <= high]


def _predicate(kind: str, op: str, value: Any, expr: Any, ctx: _Ctx) -> ColumnElement[bool]:
    """A positive operator applied to a scalar SQL expression of the given kind."""
    if op == "not_empty":
        return and_(expr.is_not(None), expr != "") if kind == F.STRING else expr.is_not(None)
    if kind == F.STRING:
        return _string_predicate(op, value, expr, ctx.sqlite)
    if kind == F.DATE:
        return _date_predicate(op, value, expr, ctx)
    if kind == F.BOOL:
        return expr == bool(value)
    ops = {"eq": expr.__eq__, "lt": expr.__lt__, "le": expr.__le__, "gt": expr.__gt__, "ge": expr.__ge__}
    if op in ops:
        return ops[op](value)  # type: ignore[no-any-return,unused-ignore]
    if op == "between":
        return and_(expr >= value[0], expr <= value[1])
    if op == "in":
        return expr.in_(value)  # type: ignore[no-any-return,unused-ignore]
    raise AssertionError(f"operator {op} on {kind}")


def _string_predicate(op: str, value: Any, expr: Any, sqlite: bool) -> ColumnElement[bool]:
    low = _lower(expr)
    if op == "eq":
        return low == _lower(literal(value))
    if op == "in":
        return low.in_([_lower(literal(v)) for v in value])
    if op in ("contains", "starts_with", "ends_with"):
        text = _like_escape(str(value))
        pattern = {"contains": f"%{text}%", "starts_with": f"{text}%", "ends_with": f"%{text}"}[op]
        return low.like(_lower(literal(pattern)), escape="\\")
    if op == "regex":
        # An inline (?i) works the same in Python's re (SQLite's REGEXP) and PostgreSQL's ARE.
        return expr.regexp_match(f"(?i){portable_regex(str(value), sqlite)}")  # type: ignore[no-any-return,unused-ignore]
    raise AssertionError(f"operator {op} on string")


_LEADING_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")
_WORD_BOUNDARY = re.compile(r"(?<!\\)((?:\\\\)*)\\([bB])")


def portable_regex(pattern: str, sqlite: bool) -> str:
    """One pattern, the same meaning on both databases: matching is always case-insensitive (we prefix
    `(?i)`, so a leading inline flag group of the user's is dropped rather than doubled), and Python's
    word boundaries `\\b`/`\\B` become PostgreSQL's `\\y`/`\\Y` (in PostgreSQL `\\b` is a backspace)."""
    pattern = _LEADING_FLAGS.sub("", pattern)
    if sqlite:
        return pattern
    return _WORD_BOUNDARY.sub(lambda m: m.group(1) + ("\\y" if m.group(2) == "b" else "\\Y"), pattern)


def period_bounds(op: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of today / this week (Monday first) / this month, in UTC."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if op == "today":
        return day, day + timedelta(days=1)
    if op == "this_week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _date_predicate(op: str, value: Any, expr: Any, ctx: _Ctx) -> ColumnElement[bool]:
    now = ctx.now
    if op in ("today", "this_week", "this_month"):
        start, end = period_bounds(op, now)
        return and_(expr >= start, expr < end)
    if op == "within_last":
        return expr >= now - parse_duration(value)  # type: ignore[no-any-return,unused-ignore]
    if op == "older_than":
        return expr < now - parse_duration(value)  # type: ignore[no-any-return,unused-ignore]
    if op == "between":
        return and_(expr >= parse_instant(value[0], now), expr <= parse_instant(value[1], now))
    at = parse_instant(value, now)
    cmp = {"lt": expr.__lt__, "before": expr.__lt__, "le": expr.__le__, "gt": expr.__gt__,
           "after": expr.__gt__, "ge": expr.__ge__}[op]
    return cmp(at)  # type: ignore[no-any-return,unused-ignore]


def _custom(key: str, op: str, value: Any, ctx: _Ctx) -> ColumnElement[bool]:
    """custom.<key>: typed by the rule's value; a stored value of another JSON type never matches."""
    col = lead.c.custom
    if ctx.sqlite:
        path = f'$."{key}"'
        typ: Any = func.json_type(col, path)
        raw: Any = func.json_extract(col, path)
        text = case((typ == "text", raw))
        number = case((typ.in_(("integer", "real")), raw))
        is_true, is_false = typ == "true", typ == "false"
    else:
        elem = col[key]
        typ = func.jsonb_typeof(elem)
        text = case((typ == "string", elem.as_string()))
        number = case((typ == "number", cast(elem.as_string(), Float)))
        is_true = and_(typ == "boolean", elem.as_string() == "true")
        is_false = and_(typ == "boolean", elem.as_string() == "false")
    if op == "not_empty":
        return and_(typ.is_not(None), typ != "null", func.coalesce(text, "x") != "")
    sample = value[0] if isinstance(value, list) else value
    if isinstance(sample, bool):
        if op == "eq":
            return is_true if value else is_false
        return or_(*(is_true if v else is_false for v in value))
    if isinstance(sample, (int, float)):
        return _predicate(F.NUMBER, op, value, number, ctx)
    return _string_predicate(op, value, text, ctx.sqlite)


# ------------------------------------------------------------------------------------------- behaviour


def _activity_filters(node: ActivityCondition, ctx: _Ctx) -> list[ColumnElement[bool]]:
    a = activity
    conds: list[ColumnElement[bool]] = [
        a.c.kind == node.kinds[0] if len(node.kinds) == 1 else a.c.kind.in_(node.kinds),
        a.c.bot == false(),
    ]
    if node.template is not None:
        conds.append(a.c.template_id.in_(
            select(template.c.id).where(_lower(template.c.name) == _lower(literal(node.template)))))
    if node.sequence is not None:
        conds.append(a.c.sequence_id.in_(
            select(sequence.c.id).where(_lower(sequence.c.name) == _lower(literal(node.sequence)))))
    if node.url is not None:
        conds.append(_lower(a.c.url).like(_lower(literal(url_like(node.url))), escape="\\"))
    if node.within is not None:
        conds.append(a.c.at >= ctx.now - parse_duration(node.within))
    if node.since is not None:
        conds.append(a.c.at >= parse_instant(node.since, ctx.now))
    if node.until is not None:
        conds.append(a.c.at < parse_instant(node.until, ctx.now))
    return conds


def _activity(node: ActivityCondition, ctx: _Ctx) -> ColumnElement[bool]:
    a = activity
    conds = _activity_filters(node, ctx)
    if node.last_op == "after":
        return _has(a.c.lead_id, ctx, *conds, a.c.at > parse_instant(node.last_value or "", ctx.now))
    if node.last_op == "before":
        cutoff = parse_instant(node.last_value or "", ctx.now)
        if ctx.probe:
            return and_(_has(a.c.lead_id, ctx, *conds), ~_has(a.c.lead_id, ctx, *conds, a.c.at >= cutoff))
        grouped = select(a.c.lead_id).where(*conds).group_by(a.c.lead_id).having(func.max(a.c.at) < cutoff)
        return lead.c.id.in_(grouped)

    n = node.count
    if node.count_op == "at_least":
        return _at_least(n, conds, ctx)
    if node.count_op == "at_most":
        return ~_at_least(n + 1, conds, ctx)
    if n == 0:
        return ~_at_least(1, conds, ctx)
    if ctx.probe:
        return _activity_count(conds) == n
    return lead.c.id.in_(select(a.c.lead_id).where(*conds).group_by(a.c.lead_id).having(func.count() == n))


def _activity_count(conds: list[ColumnElement[bool]]) -> ColumnElement[int]:
    return select(func.count()).select_from(activity).where(activity.c.lead_id == lead.c.id, *conds) \
        .scalar_subquery()


def _at_least(n: int, conds: list[ColumnElement[bool]], ctx: _Ctx) -> ColumnElement[bool]:
    if n <= 1:
        return _has(activity.c.lead_id, ctx, *conds)
    if ctx.probe:
        return _activity_count(conds) >= n
    return lead.c.id.in_(select(activity.c.lead_id).where(*conds).group_by(activity.c.lead_id)
                         .having(func.count() >= n))


def url_like(pattern: str) -> str:
    """A URL glob (`*` any run, `?` one character) as a LIKE pattern; no wildcard means "contains"."""
    if "*" not in pattern and "?" not in pattern:
        return f"%{_like_escape(pattern)}%"
    return _like_escape(pattern).replace("*", "%").replace("?", "_")


# ------------------------------------------------------------------------------------------ membership


def _find_segment(conn: Connection, name: str) -> Any:
    rows = conn.execute(
        select(segment.c.id, segment.c.name, segment.c.rule, segment.c.materialized)
        .where(func.lower(segment.c.name) == name.lower())
    ).all()
    exact = [r for r in rows if r.name == name]
    return (exact or rows)[0] if rows else None


def _in_segment(node: SegmentCondition, ctx: _Ctx, path: str) -> ColumnElement[bool]:
    row = _find_segment(ctx.conn, node.segment)
    if row is None:
        raise ValidationError(f"{path}.in_segment", f"no saved segment named {node.segment!r}")
    if row.name in ctx.seen:
        chain = " → ".join([*ctx.seen, row.name])
        raise ValidationError(f"{path}.in_segment", f"segment {row.name!r} refers to itself ({chain})")
    if row.materialized and ctx.use_materialized:
        return _has(segment_member.c.lead_id, ctx, segment_member.c.segment_id == row.id)
    inner = parse_rule(row.rule, f"segment {row.name!r}: rule")
    sub = replace(ctx, seen=(*ctx.seen, row.name))
    return _compile(inner.root, sub, f"segment {row.name!r}: rule")


def _sequence_source(node: SequenceCondition) -> tuple[Any, list[ColumnElement[bool]]]:
    e = enrollment
    conds: list[ColumnElement[bool]] = [
        e.c.sequence_id.in_(select(sequence.c.id).where(_lower(sequence.c.name) == _lower(literal(node.sequence))))]
    if node.status == "active":
        conds.append(e.c.status.in_(("active", "waiting")))
    elif node.status != "any":
        conds.append(e.c.status == node.status)
    return e.c.lead_id, conds


def _campaign_source(node: CampaignCondition) -> tuple[Any, list[ColumnElement[bool]]]:
    cm = campaign_member
    conds: list[ColumnElement[bool]] = [
        cm.c.campaign_id.in_(select(campaign.c.id).where(_lower(campaign.c.name) == _lower(literal(node.campaign))))]
    if node.status is not None:
        conds.append(_lower(cm.c.status) == _lower(literal(node.status)))
    return cm.c.lead_id, conds


def _mql_source(node: MqlCondition) -> tuple[Any, list[ColumnElement[bool]]]:
    """`any`: has ever been an MQL; otherwise the status of the lead's latest MQL record."""
    if node.status == "any":
        return mql.c.lead_id, []
    m, latest = mql.alias("m"), mql.alias("m_latest")
    newest = select(func.max(latest.c.id)).where(latest.c.lead_id == m.c.lead_id).scalar_subquery()
    return m.c.lead_id, [m.c.status == node.status, m.c.id == newest]


def _consent_source(node: ConsentCondition) -> tuple[Any, list[ColumnElement[bool]]]:
    """Consent rows are one per (lead, category): the (category, status, lead_id) index drives the set form,
    the primary key answers the probe."""
    conds: list[ColumnElement[bool]] = [consent.c.category == node.category]
    if node.status != "any":
        conds.append(consent.c.status == node.status)
    return consent.c.lead_id, conds


def _consent(node: ConsentCondition, ctx: _Ctx) -> ColumnElement[bool]:
    ref, conds = _consent_source(node)
    return _has(ref, ctx, *conds)


def _in_sequence(node: SequenceCondition, ctx: _Ctx) -> ColumnElement[bool]:
    ref, conds = _sequence_source(node)
    return _has(ref, ctx, *conds)


def _in_campaign(node: CampaignCondition, ctx: _Ctx) -> ColumnElement[bool]:
    ref, conds = _campaign_source(node)
    return _has(ref, ctx, *conds)


def _mql(node: MqlCondition, ctx: _Ctx) -> ColumnElement[bool]:
    ref, conds = _mql_source(node)
    return _has(ref, ctx, *conds)
