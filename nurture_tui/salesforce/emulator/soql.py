"""A SOQL subset: tokenizer, parser and a compiler to Python closures over stored records.

Covers what the sync and a person at a prompt send: field lists with parent relationships (`Owner.Name`),
`COUNT()`, WHERE with AND/OR/NOT and parentheses, = != <> < <= > >=, IN / NOT IN, LIKE, null, booleans,
numbers, quoted strings (backslash escapes), date and datetime literals, relative date literals
(TODAY, LAST_N_DAYS:n …), ORDER BY (ASC/DESC, NULLS FIRST/LAST), LIMIT, OFFSET.

Stored records hold wire-format values (datetimes as `2024-01-15T10:30:00.000+0000`, dates as
`2024-01-15`), which sort and compare correctly as strings, so literals are normalised to the same form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any


class SoqlError(Exception):
    """Malformed query (→ 400 MALFORMED_QUERY) or unknown field/object (→ 400 INVALID_FIELD/INVALID_TYPE)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
             "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "COUNT"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str


def tokenize(q: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    q = q.rstrip()
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{q[pos:pos + 20].strip()}'")
        kind = m.lastgroup or ""
        out.append(Tok(kind, m.group(kind)))
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
        today = now.astimezone(UTC).date()
        name, n = self.name, self.n
        simple = {"TODAY": (0, 0), "YESTERDAY": (-1, -1), "TOMORROW": (1, 1), "LAST_90_DAYS": (-90, 0),
                  "NEXT_90_DAYS": (0, 90)}
        if name in simple:
            a, b = simple[name]
            return today + timedelta(days=a), today + timedelta(days=b)
        if name == "LAST_N_DAYS":
            return today - timedelta(days=n), today
        if name == "NEXT_N_DAYS":
            return today, today + timedelta(days=n)
        if name == "N_DAYS_AGO":
            d = today - timedelta(days=n)
            return d, d
        week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday
        if name in ("THIS_WEEK", "LAST_WEEK", "NEXT_WEEK"):
            shift = {"THIS_WEEK": 0, "LAST_WEEK": -7, "NEXT_WEEK": 7}[name]
            s = week_start + timedelta(days=shift)
            return s, s + timedelta(days=6)
        if name in ("THIS_MONTH", "LAST_MONTH", "NEXT_MONTH"):
            y, mo = today.year, today.month + {"THIS_MONTH": 0, "LAST_MONTH": -1, "NEXT_MONTH": 1}[name]
            y, mo = y + (mo - 1) // 12, (mo - 1) % 12 + 1
            first = date(y, mo, 1)
            nxt = date(y + mo // 12, mo % 12 + 1, 1)
            return first, nxt - timedelta(days=1)
        if name in ("THIS_YEAR", "LAST_YEAR"):
            y = today.year - (name == "LAST_YEAR")
            return date(y, 1, 1), date(y, 12, 31)
        raise SoqlError("MALFORMED_QUERY", f"unknown date literal {name}")


_RELATIVE = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_WEEK", "LAST_WEEK",
             "NEXT_WEEK", "THIS_MONTH", "LAST_MONTH", "NEXT_MONTH", "THIS_YEAR", "LAST_YEAR"}
_RELATIVE_N = {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"}


@dataclass(frozen=True)
class Lit:
    kind: str  # str num bool null date datetime range
    value: Any


# ------------------------------------------------------------------------------------------------- AST
@dataclass
class Query:
    sobject: str
    fields: list[str]
    count: bool = False
    count_expr: str | None = None  # COUNT(Id) → an AggregateResult row
    where: Any = None
    order: list[tuple[str, bool, bool | None]] = field(default_factory=list)  # (path, desc, nulls_first)
    limit: int | None = None
    offset: int = 0


class _Parser:
    def __init__(self, q: str) -> None:
        self.toks = tokenize(q)
        self.i = 0

    def peek(self, upper: str | None = None) -> Tok | None:
        t = self.toks[self.i] if self.i < len(self.toks) else None
        if upper is None or t is None:
            return t
        return t if t.kind == "ident" and t.text.upper() == upper else None

    def take(self) -> Tok:
        if self.i >= len(self.toks):
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect_kw(self, kw: str) -> None:
        t = self.take()
        if not (t.kind == "ident" and t.text.upper() == kw):
            raise SoqlError("MALFORMED_QUERY", f"expecting '{kw}', unexpected token: '{t.text}'")

    def expect(self, text: str) -> None:
        t = self.take()
        if t.text != text:
            raise SoqlError("MALFORMED_QUERY", f"expecting '{text}', unexpected token: '{t.text}'")

    def accept_kw(self, kw: str) -> bool:
        if self.peek(kw):
            self.i += 1
            return True
        return False

    def ident(self) -> str:
        t = self.take()
        if t.kind != "ident" or t.text.upper() in _KEYWORDS - {"FIRST", "LAST"}:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{t.text}'")
        return t.text

    def parse(self) -> Query:
        self.expect_kw("SELECT")
        fields: list[str] = []
        count = False
        count_expr = None
        while True:
            if self.peek("COUNT"):
                self.take()
                self.expect("(")
                if self.peek() and self.peek().text == ")":  # type: ignore[union-attr]
                    count = True
                else:
                    count_expr = self.ident()
                self.expect(")")
            else:
                fields.append(self.ident())
            if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                continue
            break
        self.expect_kw("FROM")
        q = Query(sobject=self.ident(), fields=fields, count=count, count_expr=count_expr)
        if count and fields:
            raise SoqlError("MALFORMED_QUERY", "COUNT() cannot be combined with other fields")
        if self.accept_kw("WHERE"):
            q.where = self.expr()
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            while True:
                path = self.ident()
                desc = False
                if self.accept_kw("DESC"):
                    desc = True
                else:
                    self.accept_kw("ASC")
                nulls: bool | None = None
                if self.accept_kw("NULLS"):
                    t = self.take()
                    nulls = t.text.upper() == "FIRST"
                q.order.append((path, desc, nulls))
                if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                    self.take()
                    continue
                break
        if self.accept_kw("LIMIT"):
            q.limit = self._int()
        if self.accept_kw("OFFSET"):
            q.offset = self._int()
        if self.i != len(self.toks):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.toks[self.i].text}'")
        return q

    def _int(self) -> int:
        t = self.take()
        if t.kind != "num" or "." in t.text or t.text.startswith("-"):
            raise SoqlError("MALFORMED_QUERY", f"expecting a non-negative integer, unexpected token: '{t.text}'")
        return int(t.text)

    def expr(self) -> Any:
        left = self.term()
        parts = [left]
        while self.accept_kw("OR"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def term(self) -> Any:
        parts = [self.factor()]
        while self.accept_kw("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def factor(self) -> Any:
        if self.accept_kw("NOT"):
            return ("not", self.factor())
        t = self.peek()
        if t is not None and t.text == "(":
            self.take()
            e = self.expr()
            self.expect(")")
            return e
        path = self.ident()
        if self.accept_kw("NOT"):
            self.expect_kw("IN")
            return ("in", path, self.value_list(), True)
        if self.accept_kw("IN"):
            return ("in", path, self.value_list(), False)
        if self.accept_kw("LIKE"):
            v = self.take()
            if v.kind != "str":
                raise SoqlError("MALFORMED_QUERY", "LIKE needs a string literal")
            return ("like", path, _unquote(v.text, like=True))
        op = self.take()
        if op.kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op.text}'")
        return ("cmp", path, "!=" if op.text == "<>" else op.text, self.value())

    def value_list(self) -> list[Lit]:
        self.expect("(")
        out = [self.value()]
        while self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
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
                raise SoqlError("MALFORMED_QUERY", f"invalid datetime literal '{t.text}'") from exc
        if t.kind == "date":
            return Lit("date", t.text)
        if t.kind == "rel":
            name, n = t.text.split(":")
            if name.upper() not in _RELATIVE_N:
                raise SoqlError("MALFORMED_QUERY", f"unknown date literal '{t.text}'")
            return Lit("range", DateRange(name.upper(), int(n)))
        if t.kind == "ident":
            up = t.text.upper()
            if up == "NULL":
                return Lit("null", None)
            if up in ("TRUE", "FALSE"):
                return Lit("bool", up == "TRUE")
            if up in _RELATIVE:
                return Lit("range", DateRange(up))
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{t.text}'")


def parse(q: str) -> Query:
    return _Parser(q).parse()


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
    if ftype == "datetime" and lit.kind == "date":
        return f"{v}T00:00:00.000+0000"
    if ftype == "date" and lit.kind == "datetime":
        return v[:10]
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
    a, b = rng.bounds(now)
    if ftype == "datetime":
        return f"{a.isoformat()}T00:00:00.000+0000", f"{b.isoformat()}T23:59:59.999+0000"
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


def compile_where(node: Any, resolve: Callable[[str], tuple[Getter, str]], now: datetime) -> Pred:
    """`resolve(path)` returns (getter, field type) or raises SoqlError for an unknown field."""
    kind = node[0]
    if kind == "and":
        preds = [compile_where(n, resolve, now) for n in node[1]]
        return lambda r: all(p(r) for p in preds)
    if kind == "or":
        preds = [compile_where(n, resolve, now) for n in node[1]]
        return lambda r: any(p(r) for p in preds)
    if kind == "not":
        inner = compile_where(node[1], resolve, now)
        return lambda r: not inner(r)
    get, ftype = resolve(node[1])
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
