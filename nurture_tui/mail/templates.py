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
- `check_template` lists *every* problem of a draft at once (part, line, message) for the editor: every
  part is checked, every non-syntax problem (unknown merge fields and filters, unsafe attributes, sizes)
  is collected, and a syntax error — where Jinja stops parsing a part — is reported once per part (the
  first in that part; the rest of the part is checked after it is fixed).
- `TemplateCache` compiles each (template id, version) once.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Connection, delete, insert, select, update

from ..errors import NotFoundError, ValidationError
from ..store import audit
from ..store.tables import template, template_version
from .context import OPEN_FIELDS, SCHEMA, OpenDict
from .htmltext import html_template_to_text

PARTS = ("subject", "html", "text")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")

#: Size limits: the subject column's width; the bodies are bounded so a runaway paste is refused, not stored.
MAX_CHARS = {"subject": 500, "html": 200_000, "text": 200_000}
MAX_STAGE = 20


def _too_long(value: str, limit: int) -> str:
    return f"too long ({len(value):,} characters; at most {limit:,})"


def _shown(value: str, width: int = 30) -> str:
    """A value quoted for a one-line message, cut short when long."""
    flat = one_line(value)
    return repr(flat) if len(flat) <= width else repr(flat[:width]) + f"… ({len(value):,} characters)"


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


def _suggest(word: str, known: Iterable[str], *, prefix: str = "", quote: bool = False) -> str:
    """`(did you mean lead.first_name?)` for a near miss, else `(available: …every name…)`."""
    names = sorted(known)
    by_form = {form: name for name in reversed(names) for form in (name, name.split("_")[0])}
    close = difflib.get_close_matches(word, list(by_form), n=1, cutoff=0.7)
    if close:
        guess = by_form[close[0]]
        return f"(did you mean {prefix}{guess!r}?)" if quote else f"(did you mean {prefix}{guess}?)"
    return f"(available: {', '.join(names)})"


