"""YAML ⇄ SequenceDef, with problems located by path and line.

The loader is YAML 1.2-flavoured where it matters: only `true`/`false` are booleans, so the `yes:` and
`no:` child lists stay strings (PyYAML's YAML 1.1 default would turn them into True/False). Duplicate
keys are reported instead of silently keeping the last one.

`parse_text()` never raises for bad input: it returns the problems (syntax, structure, pydantic) with
the line they are on. Semantic checks (templates, segments, reachability …) live in `validate.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from ..yamlfile import SafeLoader, clip, clip_repr, syntax_error
from .model import SequenceDef, TemplateSpec
from .problems import Loc, Problem, display_path

_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


_INT_RE = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*\.[0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+)$"
                       r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
_REPLACED = {"tag:yaml.org,2002:bool": _BOOL_RE, "tag:yaml.org,2002:int": _INT_RE,
             "tag:yaml.org,2002:float": _FLOAT_RE}
_FIRST_CHARS = {"tag:yaml.org,2002:bool": "tTfF", "tag:yaml.org,2002:int": "-+0123456789",
                "tag:yaml.org,2002:float": "-+0123456789."}


def _yaml12_scalars(cls: Any) -> None:
    """YAML 1.2 core scalars: only true/false are booleans (so `yes:`/`no:` keys stay strings) and no
    sexagesimal numbers (so `start: 16:30` is the string it looks like)."""
    resolvers = {k: [(t, rx) for t, rx in v if t not in _REPLACED] for k, v in cls.yaml_implicit_resolvers.items()}
    for tag, regexp in _REPLACED.items():
        for first in _FIRST_CHARS[tag]:
            resolvers.setdefault(first, []).append((tag, regexp))
    cls.yaml_implicit_resolvers = resolvers


class _Loader(SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_yaml12_scalars(_Loader)
_yaml12_scalars(_Dumper)


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # `|` blocks for multi-line text; the emitter falls back to a quoted scalar when a block cannot
    # hold the value exactly (trailing spaces on a line …), so the text always round-trips unchanged
    style = "|" if "\n" in value else None
    if any(ch in value for ch in _ODD_BREAKS):  # only double quotes can escape these line breaks
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float)) or (isinstance(v, str) and "\n" not in v)


def _short(items: Any) -> bool:
    return len(repr(items)) <= 70


def _dict_representer(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.MappingNode:
    """Small leaf mappings (rule conditions, send specs) on one line: `{field: score, ge: 30}`."""
    flat = all(_is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)) for v in value.values())
    flow = bool(value) and flat and _short(value)
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


def _list_representer(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    flow = bool(value) and all(_is_scalar(v) for v in value) and _short(value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(dict, _dict_representer)
_Dumper.add_representer(list, _list_representer)


@dataclass
class Parsed:
    """The outcome of reading one sequence file."""

    filename: str
    data: Any = None  # the raw YAML data (dict when well-formed)
    root: yaml.Node | None = None
    definition: SequenceDef | None = None
    problems: list[Problem] = field(default_factory=list)

    def problem(self, loc: Loc, message: str, *, key_line: bool = False) -> Problem:
        """A problem at `loc`, with its display path and line."""
        return Problem(display_path(self.data, loc), message, line_at(self.root, loc, key_line=key_line))


#: Deepest nesting of mappings and lists accepted (a real program nests a few levels; docs/security.md).
MAX_DEPTH = 64


def _hostile(text: str) -> Problem | None:
    """One pass over the parse events, before anything is built: an alias (`*name`, which a 4 KB file can
    turn into gigabytes once expanded) or nesting deeper than MAX_DEPTH is refused at its line."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            name = clip(str(event.anchor), 40)
            return Problem("", f"YAML aliases are not allowed (*{name}); write the value out",
                           _line(event.start_mark))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return Problem("", f"nested deeper than {MAX_DEPTH} levels", _line(event.start_mark))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def load_yaml(text: str, filename: str) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """Parse YAML text → (data, node tree, problems). Syntax errors carry their line; aliases and deep
    nesting are refused before the document is built."""
    try:
        hostile = _hostile(text)
        if hostile is not None:
            return None, None, [hostile]
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            problems = _duplicate_keys(root)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        line, what = syntax_error(exc, text)
        return None, None, [Problem("", f"YAML syntax error: {what}", line)]
    return data, root, problems


def _duplicate_keys(root: yaml.Node | None) -> list[Problem]:
    """Keys given twice in one mapping, in document order (an explicit stack: no recursion)."""
    out: list[Problem] = []
    todo: list[tuple[yaml.Node | None, str]] = [(root, "")]
    while todo:
        node, path = todo.pop()
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                if key is not None and key in seen:
                    out.append(Problem(path, f"duplicate key {clip_repr(key)}", k.start_mark.line + 1))
                seen.add(key)
                children.append((v, f"{path}.{key}" if path else str(key)))
        elif isinstance(node, yaml.SequenceNode):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
        todo.extend(reversed(children))
    return out


