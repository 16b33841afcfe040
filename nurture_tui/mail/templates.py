"""Email templates: a sandboxed Jinja2 environment, validation at save time, a compile cache, preview.

- `SandboxedEnvironment` + `StrictUndefined`: a template cannot reach Python internals
  (`{{ ''.__class__.__mro__ }}` is refused when saved, and would raise `SecurityError` if rendered),
  and a misspelt merge field is an error, not an empty string.
- The HTML part is autoescaped; the subject and text parts are not (they are not HTML). A template
  without a text part gets one derived from its HTML source once per version (`html_template_to_text`). Subjects are
  folded onto one line after rendering, so a merge value can never add a header (see `one_line`).
- `None` renders as an empty string, and `default`/`d`/`fallback` also replace None and "":
  `{{ lead.first_name | default("there") }}`.
- `upsert_template` validates syntax and every merge field against `context.SCHEMA`; errors name the
  part and line: `template welcome: html line 3: unknown merge field lead.frist_name`.
- `TemplateCache` compiles each (template id, version) once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Connection, insert, select, update

from ..errors import NotFoundError, ValidationError
from ..store import audit
from ..store.tables import template, template_version
from .context import SCHEMA, OpenDict
from .htmltext import html_template_to_text

PARTS = ("subject", "html", "text")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


def one_line(value: str) -> str:
    """Collapse CR, LF and every other control character to single spaces: safe as a header value."""
    return " ".join(_CONTROL_RE.sub(" ", value).split())


def _fallback(value: Any, default: Any = "", boolean: bool = False) -> Any:
    """`default` that also treats None and "" as missing (merge fields are often NULL columns)."""
    if value is None or isinstance(value, Undefined) or value == "" or (boolean and not value):
        return default
    return value


def _finalize(value: Any) -> Any:
    return "" if value is None else value


class _MailEnvironment(SandboxedEnvironment):
    """The sandbox, with dict context values read by key first (they are plain data, and this avoids an
    AttributeError round trip per merge field on the hot path)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        elif kind is OpenDict:
            return obj[attribute]  # plain data; a missing custom field is None
        elif kind is LoopContext and not attribute.startswith("_"):
            # loop.index / loop.first …: a Jinja object whose public attributes are all safe
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        return super().getattr(obj, attribute)


def _make_env(autoescape: bool) -> SandboxedEnvironment:
    env = _MailEnvironment(
        undefined=StrictUndefined, autoescape=autoescape, finalize=_finalize, keep_trailing_newline=True,
        auto_reload=False, cache_size=0,
    )
    env.filters["default"] = env.filters["d"] = env.filters["fallback"] = _fallback
    return env


HTML_ENV = _make_env(autoescape=True)
TEXT_ENV = _make_env(autoescape=False)


def _env(part: str) -> SandboxedEnvironment:
    return HTML_ENV if part == "html" else TEXT_ENV


def base_context() -> dict[str, Any]:
    """The environment globals (range, dict, cycler …) as a plain dict, to start a render context from."""
    return dict(HTML_ENV.globals)


def render(tpl: JinjaTemplate, ctx: dict[str, Any]) -> str:
    """`tpl.render(ctx)` without copying the context: `ctx` must start from `base_context()`.

    Jinja's own `render` rebuilds a dict from a ChainMap of globals on every call (and `new_context` makes
    a set of them), a noticeable share of the compose hot path. The context dict is not modified
    (template assignments live in the Context)."""
    env = tpl.environment
    return "".join(tpl.root_render_func(env.context_class(env, ctx, tpl.name, tpl.blocks)))


# ---------------------------------------------------------------------------------------------------
# Validation


#: `str.format` reaches attributes through the format string ("{0.__class__}"); the sandbox checks that
#: at render time, but we refuse it at save time: use the `format` filter (%-style) instead.
_REFUSED_ATTRS = frozenset({"format", "format_map", "mro"})


def _unsafe(attr: str) -> bool:
    return attr.startswith("_") or attr in _REFUSED_ATTRS


