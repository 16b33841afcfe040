"""Evaluates parsed SOQL (soql.py) against the org's stored records.

Field paths resolve through the schema: `Owner.Name` follows OwnerId; a polymorphic relationship (a Lead's
`Owner`: User or queue; a Task's `Who`/`What`) resolves through Salesforce's `Name` object, whose `Type` is the
referenced record's type (`Queue` for a queue). Aggregate queries (COUNT/COUNT_DISTINCT/SUM/AVG/MIN/MAX, GROUP
BY, HAVING) produce AggregateResult rows; parent-to-child subqueries and TYPEOF are kept for the projector
(rest.py), which shapes each page; semi-/anti-joins (`Id IN (SELECT LeadId FROM CampaignMember …)`) are
evaluated once per query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, Protocol

from .schema import CHILD_RELATIONSHIPS, NAME_OBJECT, FieldDef, ObjectDef
from .soql import (
    FROM_POSITION,
    Agg,
    Getter,
    Query,
    SoqlError,
    SubQuery,
    TypeOf,
    compile_where,
    date_function,
    parse,
    sort_rows,
)


class RecordSource(Protocol):
    """What the evaluator reads from the org (store.Org)."""

    schema: dict[str, ObjectDef]
    records: dict[str, dict[str, dict[str, Any]]]
    clock: Callable[[], datetime]

    def find(self, record_id: str) -> dict[str, Any] | None: ...

    def type_of(self, record_id: str) -> str | None: ...


@dataclass
class QueryResult:
    sobject: str
    records: list[dict[str, Any]]  # raw stored records (filtered, ordered, limited) or AggregateResult rows
    total: int
    count_only: bool
    columns: list[str]  # canonical plain select paths
    getters: list[Getter]
    aggregate: bool = False  # records are ready AggregateResult rows
    query: Query | None = None  # for subqueries and TYPEOF (projector)
    include_deleted: bool = False
    now: datetime | None = None  # the query's "now" in the user's time zone (subqueries' date literals)

    @property
    def nested(self) -> bool:
        """The rows need more than plain columns (subqueries or TYPEOF): not servable as Bulk CSV."""
        return self.query is not None and any(isinstance(i, SubQuery | TypeOf) for i in self.query.items)


@lru_cache(maxsize=512)
def parse_cached(soql: str) -> Query:
    return parse(soql)


def field_of(o: ObjectDef, name: str) -> FieldDef:
    f = o.field(name)
    if f is None:
        raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{o.name}'. If you are attempting "
                        "to use a custom field, be sure to append the '__c' after the custom field name. Please "
                        "reference your WSDL or the describe call for the appropriate names.")
    return f


def name_value(rec: dict[str, Any], sobject: str, name: str) -> Any:
    """One `Name`-object field of a referenced record of type `sobject` (`Type` is `Queue` for a queue)."""
    if name == "Type":
        return rec.get("Type") if sobject == "Group" else sobject
    if name == "Name" and sobject == "Task":
        return rec.get("Subject")
    return rec.get(name)


def name_view(org: RecordSource, record_id: str | None) -> dict[str, Any] | None:
    """A referenced record as the `Name` object shows it (polymorphic relationships)."""
    rec = org.find(record_id) if record_id else None
    if rec is None:
        return None
    sobject = org.type_of(rec["Id"]) or ""
    return {n: name_value(rec, sobject, n) for n in NAME_OBJECT.fields}


def target_of(org: RecordSource, owner: ObjectDef, f: FieldDef) -> ObjectDef:
    """The object a relationship field leads to: the `Name` object when it is polymorphic."""
    if len(f.reference_to) > 1:
        return NAME_OBJECT
    target = f.reference_to[0] if f.reference_to else "User"
    return owner if target == "Self" else org.schema[target]


def child_relationship(org: RecordSource, parent: ObjectDef, name: str) -> tuple[ObjectDef, FieldDef]:
    for (child, fk), rel in CHILD_RELATIONSHIPS.items():
        if rel.lower() != name.lower() or child not in org.schema:
            continue
        f = org.schema[child].fields[fk]
        if parent.name in f.reference_to:
            return org.schema[child], f
    raise SoqlError("INVALID_TYPE", f"Didn't understand relationship '{name}' in FROM part of query call. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                    "relationship name. Please reference your WSDL or the describe call for the appropriate names.")


class Resolver:
    """Field path → (getter, field type, canonical path) on one object; unknown names raise INVALID_FIELD at the
    path's position in the query."""

    def __init__(self, org: RecordSource, o: ObjectDef, q: Query, now: datetime | None = None) -> None:
        self.org, self.o, self.q = org, o, q
        self.now = now or org.clock()  # in the querying user's time zone: relative date literals use it

    def __call__(self, path: str) -> tuple[Getter, str, str]:
        try:
            return self._resolve(path)
        except SoqlError as err:
            if err.pos is None:
                err.pos = self.q.positions.get(path.lower())
            raise

    def _date_function(self, func: str, path: str) -> tuple[Getter, str, str]:
        """CALENDAR_YEAR(CreatedDate) and friends: an int (DAY_ONLY: a date) of a date or datetime field."""
        get, ftype, canon = self._resolve(path)
        if ftype not in ("date", "datetime"):
            raise SoqlError("MALFORMED_QUERY", f"{func} needs a date or dateTime field, not {path}")
        return (lambda r: date_function(func, get(r))), "date" if func == "DAY_ONLY" else "int", f"{func}({canon})"

    def _resolve(self, path: str) -> tuple[Getter, str, str]:
        func, _, inner = path.partition("(")
        if inner:
            return self._date_function(func, inner[:-1])
        o = self.o
        parts = path.split(".")
        if len(parts) > 1 and parts[0].lower() == o.name.lower():
            parts = parts[1:]  # `Lead.Email` is allowed
        cur = o
        chain: list[tuple[str, bool]] = []  # (reference field, polymorphic)
        canon: list[str] = []
        for rel in parts[:-1]:
            f = cur.relationships.get(rel.lower())
            if f is None:
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in field path. If you "
                                "are attempting to use a custom relationship, be sure to append the '__r' after "
                                "the custom relationship name. Please reference your WSDL or the describe call for "
                                "the appropriate names.")
            nxt = target_of(self.org, cur, f)
            chain.append((f.name, nxt is NAME_OBJECT))
            canon.append(f.relationship or rel)
            cur = nxt  # the Name object has no relationships: `Owner.Profile.Name` stops here
        leaf = field_of(cur, parts[-1])
        canon.append(leaf.name)
        if not chain:
            name = leaf.name
            return (lambda r: r.get(name)), leaf.type, name
        org = self.org
        leaf_name = leaf.name

        def get(r: dict[str, Any]) -> Any:
            cur_rec: dict[str, Any] | None = r
            for fk, poly in chain:
                rid = cur_rec.get(fk) if cur_rec else None
                cur_rec = org.find(rid) if rid else None
                if poly and cur_rec is not None:  # only ever the last hop: the Name object has no relationships
                    return name_value(cur_rec, org.type_of(cur_rec["Id"]) or "", leaf_name)
            return cur_rec.get(leaf_name) if cur_rec else None

        return get, leaf.type, ".".join(canon)


