"""A SOQL subset: tokenizer, parser and a compiler to Python closures over stored records.

Covers what the sync and admins' scripts send: field lists with parent relationships (`Owner.Name`, polymorphic
`Owner`/`Who`/`What` through the `Name` object, TYPEOF), parent-to-child subqueries, `COUNT()` and the aggregate
functions COUNT/COUNT_DISTINCT/SUM/AVG/MIN/MAX with aliases, GROUP BY and HAVING, WHERE with AND/OR/NOT and
parentheses, = != <> < <= > >=, IN / NOT IN (values or a semi-/anti-join sub-select), LIKE, null, booleans,
numbers, quoted strings (backslash escapes), date and datetime literals, relative date literals
(TODAY, LAST_N_DAYS:n, THIS_QUARTER …), ORDER BY (ASC/DESC, NULLS FIRST/LAST), LIMIT, OFFSET.

Stored records hold wire-format values (datetimes as `2024-01-15T10:30:00.000+0000`, dates as
`2024-01-15`), which sort and compare correctly as strings, so literals are normalised to the same form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any


class SoqlError(Exception):
    """Malformed query (→ 400 MALFORMED_QUERY) or unknown field/object (→ 400 INVALID_FIELD/INVALID_TYPE).

    `pos` is the offset in the query text the error points at; `wire_message(q)` renders Salesforce's
    caret form (the query line, a `^` under the column, `ERROR at Row:r:Column:c`, then the message)."""

    def __init__(self, code: str, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos

    def wire_message(self, soql: str) -> str:
        if self.pos is None:
            return self.message
        before = soql[:self.pos]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        col = self.pos - line_start
        line_end = soql.find("\n", self.pos)
        line = soql[line_start:line_end if line_end >= 0 else len(soql)]
        return f"\n{line}\n{' ' * col}^\nERROR at Row:{row}:Column:{col + 1}\n{self.message}"


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<rel>[A-Za-z_]+:\d+)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b", "B": "\b", "f": "\f",
            "F": "\f", '"': '"', "'": "'", "\\": "\\"}
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
             "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "COUNT", "HAVING", "TYPEOF"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int = 0


def tokenize(q: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    q = q.rstrip()
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if not m or m.end() == pos:
            at = len(q) - len(q[pos:].lstrip())
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{q[pos:pos + 20].strip()}'", at)
        kind = m.lastgroup or ""
        out.append(Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def _unquote(raw: str, like: bool = False) -> str:
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_" and like:
                out.append("\\" + nxt)
            elif nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 4
            else:
                raise SoqlError("MALFORMED_QUERY", f"invalid escape sequence in string literal: \\{nxt}")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# ----------------------------------------------------------------------------------------------- literals
def format_datetime(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """Accept the datetime forms Salesforce accepts (Z, +00:00, +0000, optional fraction)."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    m = re.search(r"([+-]\d{2})(\d{2})$", t)
    if m and t[-5] in "+-":
        t = t[:-5] + f"{m.group(1)}:{m.group(2)}"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@dataclass(frozen=True)
