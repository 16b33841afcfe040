"""Reading YAML (and JSON, which is YAML) from user files: one loader, one error shape.

Every problem becomes a `ValidationError` naming the file (or other origin) and, for syntax errors, the
line: `rules.yaml: line 4: not valid YAML: mapping values are not allowed here`. Readers that collect
problems instead of raising (the sequence codec) take the line and the problem from `syntax_error`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ValidationError

#: The safe loader to parse with (or subclass): libyaml's when available, several times faster.
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def syntax_error(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line or None, what is wrong) of a PyYAML parse error — the one place that reads its marks."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if not problem:
        problem = next(iter(str(exc).splitlines()), "") or "invalid YAML"
    return (mark.line + 1 if mark is not None else None), str(problem)


def parse_yaml(text: str, where: str, *, what: str = "YAML") -> Any:
    """Parse `text`; a syntax error raises `ValidationError(where, "line N: not valid <what>: …")`."""
    try:
        return yaml.load(text, Loader=SafeLoader)  # a safe loader
    except yaml.YAMLError as exc:
        line, problem = syntax_error(exc)
        at = f"line {line}: " if line is not None else ""
        raise ValidationError(where, f"{at}not valid {what}: {problem}") from None


def read_text(path: str | Path) -> str:
    """A user file's text as UTF-8; a missing or unreadable file raises `ValidationError(path, …)`."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(str(p), "file not found") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(str(p), f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ValidationError(str(p), f"cannot read: {exc.strerror or exc}") from None


def load_yaml_file(path: str | Path, *, what: str = "YAML") -> Any:
    """Read and parse a YAML file (see `parse_yaml` and `read_text` for the errors)."""
    return parse_yaml(read_text(path), str(path), what=what)
