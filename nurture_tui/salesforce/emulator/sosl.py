"""A SOSL subset for `GET …/search/?q=` (simple-salesforce's `search()`/`quick_search()`, jsforce's `search()`):

    FIND {terms} [IN ALL|NAME|EMAIL|PHONE FIELDS]
    [RETURNING Object [(Field, … [WHERE …] [ORDER BY …] [LIMIT n])], …] [LIMIT n]

Terms are whole words that must all appear (case-insensitive; `*` matches any run of word characters, `?` one;
a quoted phrase must appear as it is; `OR` between words makes either enough). Each RETURNING object is a SOQL query
(soql.py/query.py) whose rows are then kept when one of the searched fields matches. The answer is
`{"searchRecords": [records with attributes]}`; errors are `MALFORMED_SEARCH`.
"""

from __future__ import annotations

import re
from typing import Any

from .query import QueryResult
from .soql import SoqlError
from .store import Org

_FIND = re.compile(r"^\s*FIND\s*\{((?:[^}\\]|\\.)*)\}\s*(.*)$", re.IGNORECASE | re.DOTALL)
_IN = re.compile(r"^IN\s+(ALL|NAME|EMAIL|PHONE)\s+FIELDS\s*(.*)$", re.IGNORECASE | re.DOTALL)
_NAME_FIELDS = {"Name", "FirstName", "LastName", "Company", "Subject", "Title", "MasterLabel"}
_TEXT_TYPES = ("string", "email", "textarea", "picklist")


class SoslError(Exception):
    pass


def search(org: Org, sosl: str, user_id: str | None = None) -> list[tuple[QueryResult, list[dict[str, Any]]]]:
    """Returns, per RETURNING object, its query result and the matching rows (in that object's order)."""
    m = _FIND.match(sosl)
    if not m:
        raise SoslError("search must start with FIND {terms}")
    terms, rest = m.group(1), m.group(2).strip()
    scope = "ALL"
    m_in = _IN.match(rest)
    if m_in:
        scope, rest = m_in.group(1).upper(), m_in.group(2).strip()
    match = _matcher(terms)
    specs, overall_limit = _returning(org, rest)
    out: list[tuple[QueryResult, list[dict[str, Any]]]] = []
    left = overall_limit
    for sobject, fields, clauses, limit in specs:
        soql = f"SELECT {', '.join(fields)} FROM {sobject} {clauses}".strip()
        try:
            result = org.query(soql, user_id=user_id)
        except SoqlError as err:
            raise SoslError(f"{sobject}: {err.message}") from err
        o = org.schema[result.sobject]
        searched = [f.name for f in o.fields.values() if f.type in _TEXT_TYPES and _in_scope(f.name, f.type, scope)]
        with org.lock:
            rows = [r for r in result.records if any(match(r.get(n)) for n in searched)]
        if limit is not None:
            rows = rows[:limit]
        if left is not None:
            rows = rows[:left]
            left -= len(rows)
        out.append((result, rows))
    return out


def _in_scope(name: str, ftype: str, scope: str) -> bool:
    if scope == "NAME":
        return name in _NAME_FIELDS
    if scope == "EMAIL":
        return ftype == "email"
    if scope == "PHONE":
        return "Phone" in name
    return True


def _matcher(terms: str) -> Any:
    """All AND-ed groups must match; a group is one word (or quoted phrase) or several joined by OR."""
    tokens = re.findall(r'"[^"]*"|\S+', terms.replace("\\", ""))
    if not tokens:
        raise SoslError("search term must not be empty")
    groups: list[list[re.Pattern[str]]] = []
    join_next = False
    for tok in tokens:
        if tok.upper() == "OR":
            join_next = True
            continue
        if tok.upper() == "AND":
            continue
        words = tok.strip('"').split()
        rx = re.compile(r"\b" + r"\s+".join(_word(w) for w in words) + r"\b", re.IGNORECASE)
        if join_next and groups:
            groups[-1].append(rx)
        else:
            groups.append([rx])
        join_next = False

    def match(value: Any) -> bool:
        return isinstance(value, str) and all(any(rx.search(value) for rx in g) for g in groups)

    return match


def _word(word: str) -> str:
    """One search word as a regex: whole words only; `*` is any run of word characters, `?` one."""
    return r"\w*".join(r"\w".join(re.escape(p) for p in part.split("?")) for part in word.split("*"))


def _returning(org: Org, rest: str) -> tuple[list[tuple[str, list[str], str, int | None]], int | None]:
    """Parse `RETURNING A(f, g WHERE … LIMIT n), B [LIMIT n]` into (object, fields, clauses, limit) specs."""
    overall: int | None = None
    m_limit = re.search(r"\bLIMIT\s+(\d+)\s*$", rest, re.IGNORECASE)
    before = rest[:m_limit.start()] if m_limit else ""
    if m_limit and before.count("(") == before.count(")"):  # a LIMIT outside every object's parentheses
        overall = int(m_limit.group(1))
        rest = before.strip()
    if not rest:
        return [(o.name, ["Id"], "", None) for o in org.schema.values() if not o.setup], overall
    m = re.match(r"^RETURNING\s+(.*)$", rest, re.IGNORECASE | re.DOTALL)
    if not m:
        raise SoslError(f"unexpected text after FIND: '{rest[:30]}'")
    specs: list[tuple[str, list[str], str, int | None]] = []
    for part in _split_top(m.group(1)):
        name, _, inner = part.partition("(")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SoslError(f"unexpected object name in RETURNING: '{name}'")
        if not inner:
            specs.append((name, ["Id"], "", None))
            continue
        if not inner.rstrip().endswith(")"):
            raise SoslError(f"missing ')' after {name}(")
        body = inner.rstrip()[:-1]
        m_clause = re.search(r"\b(WHERE|ORDER\s+BY|LIMIT|OFFSET)\b", body, re.IGNORECASE)
        fields_text, clauses = (body[:m_clause.start()], body[m_clause.start():]) if m_clause else (body, "")
        limit = None
        m_lim = re.search(r"\bLIMIT\s+(\d+)\s*$", clauses, re.IGNORECASE)
        if m_lim:
            limit = int(m_lim.group(1))
            clauses = clauses[:m_lim.start()]
        fields = [f.strip() for f in fields_text.split(",") if f.strip()] or ["Id"]
        specs.append((name, fields, clauses.strip(), limit))
    return specs, overall


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]