class _AnyName(dict[str, Any]):
    """Filters/tests for finding a part's variables when it uses an unknown filter (reported separately):
    every name resolves, so Jinja's code generator does not stop at the first unknown one."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, _finalize)


_LENIENT_ENV = _make_env(autoescape=False)
_LENIENT_ENV.filters = _AnyName(_LENIENT_ENV.filters)
_LENIENT_ENV.tests = _AnyName(_LENIENT_ENV.tests)


def _undeclared(tree: nodes.Template) -> set[str]:
    try:
        return meta.find_undeclared_variables(tree)
    except TemplateSyntaxError:  # an unknown filter or test
        codegen = meta.TrackingCodeGenerator(_LENIENT_ENV)
        codegen.visit(tree)
        return codegen.undeclared_identifiers


def _ast_problems(tree: nodes.Template, env: SandboxedEnvironment,
                  undeclared: set[str] | None = None) -> Iterator[tuple[int, str]]:
    """Every sandbox problem of a parsed part as (line, message): unknown merge fields, private or refused
    attribute access, a non-literal `attr` name, unknown filters and tests."""
    if undeclared is None:
        undeclared = _undeclared(tree)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name in undeclared and name.name not in SCHEMA \
                and name.name not in HTML_ENV.globals:  # range, dict, cycler, joiner, namespace, lipsum
            yield name.lineno, f"unknown merge field {name.name!r} {_suggest(name.name, SCHEMA, quote=True)}"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        attr: Any = None
        if isinstance(node, nodes.Getattr):
            attr = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            arg = node.args[0]
            if not isinstance(arg, nodes.Const):
                yield node.lineno, "attr filter needs a literal attribute name"
                continue
            attr = arg.value
        if isinstance(attr, str) and _unsafe(attr):
            yield node.lineno, f"access to {attr!r} is not allowed"
            continue
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(attr, str):
            base = node.node
            if isinstance(base, nodes.Name) and base.name in undeclared and base.name in SCHEMA:
                allowed = SCHEMA[base.name]
                if allowed is not None and attr not in allowed:
                    yield node.lineno, (f"unknown merge field {base.name}.{attr} "
                                        f"{_suggest(attr, allowed, prefix=base.name + '.')}")
    for flt in tree.find_all(nodes.Filter):
        if flt.name not in env.filters:
            yield flt.lineno, f"no filter named {flt.name!r}"
    for test in tree.find_all(nodes.Test):
        if test.name not in env.tests:
            yield test.lineno, f"no test named {test.name!r}"


def _check_ast(tree: nodes.Template, where: str, env: SandboxedEnvironment = HTML_ENV) -> set[str]:
    """Refuse private attribute access and unknown merge fields (the first problem); return the context
    roots used."""
    for line, message in _ast_problems(tree, env):
        raise ValidationError(f"{where} line {line}", message)
    return {n for n in _undeclared(tree) if n in SCHEMA}


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
        roots = _check_ast(tree, where, env)
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
        raise ValidationError("template", f"invalid name {_shown(name)} (letters, digits, _ . -; ≤120 chars)")
    if not _CATEGORY_RE.match(category or ""):
        raise ValidationError(f"template {name}", f"invalid category {_shown(category)} (lower-case slug)")
    if not subject.strip():
        raise ValidationError(f"template {name}: subject", "is empty")
    if not html.strip():
        raise ValidationError(f"template {name}: html", "is empty")
    for part, source in (("subject", subject), ("html", html), ("text", text or "")):
        if len(source) > MAX_CHARS[part]:
            raise ValidationError(f"template {name}: {part}", _too_long(source, MAX_CHARS[part]))
    if stage is not None and len(stage) > MAX_STAGE:
        raise ValidationError(f"template {name}", f"stage: at most {MAX_STAGE} characters")
    return compile_template(id=0, name=name, version=0, category=category, stage=stage, subject=subject,
                            html=html, text=text)


# ---------------------------------------------------------------------------------------------------
# Every problem at once (the editor)

@dataclass(frozen=True)
class TemplateDraft:
    """A template as typed (not stored): what the editor checks, previews and saves."""

    name: str
    subject: str
    html: str
    text: str | None = None
    category: str = "marketing"
    stage: str | None = None


@dataclass(frozen=True, order=True)
class TemplateProblem:
    """One problem of a draft: the field or part (name, category, stage, subject, html, text), the line
    within that part (1-based; None for a field), and a one-line message."""

    part: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.part} line {self.line}: {self.message}" if self.line else f"{self.part}: {self.message}"


class TemplateProblems(ValidationError):
    """A draft that cannot be saved, with every problem (the message names the first and the count)."""

    def __init__(self, name: str, problems: list[TemplateProblem]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"template {name or '(unnamed)'}", f"{problems[0]}{more}")


def _check_part(source: str, part: str) -> tuple[list[TemplateProblem], CheckedPart | None]:
    """Every problem of one part — its first syntax error (Jinja stops there), else every sandbox problem,
    else what compiling finds — and, when there is none, the part compiled (parsed once, compiled once)."""
    env = _env(part)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(part, exc.lineno, one_line(exc.message or "syntax error"))], None
    undeclared = _undeclared(tree)
    found = [TemplateProblem(part, line, message) for line, message in _ast_problems(tree, env, undeclared)]
    if found:
        return found, None
    try:
        code = env.compile(tree)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(part, exc.lineno, one_line(exc.message or "syntax error"))], None
    compiled = env.template_class.from_code(env, code, env.make_globals(None))
    return [], CheckedPart(compiled, frozenset(n for n in undeclared if n in SCHEMA), _lead_fields(tree))


def part_problems(source: str, part: str) -> list[TemplateProblem]:
    """Every problem of one part (see `_check_part`)."""
    return _check_part(source, part)[0]


_PART_ORDER = {p: i for i, p in enumerate(("name", "category", "stage", *PARTS))}


def check_template(draft: TemplateDraft) -> list[TemplateProblem]:
    """Every problem of a draft, by part and line, under the rules `validate` (and so `upsert_template`)
    applies: an empty list means it saves."""
    return check_and_compile(draft)[0]


def check_and_compile(draft: TemplateDraft) -> tuple[list[TemplateProblem], CompiledTemplate | None]:
    """`check_template`, plus the draft compiled when its three parts are sound (the name, category and
    stage need not be: the editor previews a draft before it is named). Each part is parsed and compiled
    once, so the editor's live preview pays for one compile per edit."""
    found: list[TemplateProblem] = []
    if not _NAME_RE.match(draft.name or ""):
        found.append(TemplateProblem("name", None, f"invalid name {_shown(draft.name)} "
                                                   "(letters, digits, _ . -; at most 120 characters)"))
    if not _CATEGORY_RE.match(draft.category or ""):
        found.append(TemplateProblem("category", None, f"invalid category {_shown(draft.category)} "
                                                       "(a lower-case slug: a-z 0-9 _ -)"))
    if draft.stage is not None and len(draft.stage) > MAX_STAGE:
        found.append(TemplateProblem("stage", None, f"at most {MAX_STAGE} characters"))
    checked: dict[str, CheckedPart] = {}
    parts = (("subject", draft.subject), ("html", draft.html), ("text", draft.text or ""))
    for part, source in parts:
        if len(source) > MAX_CHARS[part]:
            found.append(TemplateProblem(part, None, _too_long(source, MAX_CHARS[part])))
        elif part == "text" and not source:
            continue
        elif part != "text" and not source.strip():
            found.append(TemplateProblem(part, None, "is empty"))
        else:
            problems, ok = _check_part(source, part)
            found += problems
            if ok is not None:
                checked[part] = ok
    if not draft.text and "html" in checked:
        # the text part derived from the HTML must compile too (it nearly always does)
        problems, ok = _check_part(html_template_to_text(draft.html), "html (as text)")
        found += [TemplateProblem("html", None, f"as plain text: {p.message}") for p in problems]
        if ok is not None:
            checked["text"] = ok
    found.sort(key=lambda p: (_PART_ORDER.get(p.part, 99), p.line or 0))
    if len(checked) < 3:
        return found, None
    subject, html, text = checked["subject"], checked["html"], checked["text"]
    fields: frozenset[str] | None = frozenset()
    for c in (subject, html, text):
        fields = None if fields is None or c.lead_fields is None else fields | c.lead_fields
    compiled = CompiledTemplate(0, draft.name or "draft", 0, draft.category or "marketing", draft.stage or None,
                                subject.template, html.template, text.template,
                                subject.roots | html.roots | text.roots, text_derived=not draft.text,
                                lead_fields=fields)
    return found, compiled