def _check_ast(tree: nodes.Template, where: str) -> set[str]:
    """Refuse private attribute access and unknown merge fields; return the context roots used."""
    undeclared = meta.find_undeclared_variables(tree)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name in undeclared and name.name not in SCHEMA \
                and name.name not in HTML_ENV.globals:  # range, dict, cycler, joiner, namespace, lipsum
            raise ValidationError(f"{where} line {name.lineno}", f"unknown merge field {name.name!r} "
                                  f"(available: {', '.join(sorted(SCHEMA))})")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        attr: Any = None
        if isinstance(node, nodes.Getattr):
            attr = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            arg = node.args[0]
            if not isinstance(arg, nodes.Const):
                raise ValidationError(f"{where} line {node.lineno}", "attr filter needs a literal attribute name")
            attr = arg.value
        if isinstance(attr, str) and _unsafe(attr):
            raise ValidationError(f"{where} line {node.lineno}", f"access to {attr!r} is not allowed")
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(attr, str):
            base = node.node
            if isinstance(base, nodes.Name) and base.name in undeclared and base.name in SCHEMA:
                allowed = SCHEMA[base.name]
                if allowed is not None and attr not in allowed:
                    raise ValidationError(
                        f"{where} line {node.lineno}",
                        f"unknown merge field {base.name}.{attr} (available: {', '.join(sorted(allowed))})",
                    )
    return {n for n in undeclared if n in SCHEMA}


def _lead_fields(tree: nodes.Template) -> frozenset[str] | None:
    """The `lead.*` fields a part reads, or None when it uses `lead` as a whole (passes it to a macro or
    filter, or indexes it with a variable): then compose loads every field."""
    named = [n for n in tree.find_all(nodes.Name) if n.name == "lead" and n.ctx == "load"]
    fields: set[str] = set()
    direct = 0
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        base = node.node
        if not (isinstance(base, nodes.Name) and base.name == "lead" and base.ctx == "load"):
            continue
        if isinstance(node, nodes.Getattr):
            attr: Any = node.attr
        else:
            attr = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if not isinstance(attr, str):
            return None
        fields.add(attr)
        direct += 1
    return frozenset(fields) if direct == len(named) else None


@dataclass(frozen=True)
class CheckedPart:
    template: JinjaTemplate
    roots: frozenset[str]  # context roots the part uses
    lead_fields: frozenset[str] | None  # lead fields it reads (None = all of them)


def validate_part(source: str, part: str, name: str) -> CheckedPart:
    """Parse, check and compile one part; raise ValidationError naming template, part and line."""
    where = f"template {name}: {part}"
    env = _env(part)
    try:
        tree = env.parse(source)
        roots = _check_ast(tree, where)
        compiled = env.from_string(source)  # also checks filters/tests exist
    except TemplateSyntaxError as exc:
        raise ValidationError(f"{where} line {exc.lineno}", exc.message or "syntax error") from None
    return CheckedPart(compiled, frozenset(roots), _lead_fields(tree))


@dataclass(frozen=True)
class CompiledTemplate:
    id: int
    name: str
    version: int
    category: str
    stage: str | None
    subject: JinjaTemplate
    html: JinjaTemplate
    text: JinjaTemplate  # the text part, or one derived from the HTML source (text_derived)
    roots: frozenset[str]  # context roots the template uses (lets compose skip loading the rest)
    text_derived: bool = False
    lead_fields: frozenset[str] | None = None  # `lead.*` fields it reads (None = all: compose loads every one)


def compile_template(
    *, id: int, name: str, version: int, category: str, stage: str | None, subject: str, html: str,
    text: str | None,
) -> CompiledTemplate:
    parts = (validate_part(subject, "subject", name), validate_part(html, "html", name),
             validate_part(text, "text", name) if text
             else validate_part(html_template_to_text(html), "html (as text)", name))
    fields: frozenset[str] | None = frozenset()
    for p in parts:
        fields = None if fields is None or p.lead_fields is None else fields | p.lead_fields
    return CompiledTemplate(id, name, version, category, stage, parts[0].template, parts[1].template,
                            parts[2].template, parts[0].roots | parts[1].roots | parts[2].roots,
                            text_derived=not text, lead_fields=fields)


def validate(*, name: str, subject: str, html: str, text: str | None = None, category: str = "marketing",
             stage: str | None = None) -> CompiledTemplate:
    """Validate a template definition without storing it (CLI `templates validate`, the TUI editor)."""
    if not _NAME_RE.match(name or ""):
        raise ValidationError("template", f"invalid name {name!r} (letters, digits, _ . -; ≤120 chars)")
    if not _CATEGORY_RE.match(category or ""):
        raise ValidationError(f"template {name}", f"invalid category {category!r} (lower-case slug)")
    if not subject.strip():
        raise ValidationError(f"template {name}: subject", "is empty")
    if not html.strip():
        raise ValidationError(f"template {name}: html", "is empty")
    return compile_template(id=0, name=name, version=0, category=category, stage=stage, subject=subject,
                            html=html, text=text)