class DateRange:
    """A relative date literal, resolved against `now` at evaluation time."""

    name: str
    n: int = 0

    def bounds(self, now: datetime) -> tuple[date, date]:
        today = now.date()  # `now` is in the querying user's time zone
        name, n = self.name, self.n
        simple = {"TODAY": (0, 0), "YESTERDAY": (-1, -1), "TOMORROW": (1, 1), "LAST_90_DAYS": (-90, 0),
                  "NEXT_90_DAYS": (0, 90)}
        if name in simple:
            a, b = simple[name]
            return today + timedelta(days=a), today + timedelta(days=b)
        if name == "LAST_N_DAYS":
            return today - timedelta(days=n), today
        if name == "NEXT_N_DAYS":  # from tomorrow on (Salesforce: "starts 00:00:00 of the next day")
            return today + timedelta(days=1), today + timedelta(days=n)
        if name == "N_DAYS_AGO":
            d = today - timedelta(days=n)
            return d, d
        week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday
        if name in ("THIS_WEEK", "LAST_WEEK", "NEXT_WEEK"):
            shift = {"THIS_WEEK": 0, "LAST_WEEK": -7, "NEXT_WEEK": 7}[name]
            s = week_start + timedelta(days=shift)
            return s, s + timedelta(days=6)
        if name == "LAST_N_WEEKS":
            return week_start - timedelta(days=7 * n), week_start - timedelta(days=1)
        if name == "NEXT_N_WEEKS":
            return week_start + timedelta(days=7), week_start + timedelta(days=7 * n + 6)
        if name == "N_WEEKS_AGO":
            s = week_start - timedelta(days=7 * n)
            return s, s + timedelta(days=6)
        if name in ("THIS_MONTH", "LAST_MONTH", "NEXT_MONTH"):
            first = _month_start(today, {"THIS_MONTH": 0, "LAST_MONTH": -1, "NEXT_MONTH": 1}[name])
            return first, _month_start(first, 1) - timedelta(days=1)
        if name == "LAST_N_MONTHS":  # the n whole months before this one
            return _month_start(today, -n), _month_start(today, 0) - timedelta(days=1)
        if name == "NEXT_N_MONTHS":
            return _month_start(today, 1), _month_start(today, n + 1) - timedelta(days=1)
        if name == "N_MONTHS_AGO":
            first = _month_start(today, -n)
            return first, _month_start(first, 1) - timedelta(days=1)
        if name in ("THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER", "LAST_N_QUARTERS", "NEXT_N_QUARTERS"):
            q0 = _month_start(today, -((today.month - 1) % 3))  # calendar quarters (the default fiscal year)
            span = {"THIS_QUARTER": (0, 1), "LAST_QUARTER": (-1, 0), "NEXT_QUARTER": (1, 2),
                    "LAST_N_QUARTERS": (-n, 0), "NEXT_N_QUARTERS": (1, n + 1)}[name]
            return _month_start(q0, 3 * span[0]), _month_start(q0, 3 * span[1]) - timedelta(days=1)
        years = {"THIS_YEAR": (0, 0), "LAST_YEAR": (-1, -1), "NEXT_YEAR": (1, 1), "LAST_N_YEARS": (-n, -1),
                 "NEXT_N_YEARS": (1, n), "N_YEARS_AGO": (-n, -n)}
        if name in years:
            a, b = years[name]
            return date(today.year + a, 1, 1), date(today.year + b, 12, 31)
        raise SoqlError("MALFORMED_QUERY", f"unknown date literal {name}")


def date_function(name: str, value: str | None) -> Any:
    """A date function of a stored date (`2024-01-15`) or datetime (`2024-01-15T10:30:00.000+0000`) value."""
    if not value:
        return None
    d = date.fromisoformat(value[:10])
    if name == "DAY_ONLY":
        return d.isoformat()
    if name == "HOUR_IN_DAY":
        return int(value[11:13]) if len(value) > 10 else 0
    out = {"CALENDAR_YEAR": d.year, "FISCAL_YEAR": d.year, "CALENDAR_QUARTER": (d.month - 1) // 3 + 1,
           "FISCAL_QUARTER": (d.month - 1) // 3 + 1, "CALENDAR_MONTH": d.month, "FISCAL_MONTH": d.month,
           "DAY_IN_MONTH": d.day, "DAY_IN_WEEK": (d.weekday() + 1) % 7 + 1,  # 1 = Sunday
           "DAY_IN_YEAR": d.timetuple().tm_yday, "WEEK_IN_MONTH": (d.day - 1) // 7 + 1,
           "WEEK_IN_YEAR": (d.timetuple().tm_yday - 1) // 7 + 1}
    return out[name]


def _month_start(d: date, months: int) -> date:
    """The first day of the month `months` away from `d`'s month."""
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


_RELATIVE = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_WEEK", "LAST_WEEK",
             "NEXT_WEEK", "THIS_MONTH", "LAST_MONTH", "NEXT_MONTH", "THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER",
             "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR"}