def evaluate(org: RecordSource, soql: str, include_deleted: bool = False, tz: tzinfo | None = None) -> QueryResult:
    """Run one query (the caller holds the org's lock); `tz` is the querying user's time zone (Salesforce
    evaluates TODAY, LAST_N_DAYS:n … in it; date functions stay in UTC)."""
    q = parse_cached(soql)
    o = _object(org, q)
    now = org.clock()
    resolve = Resolver(org, o, q, now.astimezone(tz) if tz is not None else now)
    rows = _filter(org, o, q, resolve, include_deleted)
    if q.is_aggregate:
        return _aggregate(o, q, resolve, rows)
    if q.order:
        rows = sort_rows(rows, [(resolve(p)[0], desc, nulls) for p, desc, nulls in q.order])
    rows = _window(q, rows)
    if q.count:
        return QueryResult(o.name, [], len(rows), True, [], [])
    resolved = [resolve(p) for p in _expand_fields(o, q)]
    for item in q.items:  # fail at query time, not on the first page
        if isinstance(item, SubQuery):
            child_relationship(org, o, item.query.sobject)
        elif isinstance(item, TypeOf):
            _typeof_field(o, item)
    return QueryResult(o.name, rows, len(rows), False, [c for _, _, c in resolved], [g for g, _, _ in resolved],
                       query=q, include_deleted=include_deleted, now=resolve.now)