def compile_draft(draft: TemplateDraft, *, id: int = 0, version: int = 0) -> CompiledTemplate:
    """A checked draft compiled (raises TemplateProblems listing every problem)."""
    problems = check_template(draft)
    if problems:
        raise TemplateProblems(draft.name, problems)
    return compile_template(id=id, name=draft.name, version=version, category=draft.category,
                            stage=draft.stage, subject=draft.subject, html=draft.html, text=draft.text or None)


#: What a merge field inserted by the editor falls back to when the lead's value is empty.
FIELD_DEFAULTS = {"lead.first_name": "there", "lead.full_name": "there", "lead.company": "your team",
                  "account.name": "your company", "owner.name": "our team", "owner.first_name": "our team"}


@dataclass(frozen=True)
class MergeField:
    path: str  # lead.first_name
    snippet: str  # {{ lead.first_name | default("there") }}


def merge_fields() -> list[MergeField]:
    """Every merge field of the schema with the snippet the editor inserts (a default filter on each
    attribute, so an empty value reads naturally). Open dicts (`lead.custom`) are left out: their keys vary."""
    out: list[MergeField] = []
    for root, fields in SCHEMA.items():
        if fields is None:
            out.append(MergeField(root, f"{{{{ {root} }}}}"))
            continue
        order = {"lead": ("first_name", "last_name", "full_name", "email", "company", "title")}.get(root, ())
        for name in (*order, *sorted(f for f in fields if f not in order)):
            if (root, name) in OPEN_FIELDS:
                continue
            path = f"{root}.{name}"
            fallback = FIELD_DEFAULTS.get(path, "")
            out.append(MergeField(path, f'{{{{ {path} | default("{fallback}") }}}}'))
    return out


def diff_sources(old: dict[str, Any], new: dict[str, Any], old_label: str, new_label: str) -> str:
    """A unified diff of two template sources (subject, html, text), part by part; "" when equal."""
    out: list[str] = []
    for part in PARTS:
        a = (old.get(part) or "").splitlines(keepends=True)
        b = (new.get(part) or "").splitlines(keepends=True)
        for line in difflib.unified_diff(a, b, f"{old_label} {part}", f"{new_label} {part}"):
            out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)


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


@dataclass(frozen=True)
class SavedTemplate:
    name: str
    version: int
    created: bool  # a new template
    changed: bool  # something was written (False: the draft equals what is stored)