# ---------------------------------------------------------------------------------------------------
# Store


def upsert_template(
    conn: Connection, *, name: str, subject: str, html: str, text: str | None = None,
    category: str = "marketing", stage: str | None = None, user: str, now: datetime,
) -> int:
    """Create or update a template (validated first); a changed body bumps the version. Returns its id."""
    validate(name=name, subject=subject, html=html, text=text, category=category, stage=stage)
    text = text or None
    row = conn.execute(select(template).where(template.c.name == name)).mappings().first()
    body = {"subject": subject, "html": html, "text": text}
    if row is None:
        tid = conn.execute(
            insert(template).values(name=name, category=category, stage=stage, version=1, created_at=now,
                                    updated_at=now, **body)
        ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(insert(template_version).values(template_id=tid, number=1, created_at=now, **body))
        audit.record(conn, at=now, user=user, action="create", entity="template", entity_id=tid,
                     after={"name": name, "category": category, "version": 1})
        return int(tid)
    tid = int(row["id"])
    changed_body = any(row[k] != v for k, v in body.items())
    if not changed_body and row["category"] == category and row["stage"] == stage:
        return tid
    version = int(row["version"]) + (1 if changed_body else 0)
    conn.execute(update(template).where(template.c.id == tid).values(
        category=category, stage=stage, version=version, updated_at=now, **body))
    if changed_body:
        conn.execute(insert(template_version).values(template_id=tid, number=version, created_at=now, **body))
    audit.record(conn, at=now, user=user, action="update", entity="template", entity_id=tid,
                 before={"version": row["version"], "category": row["category"]},
                 after={"version": version, "category": category})
    return tid


@dataclass(frozen=True)
class TemplateInfo:
    id: int
    name: str
    category: str
    stage: str | None
    version: int
    subject: str
    updated_at: datetime | None


def list_templates(conn: Connection) -> list[TemplateInfo]:
    rows = conn.execute(select(template.c.id, template.c.name, template.c.category, template.c.stage,
                               template.c.version, template.c.subject, template.c.updated_at)
                        .order_by(template.c.name))
    return [TemplateInfo(*r) for r in rows]


def get_source(conn: Connection, name: str) -> dict[str, Any]:
    row = conn.execute(select(template).where(template.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"template {name!r} not found")
    return dict(row)


# ---------------------------------------------------------------------------------------------------
# Cache


class TemplateCache:
    """Compiled templates keyed by (database, id, version): compiled once per saved version.

    `get_many` costs one small query per call (names → id/version) plus one per cache miss; share one
    cache per process (`default_cache()`)."""

    def __init__(self, maxsize: int = 512) -> None:
        self._items: OrderedDict[tuple[str, int, int], CompiledTemplate] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conn: Connection, name: str) -> CompiledTemplate:
        found = self.get_many(conn, [name])
        if name not in found:
            raise NotFoundError(f"template {name!r} not found")
        return found[name]

    def get_many(self, conn: Connection, names: Iterable[str]) -> dict[str, CompiledTemplate]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        heads = conn.execute(select(template.c.id, template.c.name, template.c.version)
                             .where(template.c.name.in_(wanted))).all()
        db = conn.engine.url.render_as_string(hide_password=True)
        out: dict[str, CompiledTemplate] = {}
        missing: list[int] = []
        with self._lock:
            for tid, name, version in heads:
                hit = self._items.get((db, tid, version))
                if hit is None:
                    missing.append(tid)
                else:
                    self._items.move_to_end((db, tid, version))
                    out[name] = hit
        if missing:
            for row in conn.execute(select(template).where(template.c.id.in_(missing))).mappings():
                compiled = compile_template(
                    id=row["id"], name=row["name"], version=row["version"], category=row["category"],
                    stage=row["stage"], subject=row["subject"], html=row["html"], text=row["text"])
                out[compiled.name] = compiled
                with self._lock:
                    self._items[(db, compiled.id, compiled.version)] = compiled
                    while len(self._items) > self._maxsize:
                        self._items.popitem(last=False)
        return out


_DEFAULT_CACHE = TemplateCache()


def default_cache() -> TemplateCache:
    return _DEFAULT_CACHE