def _expand_fields(o: ObjectDef, q: Query) -> list[str]:
    """FIELDS(ALL|STANDARD|CUSTOM) → the object's field names (ALL and CUSTOM need LIMIT ≤ 200, as on a real org)."""
    out: list[str] = []
    for p in q.fields:
        kind = p[7:-1] if p.startswith("FIELDS(") else None
        if kind is None:
            out.append(p)
            continue
        if kind != "STANDARD" and (q.limit is None or q.limit > 200):
            raise SoqlError("MALFORMED_QUERY", "The SOQL FIELDS function must have a LIMIT of at most 200",
                            q.positions.get(p.lower()))
        out += [f.name for f in o.fields.values() if kind == "ALL" or f.custom == (kind == "CUSTOM")]
    return list(dict.fromkeys(out))


def _object(org: RecordSource, q: Query) -> ObjectDef:
    o = next((v for k, v in org.schema.items() if k.lower() == q.sobject.lower()), None)
    if o is None:
        raise SoqlError("INVALID_TYPE", f"sObject type '{q.sobject}' is not supported. If you are attempting to use "
                        "a custom object, be sure to append the '__c' after the entity name. Please reference your "
                        "WSDL or the describe call for the appropriate names.", q.positions.get(FROM_POSITION))
    return o


def _filter(org: RecordSource, o: ObjectDef, q: Query, resolve: Resolver,
            include_deleted: bool) -> list[dict[str, Any]]:
    rows: Iterable[dict[str, Any]] = org.records[o.name].values()
    if not include_deleted:
        rows = (r for r in rows if not r["IsDeleted"])
    if q.where is None:
        return list(rows)

    def semi(sub: Query) -> set[Any]:
        inner = _object(org, sub)
        inner_resolve = Resolver(org, inner, sub, resolve.now)
        get, ftype, _ = inner_resolve(sub.fields[0])
        if ftype not in ("id", "reference"):
            raise SoqlError("MALFORMED_QUERY", "a semi join sub-select can only select an Id or reference field, "
                            f"not {sub.fields[0]}", sub.positions.get(sub.fields[0].lower()))
        rows = _filter(org, inner, sub, inner_resolve, False)
        if sub.order:  # a LIMIT in the sub-select keeps the first rows in its order
            rows = sort_rows(rows, [(inner_resolve(p)[0], desc, nulls) for p, desc, nulls in sub.order])
        return {get(r) for r in _window(sub, rows)} - {None}

    pred = compile_where(q.where, lambda p: resolve(p)[:2], resolve.now, semi)
    return [r for r in rows if pred(r)]