_RELATIVE_N = {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
               "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO", "LAST_N_QUARTERS", "NEXT_N_QUARTERS",
               "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO"}


@dataclass(frozen=True)
class Lit:
    kind: str  # str num bool null date datetime range
    value: Any


# ------------------------------------------------------------------------------------------------- AST
AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})


@dataclass(frozen=True)
class Agg:
    """An aggregate function in SELECT, HAVING or ORDER BY; `path` is None for COUNT()."""

    func: str
    path: str | None
    alias: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.func, self.path.lower() if self.path else None


@dataclass
class SubQuery:
    """A parent-to-child subquery in SELECT: `(SELECT … FROM Contacts …)`; `query.sobject` is the relationship."""

    query: Query


@dataclass
class TypeOf:
    """`TYPEOF Owner WHEN User THEN Username, Email WHEN Group THEN Name ELSE Name END`."""

    relationship: str
    whens: list[tuple[str, list[str]]]
    default: list[str]


@dataclass
class Query:
    sobject: str
    fields: list[str]  # plain field paths, in SELECT order
    count: bool = False  # SELECT COUNT() → totalSize only
    where: Any = None
    order: list[tuple[Any, bool, bool | None]] = field(default_factory=list)  # (path or Agg, desc, nulls_first)
    limit: int | None = None
    offset: int = 0
    items: list[Any] = field(default_factory=list)  # SELECT order: path str, Agg, SubQuery, TypeOf
    aliases: dict[str, str] = field(default_factory=dict)  # field path (lower) → alias (aggregate queries)
    group_by: list[str] = field(default_factory=list)
    having: Any = None
    positions: dict[str, int] = field(default_factory=dict)  # path (lower) → offset, for caret errors

    @property
    def aggregates(self) -> list[Agg]:
        return [i for i in self.items if isinstance(i, Agg)]

    @property
    def is_aggregate(self) -> bool:
        return bool(self.group_by) or bool(self.aggregates)


#: Date functions (Salesforce's default fiscal year is the calendar year, so FISCAL_* equal CALENDAR_*).
DATE_FUNCTIONS = frozenset({"CALENDAR_YEAR", "CALENDAR_QUARTER", "CALENDAR_MONTH", "DAY_IN_MONTH", "DAY_IN_WEEK",
                            "DAY_IN_YEAR", "DAY_ONLY", "HOUR_IN_DAY", "WEEK_IN_MONTH", "WEEK_IN_YEAR", "FISCAL_YEAR",
                            "FISCAL_QUARTER", "FISCAL_MONTH"})
FROM_POSITION = " from"  # the key of the FROM object's offset in Query.positions (no path has a space)
_CLAUSES = {"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "WITH", "FOR", "WHEN", "ELSE", "END",
            "THEN"}