def save_draft(conn: Connection, draft: TemplateDraft, *, original: str | None, base_version: int | None,
               user: str, now: datetime) -> SavedTemplate:
    """Save the editor's draft through `upsert_template` (checked and audited; nothing is written when it
    has a problem). `original` is the template being edited (None: a new one, whose name must be free);
    `base_version` the version the editor opened, so a save over someone else's newer version is refused."""
    problems = check_template(draft)
    if problems:
        raise TemplateProblems(draft.name, problems)
    row = conn.execute(select(template.c.version, template.c.category, template.c.stage)
                       .where(template.c.name == draft.name)).first()
    if original is None and row is not None:
        raise ValidationError(f"template {draft.name}", "a template with this name already exists; not saved")
    if original is not None:
        if draft.name != original:
            raise ValidationError(f"template {original}", "a template cannot be renamed (duplicate it instead)")
        if row is None:
            raise NotFoundError(f"template {original!r} was deleted since you opened it; not saved")
        if base_version is not None and row.version != base_version:
            raise ValidationError(f"template {original}", f"saved elsewhere since you opened it (v{base_version} → "
                                  f"v{row.version}); not saved")
    stage = draft.stage or None
    upsert_template(conn, name=draft.name, subject=draft.subject, html=draft.html, text=draft.text or None,
                    category=draft.category, stage=stage, user=user, now=now)
    after = conn.execute(select(template.c.version, template.c.category, template.c.stage)
                         .where(template.c.name == draft.name)).one()
    changed = row is None or tuple(row) != tuple(after)
    return SavedTemplate(draft.name, int(after.version), row is None, changed)


@dataclass(frozen=True)
class TemplateVersionInfo:
    number: int
    created_at: datetime | None
    subject: str


def list_versions(conn: Connection, name: str) -> list[TemplateVersionInfo]:
    """Every saved version of a template, newest first (the current one even when it has no version row,
    as in data written before versions were kept)."""
    src = get_source(conn, name)
    rows = conn.execute(select(template_version.c.number, template_version.c.created_at, template_version.c.subject)
                        .where(template_version.c.template_id == src["id"]).order_by(template_version.c.number.desc()))
    out = [TemplateVersionInfo(*r) for r in rows]
    if not out or out[0].number < src["version"]:
        out.insert(0, TemplateVersionInfo(src["version"], src["updated_at"], src["subject"]))
    return out


def get_version(conn: Connection, name: str, number: int) -> dict[str, Any]:
    """One saved version's source (subject, html, text); the current row when no version row exists."""
    src = get_source(conn, name)
    row = conn.execute(select(template_version.c.subject, template_version.c.html, template_version.c.text)
                       .where(template_version.c.template_id == src["id"], template_version.c.number == number)
                       ).mappings().first()
    if row is None:
        if number == src["version"]:
            return {k: src[k] for k in PARTS}
        raise NotFoundError(f"template {name!r} has no version {number}")
    return dict(row)


def template_users(conn: Connection, name: str) -> list[str]:
    """The sequences that send `name`, as `welcome (draft)` / `welcome v2`: every sequence draft, its
    current published version, and older versions that still have active or waiting enrollments."""
    from ..sequences.model import SequenceDef
    from ..sequences.validate import walk
    from ..store.tables import enrollment, sequence, sequence_version

    def sends(definition: Any) -> bool:
        try:
            defn = SequenceDef.model_validate(definition or {})
        except Exception:  # a draft that no longer parses sends nothing
            return False
        return any(step.send is not None and step.send.template == name for step, _ in walk(defn.steps, ()))

    users: list[str] = []
    for seq_name, draft in conn.execute(select(sequence.c.name, sequence.c.draft).order_by(sequence.c.name)):
        if draft and sends(draft):
            users.append(f"{seq_name} (draft)")
    live = select(enrollment.c.version_id).where(enrollment.c.status.in_(("active", "waiting"))).distinct()
    versions = conn.execute(
        select(sequence.c.name, sequence_version.c.number, sequence_version.c.definition)
        .join(sequence, sequence.c.id == sequence_version.c.sequence_id)
        .where((sequence_version.c.id == sequence.c.current_version_id) | sequence_version.c.id.in_(live))
        .order_by(sequence.c.name, sequence_version.c.number))
    for seq_name, number, definition in versions:
        if sends(definition):
            users.append(f"{seq_name} v{number}")
    return users


def delete_template(conn: Connection, name: str, *, user: str, now: datetime) -> None:
    """Delete a template and its versions (audited); refused while a sequence sends it (`template_users`)."""
    src = get_source(conn, name)
    users = template_users(conn, name)
    if users:
        raise ValidationError(f"template {name}", f"in use by {', '.join(users[:3])}"
                              + (f" and {len(users) - 3} more" if len(users) > 3 else "") + "; not deleted")
    conn.execute(delete(template_version).where(template_version.c.template_id == src["id"]))
    conn.execute(delete(template).where(template.c.id == src["id"]))
    audit.record(conn, at=now, user=user, action="delete", entity="template", entity_id=src["id"],
                 before={"name": name, "category": src["category"], "version": src["version"]})


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