def _window(q: Query, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if q.offset:
        rows = rows[q.offset:]
    if q.limit is not None:
        rows = rows[:q.limit]
    return rows


# ------------------------------------------------------------------------------------------ aggregates
def _agg_value(func: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if func == "COUNT":
        return len(present)
    if func == "COUNT_DISTINCT":
        return len({v.lower() if isinstance(v, str) else v for v in present})
    if not present:
        return None
    if func == "SUM":
        return sum(present)
    if func == "AVG":
        return sum(present) / len(present)
    return min(present) if func == "MIN" else max(present)


def _agg_type(func: str, ftype: str) -> str:
    return "int" if func.startswith("COUNT") else "double" if func in ("SUM", "AVG") else ftype


def _aggregate(o: ObjectDef, q: Query, resolve: Resolver, rows: list[dict[str, Any]]) -> QueryResult:
    """GROUP BY / aggregate functions → AggregateResult rows (keys: alias, the grouped field's name, exprN)."""
    aggs: dict[tuple[str, str | None], Agg] = {}
    for a in [*q.aggregates, *_aggs_in(q.having), *(k for k, _d, _n in q.order if isinstance(k, Agg))]:
        aggs.setdefault(a.key, a)
    agg_get: dict[tuple[str, str | None], tuple[Getter, str]] = {}
    for key, a in aggs.items():
        if a.path is None:
            agg_get[key] = ((lambda r: 1), "int")
            continue
        get, ftype, _ = resolve(a.path)
        if a.func in ("SUM", "AVG") and ftype not in ("int", "double", "currency", "percent"):
            raise SoqlError("MALFORMED_QUERY", f"field {a.path} does not support aggregate operator {a.func}",
                            q.positions.get(a.path.lower()))
        agg_get[key] = (get, ftype)
    group_get = {g.lower(): resolve(g) for g in q.group_by}
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        gkey = tuple(_fold_key(g(r)) for g, _t, _c in group_get.values())
        groups.setdefault(gkey, []).append(r)
    if not q.group_by and not groups:
        groups[()] = []  # an aggregate without GROUP BY always answers one row
    out: list[dict[str, Any]] = []
    for members in groups.values():
        first = members[0] if members else {}
        row = {"keys": {g: get(first) if members else None for g, (get, _t, _c) in group_get.items()},
               "aggs": {k: _agg_value(aggs[k].func, [get(r) for r in members]) for k, (get, _t) in agg_get.items()}}
        out.append(row)

    def row_resolve(lhs: Any) -> tuple[Getter, str]:
        if isinstance(lhs, Agg):
            key = lhs.key
            return (lambda r: r["aggs"][key]), _agg_type(lhs.func, agg_get[key][1])
        alias = next((a for a in q.aggregates if a.alias and a.alias.lower() == lhs.lower()), None)
        if alias is not None:
            return row_resolve(alias)
        g = lhs.lower()
        if g not in group_get:
            raise SoqlError("MALFORMED_QUERY", f"Field must be grouped or aggregated: {lhs}", q.positions.get(g))
        return (lambda r: r["keys"][g]), group_get[g][1]

    if q.having is not None:
        pred = compile_where(q.having, row_resolve, resolve.now)
        out = [r for r in out if pred(r)]
    if q.order:
        out = sort_rows(out, [(row_resolve(k)[0], desc, nulls) for k, desc, nulls in q.order])
    out = _window(q, out)
    records = [_aggregate_record(q, group_get, r) for r in out]
    return QueryResult(o.name, records, len(records), False, [], [], aggregate=True, query=q)


def _fold_key(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _aggs_in(node: Any) -> list[Agg]:
    if node is None:
        return []
    if node[0] in ("and", "or"):
        return [a for n in node[1] for a in _aggs_in(n)]
    if node[0] == "not":
        return _aggs_in(node[1])
    return [node[1]] if isinstance(node[1], Agg) else []


def _aggregate_record(q: Query, group_get: dict[str, tuple[Getter, str, str]],
                      row: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
    expr = 0
    for item in q.items:
        if isinstance(item, Agg):
            name = item.alias
            if name is None:
                name = f"expr{expr}"
                expr += 1
            rec[name] = row["aggs"][item.key]
        elif isinstance(item, str):
            name = q.aliases.get(item.lower())
            if name is None and "(" in item:  # an unaliased date function is an expression too
                name = f"expr{expr}"
                expr += 1
            rec[name or group_get[item.lower()][2].split(".")[-1]] = row["keys"][item.lower()]
    return rec


# ---------------------------------------------------------------------------------- child rows, TYPEOF
def _typeof_field(o: ObjectDef, item: TypeOf) -> FieldDef:
    f = o.relationships.get(item.relationship.lower())
    if f is None or len(f.reference_to) < 2:
        raise SoqlError("MALFORMED_QUERY", f"TYPEOF needs a polymorphic relationship field, not {item.relationship}")
    return f


@dataclass
class ChildRows:
    """The children of each parent row for one parent-to-child subquery (built once per query page set)."""

    relationship: str
    sobject: str
    columns: list[str]
    by_parent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def child_rows(org: RecordSource, parent: ObjectDef, sub: Query, include_deleted: bool,
               now: datetime | None = None) -> ChildRows:
    child, fk = child_relationship(org, parent, sub.sobject)
    resolve = Resolver(org, child, sub, now)
    rows = _filter(org, child, sub, resolve, include_deleted)
    if sub.order:
        rows = sort_rows(rows, [(resolve(p)[0], desc, nulls) for p, desc, nulls in sub.order])
    out = ChildRows(CHILD_RELATIONSHIPS[(child.name, fk.name)], child.name, [resolve(p)[2] for p in sub.fields])
    for r in rows:
        pid = r.get(fk.name)
        if pid:
            out.by_parent.setdefault(pid, []).append(r)
    if sub.limit is not None or sub.offset:
        out.by_parent = {k: _window(sub, v) for k, v in out.by_parent.items()}
    return out


def typeof_fields(org: RecordSource, o: ObjectDef, item: TypeOf) -> tuple[str, dict[str, list[str]], list[str]]:
    """(reference field, per-type canonical field names, ELSE field names) of a TYPEOF item."""
    f = _typeof_field(o, item)
    per_type: dict[str, list[str]] = {}
    for sobject, names in item.whens:
        target = next((v for k, v in org.schema.items() if k.lower() == sobject.lower()), None)
        if target is None or target.name not in f.reference_to:
            raise SoqlError("MALFORMED_QUERY", f"TYPEOF {item.relationship}: {sobject} is not one of "
                            f"{', '.join(f.reference_to)}")
        per_type[target.name] = [field_of(target, n).name for n in names]
    return f.name, per_type, [field_of(NAME_OBJECT, n).name for n in item.default]