class _Parser:
    def __init__(self, q: str) -> None:
        self.text = q
        self.toks = tokenize(q)
        self.i = 0
        self._nested_where = False  # inside a subquery's WHERE: no semi-joins there

    def _here(self) -> int:
        return self.toks[self.i].pos if self.i < len(self.toks) else len(self.text.rstrip())

    def fail(self, message: str, pos: int | None = None) -> SoqlError:
        return SoqlError("MALFORMED_QUERY", message, self._here() if pos is None else pos)

    def peek(self, upper: str | None = None) -> Tok | None:
        t = self.toks[self.i] if self.i < len(self.toks) else None
        if upper is None or t is None:
            return t
        return t if t.kind == "ident" and t.text.upper() == upper else None

    def peek_text(self, text: str, ahead: int = 0) -> bool:
        j = self.i + ahead
        return j < len(self.toks) and self.toks[j].text == text

    def take(self) -> Tok:
        if self.i >= len(self.toks):
            raise self.fail("unexpected token: <EOF>")
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect_kw(self, kw: str) -> None:
        t = self.peek()
        if not (t is not None and t.kind == "ident" and t.text.upper() == kw):
            raise self.fail(f"expecting '{kw}', unexpected token: {_shown(t)}")
        self.i += 1

    def expect(self, text: str) -> None:
        t = self.peek()
        if t is None or t.text != text:
            raise self.fail(f"expecting '{text}', unexpected token: {_shown(t)}")
        self.i += 1

    def accept_kw(self, kw: str) -> bool:
        if self.peek(kw):
            self.i += 1
            return True
        return False

    def ident(self) -> str:
        t = self.peek()
        if t is None or t.kind != "ident" or t.text.upper() in _KEYWORDS - {"FIRST", "LAST"}:
            raise self.fail(f"unexpected token: {_shown(t)}")
        self.i += 1
        return t.text

    def path(self, q: Query) -> str:
        """A field path, or a date function of one (`CALENDAR_YEAR(CreatedDate)`, kept as that text)."""
        pos = self._here()
        p = self.ident()
        if p.upper() in DATE_FUNCTIONS and self.peek_text("("):
            self.take()
            inner = self.path(q)
            self.expect(")")
            p = f"{p.upper()}({inner})"
        q.positions.setdefault(p.lower(), pos)
        return p

    def _is_agg_call(self) -> bool:
        t = self.peek()
        return t is not None and t.kind == "ident" and t.text.upper() in AGGREGATES and self.peek_text("(", 1)

    def agg(self, q: Query) -> Agg:
        func = self.take().text.upper()
        self.expect("(")
        if self.peek_text(")"):
            if func != "COUNT":
                raise self.fail(f"{func}() needs a field")
            path = None
        else:
            path = self.path(q)
        self.expect(")")
        return Agg(func, path)

    def _alias(self) -> str | None:
        t = self.peek()
        if t is not None and t.kind == "ident" and t.text.upper() not in _KEYWORDS | _CLAUSES:
            self.i += 1
            return t.text
        return None

    # ----------------------------------------------------------------------------------------- clauses
    def parse(self, nested: str | None = None, depth: int = 0) -> Query:
        """`nested` is None at the top, "child" in a parent-to-child subquery (up to 5 levels, as API 58+
        allows), "semi" in a semi-join sub-select (which nests nothing)."""
        self.expect_kw("SELECT")
        q = Query(sobject="", fields=[])
        while True:
            if self._is_agg_call():
                a = self.agg(q)
                if a.func == "COUNT" and a.path is None:
                    q.count = True
                else:
                    q.items.append(Agg(a.func, a.path, self._alias()))
            elif self.peek_text("("):
                if nested == "semi":
                    raise self.fail("a semi join sub-select cannot contain a subquery")
                if depth >= 4:
                    raise self.fail("SOQL statements support at most 5 levels of parent-to-child relationships")
                self.take()
                sub = self.parse(nested="child", depth=depth + 1)
                self.expect(")")
                q.items.append(SubQuery(sub))
            elif self.peek("TYPEOF"):
                q.items.append(self.typeof())
            elif self.peek("FIELDS") and self.peek_text("(", 1):
                pos = self._here()
                self.i += 2
                t = self.take()
                if t.text.upper() not in ("ALL", "STANDARD", "CUSTOM"):
                    raise self.fail(f"FIELDS takes ALL, STANDARD or CUSTOM, not {_shown(t)}", t.pos)
                self.expect(")")
                p = f"FIELDS({t.text.upper()})"
                q.positions.setdefault(p.lower(), pos)
                q.fields.append(p)
                q.items.append(p)
            else:
                if self.peek("TOLABEL") and self.peek_text("(", 1):  # labels are the values here
                    self.i += 2
                    p = self.path(q)
                    self.expect(")")
                else:
                    p = self.path(q)
                q.fields.append(p)
                q.items.append(p)
                alias = self._alias()
                if alias:
                    q.aliases[p.lower()] = alias
            if self.peek_text(","):
                self.take()
                continue
            break
        self.expect_kw("FROM")
        q.positions[FROM_POSITION] = self._here()
        q.sobject = self.ident()
        if q.count and q.items:
            raise self.fail("COUNT() cannot be combined with other fields", self.toks[0].pos)
        if self.accept_kw("WHERE"):
            outer = self._nested_where
            self._nested_where = outer or nested is not None
            q.where = self.expr(q, having=False)
            self._nested_where = outer
        if self.accept_kw("WITH"):  # WITH SECURITY_ENFORCED / USER_MODE / SYSTEM_MODE: sharing is not emulated
            self.ident()
        if self.accept_kw("GROUP"):
            self.expect_kw("BY")
            q.group_by.append(self.path(q))
            while self.peek_text(","):
                self.take()
                q.group_by.append(self.path(q))
        if q.count and q.group_by:
            raise self.fail("COUNT() cannot be used with GROUP BY; use COUNT(fieldName)", self.toks[0].pos)
        if self.accept_kw("HAVING"):
            if not q.group_by and not q.aggregates:
                raise self.fail("HAVING needs GROUP BY or an aggregate function")
            q.having = self.expr(q, having=True)
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            while True:
                key: Any = self.agg(q) if self._is_agg_call() else self.path(q)
                desc = False
                if self.accept_kw("DESC"):
                    desc = True
                else:
                    self.accept_kw("ASC")
                nulls: bool | None = None
                if self.accept_kw("NULLS"):
                    t = self.take()
                    if t.text.upper() not in ("FIRST", "LAST"):
                        raise self.fail(f"expecting FIRST or LAST, unexpected token: '{t.text}'", t.pos)
                    nulls = t.text.upper() == "FIRST"
                q.order.append((key, desc, nulls))
                if self.peek_text(","):
                    self.take()
                    continue
                break
        if self.accept_kw("LIMIT"):
            q.limit = self._int()
        if self.accept_kw("OFFSET"):
            q.offset = self._int()
        if self.accept_kw("FOR"):  # FOR VIEW / FOR REFERENCE / FOR UPDATE: accepted, nothing to emulate
            self.ident()
        if nested is None and self.i != len(self.toks):
            raise self.fail(f"unexpected token: '{self.toks[self.i].text}'")
        self._check_grouping(q)
        return q

    def _check_grouping(self, q: Query) -> None:
        if not q.is_aggregate:
            if any(isinstance(k, Agg) for k, _d, _n in q.order) or q.having is not None:
                raise SoqlError("MALFORMED_QUERY", "aggregate functions in ORDER BY or HAVING need an aggregate "
                                "query (GROUP BY or an aggregate in SELECT)", self.toks[0].pos)
            for item in q.items:
                if isinstance(item, str) and "(" in item and not item.startswith("FIELDS("):
                    raise SoqlError("MALFORMED_QUERY", f"{item.split('(')[0]} can only be selected in an aggregate "
                                    "query (with GROUP BY)", q.positions.get(item.lower()))
            return
        grouped = {g.lower() for g in q.group_by}
        for item in q.items:
            if isinstance(item, SubQuery | TypeOf):
                raise self.fail("subqueries and TYPEOF cannot be used in an aggregate query", self.toks[0].pos)
            if isinstance(item, str) and item.lower() not in grouped:
                raise SoqlError("MALFORMED_QUERY", f"Field must be grouped or aggregated: {item}",
                                q.positions.get(item.lower()))
        for key, _desc, _nulls in q.order:
            if isinstance(key, str) and key.lower() not in grouped and key not in q.aliases.values():
                raise SoqlError("MALFORMED_QUERY", f"Ordered field must be grouped or aggregated: {key}",
                                q.positions.get(key.lower()))

    def typeof(self) -> TypeOf:
        self.expect_kw("TYPEOF")
        rel = self.ident()
        whens: list[tuple[str, list[str]]] = []
        default: list[str] = []
        while self.accept_kw("WHEN"):
            sobject = self.ident()
            self.expect_kw("THEN")
            whens.append((sobject, self._field_list()))
        if self.accept_kw("ELSE"):
            default = self._field_list()
        self.expect_kw("END")
        if not whens and not default:
            raise self.fail("TYPEOF needs at least one WHEN … THEN")
        return TypeOf(rel, whens, default)

    def _field_list(self) -> list[str]:
        out = [self.ident()]
        while self.peek_text(","):
            self.take()
            out.append(self.ident())
        return out

    def _int(self) -> int:
        t = self.take()
        if t.kind != "num" or "." in t.text or t.text.startswith("-"):
            raise self.fail(f"expecting a non-negative integer, unexpected token: '{t.text}'", t.pos)
        return int(t.text)

    def expr(self, q: Query, having: bool) -> Any:
        start = self._here()
        parts = [self.term(q, having)]
        while self.accept_kw("OR"):
            parts.append(self.term(q, having))
        if len(parts) == 1:
            return parts[0]
        if any(_has_semi_join(p) for p in parts):
            raise self.fail("Semi join sub-selects are not allowed with the 'OR' operator", start)
        return ("or", parts)

    def term(self, q: Query, having: bool) -> Any:
        parts = [self.factor(q, having)]
        while self.accept_kw("AND"):
            parts.append(self.factor(q, having))
        return parts[0] if len(parts) == 1 else ("and", parts)

    def factor(self, q: Query, having: bool) -> Any:
        if self.accept_kw("NOT"):
            return ("not", self.factor(q, having))
        if self.peek_text("("):
            self.take()
            e = self.expr(q, having)
            self.expect(")")
            return e
        lhs: Any
        if self._is_agg_call():
            pos = self._here()
            lhs = self.agg(q)
            if not having:
                raise self.fail("Aggregate functions are not allowed in a WHERE clause; use HAVING", pos)
        else:
            lhs = self.path(q)
        if self.accept_kw("NOT"):
            self.expect_kw("IN")
            return self._in(q, lhs, True)
        if self.accept_kw("IN"):
            return self._in(q, lhs, False)
        if self.accept_kw("LIKE"):
            v = self.take()
            if v.kind != "str":
                raise self.fail("LIKE needs a string literal", v.pos)
            return ("like", lhs, _unquote(v.text, like=True))
        op = self.peek()
        if op is None or op.kind != "op":
            raise self.fail(f"unexpected token: {_shown(op)}")
        self.i += 1
        return ("cmp", lhs, "!=" if op.text == "<>" else op.text, self.value())

    def _in(self, q: Query, lhs: Any, negated: bool) -> Any:
        if self.peek_text("(") and self.i + 1 < len(self.toks) and self.toks[self.i + 1].text.upper() == "SELECT":
            pos = self._here()
            if self._nested_where:
                raise self.fail("Semi join sub-selects are only allowed at the top level WHERE expressions and not "
                                "in nested WHERE expressions.", pos)
            self.take()
            sub = self.parse(nested="semi")
            self.expect(")")
            if len(sub.items) != 1 or not isinstance(sub.items[0], str) or sub.is_aggregate:
                raise self.fail("a semi join sub-select can only select one Id or reference field", pos)
            return ("insub", lhs, sub, negated)
        return ("in", lhs, self.value_list(), negated)

    def value_list(self) -> list[Lit]:
        self.expect("(")
        out = [self.value()]
        while self.peek_text(","):
            self.take()
            out.append(self.value())
        self.expect(")")
        return out

    def value(self) -> Lit:
        t = self.take()
        if t.kind == "str":
            return Lit("str", _unquote(t.text))
        if t.kind == "num":
            return Lit("num", float(t.text) if "." in t.text else int(t.text))
        if t.kind == "dt":
            try:
                return Lit("datetime", format_datetime(parse_datetime(t.text)))
            except ValueError as exc:
                raise self.fail(f"invalid datetime literal '{t.text}'", t.pos) from exc
        if t.kind == "date":
            try:
                date.fromisoformat(t.text)
            except ValueError as exc:
                raise self.fail(f"invalid date literal '{t.text}'", t.pos) from exc
            return Lit("date", t.text)
        if t.kind == "rel":
            name, n = t.text.split(":")
            if name.upper() not in _RELATIVE_N:
                raise self.fail(f"unknown date literal '{t.text}'", t.pos)
            return Lit("range", DateRange(name.upper(), int(n)))
        if t.kind == "ident":
            up = t.text.upper()
            if up == "NULL":
                return Lit("null", None)
            if up in ("TRUE", "FALSE"):
                return Lit("bool", up == "TRUE")
            if up in _RELATIVE:
                return Lit("range", DateRange(up))
        raise self.fail(f"unexpected token: '{t.text}'", t.pos)