def line_at(root: yaml.Node | None, loc: Loc, *, key_line: bool = False) -> int | None:
    """1-based line of the deepest node on `loc` that exists (the key's line with key_line=True)."""
    if root is None:
        return None
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if match is None:
                return line
            node = match[0] if last and key_line else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def parse_text(text: str, filename: str = "<sequence>") -> Parsed:
    """YAML text → Parsed (definition set when the structure is valid; problems otherwise)."""
    data, root, problems = load_yaml(text, filename)
    parsed = Parsed(filename=filename, data=data, root=root, problems=list(problems))
    if parsed.problems and data is None:
        return parsed
    if not isinstance(data, dict):
        parsed.problems.append(Problem("", "a sequence file must be a mapping with name and steps", 1))
        return parsed
    parsed.definition, errors = parse_data(data, parsed)
    parsed.problems += errors
    return parsed


def parse_data(data: dict[str, Any], where: Parsed | None = None) -> tuple[SequenceDef | None, list[Problem]]:
    """Validate a raw mapping into a SequenceDef; pydantic errors become Problems at step paths."""
    try:
        return SequenceDef.model_validate(data), []
    except PydanticValidationError as exc:
        return None, pydantic_problems(exc, where or Parsed(filename="", data=data))


def pydantic_problems(exc: PydanticValidationError, ctx: Parsed, prefix: Loc = ()) -> list[Problem]:
    """Each pydantic error as a Problem at its path (locs are relative to `prefix` inside ctx.data)."""
    out = []
    for err in exc.errors(include_url=False):
        located: dict[str, Any] = {**err, "loc": (*prefix, *err["loc"])}
        out.append(_pydantic_problem(ctx, located))
    return out


def _pydantic_problem(ctx: Parsed, err: Any) -> Problem:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden" and loc:
        where = display_path(ctx.data, loc[:-1])
        return Problem(where, f"unknown key {loc[-1]!r}", line_at(ctx.root, loc, key_line=True))
    if kind == "missing" and loc:
        return ctx.problem(loc[:-1], f"missing required key {loc[-1]!r}")
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return ctx.problem(loc, _friendly(kind, msg, err.get("input")))


def _friendly(kind: str, msg: str, value: Any) -> str:
    if kind in ("literal_error", "enum"):
        return f"{clip_repr(value)} is not allowed: {clip(msg.lower())}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{clip(msg.lower())} (got {clip_repr(value)})"
    return clip(msg)


# ---------------------------------------------------------------------------------------------------
# Dumping

def definition_to_export(defn: SequenceDef, templates: list[TemplateSpec] | None = None) -> dict[str, Any]:
    """The tidy mapping an export writes: defaults left out, templates (if any) last."""
    data = defn.model_dump(mode="json", exclude_none=True, exclude_defaults=True, exclude={"templates"})
    data["name"] = defn.name
    data["steps"] = [s.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for s in defn.steps]
    tpls = defn.templates if templates is None else templates
    if tpls:
        data["templates"] = [
            {"name": t.name, **t.model_dump(mode="json", exclude_none=True, exclude_defaults=True)} for t in tpls
        ]
    order = ["name", "description", "stage", "entry", "reentry", "goal", "exit_when", "suppressed",
             "category", "send_window", "caps", "steps", "templates"]
    return {k: data[k] for k in order if k in data}


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100_000, default_flow_style=False)


def dump_definition(defn: SequenceDef, templates: list[TemplateSpec] | None = None) -> str:
    return dump_yaml(definition_to_export(defn, templates))


def canonical_dump(defn: SequenceDef, templates: list[TemplateSpec] | None = None) -> str:
    """`dump_definition` with every condition (entry rule, goal, exit rules, branch rules) in the rule
    language's canonical shape (`{field: x, eq: 1}` and `{field: x, op: eq, value: 1}` read the same), so two
    programs that behave the same dump the same — how a program built in the editor is compared with its
    file. Rules that do not parse are left as written (validation reports them)."""
    from ..segments.rules import parse_rule

    def rule(data: Any) -> Any:
        try:
            return parse_rule(data).to_data()
        except Exception:
            return data

    def steps(items: list[dict[str, Any]]) -> None:
        for step in items:
            if "branch" in step and "rule" in step["branch"]:
                step["branch"]["rule"] = rule(step["branch"]["rule"])
            for arm in ("yes", "no"):
                steps(step.get(arm) or [])
            for split_arm in (step.get("split") or {}).get("arms", []):
                steps(split_arm.get("steps") or [])

    data = definition_to_export(defn, templates)
    if "rule" in data.get("entry", {}):
        data["entry"]["rule"] = rule(data["entry"]["rule"])
    if "goal" in data:
        data["goal"] = rule(data["goal"])
    if "exit_when" in data:
        data["exit_when"] = [rule(r) for r in data["exit_when"]]
    steps(data["steps"])
    return dump_yaml(data)