#: The SOQL statement length limit (salesforce-wire.md §9, "SOQL statement length: 100,000 characters").
MAX_SOQL_LENGTH = 100_000


def parse(q: str) -> Query:
    if len(q) > MAX_SOQL_LENGTH:
        raise SoqlError("MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_SOQL_LENGTH} characters")
    return _Parser(q).parse()


def _has_semi_join(node: Any) -> bool:
    if node[0] in ("and", "or"):
        return any(_has_semi_join(n) for n in node[1])
    if node[0] == "not":
        return _has_semi_join(node[1])
    return bool(node[0] == "insub")


def _shown(t: Tok | None) -> str:
    return f"'{t.text}'" if t is not None else "<EOF>"


# -------------------------------------------------------------------------------------------- compiling
Getter = Callable[[dict[str, Any]], Any]
Pred = Callable[[dict[str, Any]], bool]


def _fold(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _coerce(lit: Lit, ftype: str, now: datetime) -> Any:
    """Turn a literal into the stored representation of a field of `ftype` (for comparisons)."""
    v = lit.value
    if lit.kind == "null":
        return None
    if (ftype, lit.kind) in (("datetime", "date"), ("date", "datetime")):  # Salesforce does not convert either
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field must be of type "
                        f"{'dateTime' if ftype == 'datetime' else 'date'} and should not be enclosed in quotes: {v}")
    if ftype in ("boolean",) and lit.kind != "bool":
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for a boolean field must be true or false: {v}")
    if ftype in ("int", "double", "currency") and lit.kind != "num":
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for a number field must be numeric: {v}")
    if ftype in ("datetime", "date") and lit.kind == "str":
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field must be of type {ftype} and should "
                        "not be enclosed in quotes")
    if ftype in ("datetime", "date"):
        return v  # wire-format strings compare as they are ('T' must not be lower-cased)
    return _fold(v)


def _range_strs(rng: DateRange, ftype: str, now: datetime) -> tuple[str, str]:
    """The literal's first and last instant (datetime fields: the user's local days, in UTC) or day."""
    a, b = rng.bounds(now)
    if ftype == "datetime":
        start = datetime.combine(a, time.min, tzinfo=now.tzinfo)
        end = datetime.combine(b, time.max, tzinfo=now.tzinfo)
        return format_datetime(start), format_datetime(end)
    return a.isoformat(), b.isoformat()


def _cmp(get: Getter, ftype: str, op: str, lit: Lit, now: datetime) -> Pred:
    if lit.kind == "range":
        lo, hi = _range_strs(lit.value, ftype, now)
        ops: dict[str, Pred] = {
            "=": lambda r: (v := get(r)) is not None and lo <= v <= hi,
            "!=": lambda r: (v := get(r)) is None or not (lo <= v <= hi),
            "<": lambda r: (v := get(r)) is not None and v < lo,
            "<=": lambda r: (v := get(r)) is not None and v <= hi,
            ">": lambda r: (v := get(r)) is not None and v > hi,
            ">=": lambda r: (v := get(r)) is not None and v >= lo,
        }
        return ops[op]
    want = _coerce(lit, ftype, now)
    if want is None:
        if op == "=":
            return lambda r: get(r) is None
        if op == "!=":
            return lambda r: get(r) is not None
        raise SoqlError("MALFORMED_QUERY", f"null can only be compared with = or !=, not {op}")
    text = isinstance(want, str) and ftype not in ("datetime", "date")

    def g(r: dict[str, Any]) -> Any:
        v = get(r)
        return v.lower() if text and isinstance(v, str) else v

    if op == "=":
        return lambda r: g(r) == want
    if op == "!=":
        return lambda r: g(r) != want
    table: dict[str, Callable[[Any], bool]] = {
        "<": lambda a: a < want, "<=": lambda a: a <= want, ">": lambda a: a > want, ">=": lambda a: a >= want}
    test = table[op]
    return lambda r: (v := g(r)) is not None and test(v)


def _like_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def compile_where(node: Any, resolve: Callable[[Any], tuple[Getter, str]], now: datetime,
                  semi: Callable[[Query], set[Any]] | None = None) -> Pred:
    """`resolve(path or Agg)` returns (getter, field type) or raises SoqlError for an unknown field;
    `semi(subquery)` returns the values a semi-join (`Id IN (SELECT LeadId FROM …)`) selects."""
    kind = node[0]
    if kind == "and":
        preds = [compile_where(n, resolve, now, semi) for n in node[1]]
        return lambda r: all(p(r) for p in preds)
    if kind == "or":
        preds = [compile_where(n, resolve, now, semi) for n in node[1]]
        return lambda r: any(p(r) for p in preds)
    if kind == "not":
        inner = compile_where(node[1], resolve, now, semi)
        return lambda r: not inner(r)
    get, ftype = resolve(node[1])
    if kind == "insub":
        if semi is None:
            raise SoqlError("MALFORMED_QUERY", "semi join sub-selects are not supported here")
        if ftype not in ("id", "reference"):
            raise SoqlError("MALFORMED_QUERY", f"semi join sub-selects can only be used with an Id or reference "
                            f"field, not {node[1]}")
        values = semi(node[2])
        if node[3]:
            return lambda r: get(r) not in values
        return lambda r: get(r) in values
    if kind == "cmp":
        return _cmp(get, ftype, node[2], node[3], now)
    if kind == "in":
        wanted = {_coerce(lit, ftype, now) for lit in node[2]}
        negated = node[3]
        fold = _fold if ftype not in ("datetime", "date") else (lambda v: v)
        if negated:
            return lambda r: fold(get(r)) not in wanted
        return lambda r: fold(get(r)) in wanted
    if kind == "like":
        rx = _like_regex(node[2])
        return lambda r: isinstance(v := get(r), str) and rx.fullmatch(v) is not None
    raise SoqlError("MALFORMED_QUERY", f"unsupported condition {kind}")


def sort_rows(rows: list[dict[str, Any]], order: list[tuple[Getter, bool, bool | None]]) -> list[dict[str, Any]]:
    """Stable multi-key sort; nulls first for ASC and last for DESC unless NULLS says otherwise."""
    for get, desc, nulls_first in reversed(order):
        nf = (not desc) if nulls_first is None else nulls_first

        def key(r: dict[str, Any], get: Getter = get) -> Any:
            v = get(r)
            return _fold(v) if v is not None else ""

        present = [r for r in rows if get(r) is not None]
        missing = [r for r in rows if get(r) is None]
        present.sort(key=key, reverse=desc)
        rows = missing + present if nf else present + missing
    return rows
