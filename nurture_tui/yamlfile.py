"""Reading YAML (and JSON, which is YAML) from user files: one loader, one error shape.

Every problem becomes a `ValidationError` naming the file (or other origin) and, for syntax errors, the
line: `rules.yaml: line 4: not valid YAML: mapping values are not allowed here`. Readers that collect
problems instead of raising (the sequence codec) take the line and the problem from `syntax_error`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ValidationError

#: The safe loader to parse with (or subclass): libyaml's when available, several times faster.
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The largest user file read (sequence files, templates, rules): 1 MB. Larger files are refused by size
#: before a byte is parsed (a real sequence file is a few KB; docs/security.md).
MAX_FILE_BYTES = 1_000_000

#: At most this many characters of a user's value are echoed back in an error message.
ECHO_LIMIT = 200


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` cut to `limit` characters (an ellipsis and the full length mark a cut)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def clip_repr(value: Any, limit: int = ECHO_LIMIT) -> str:
    """`repr(value)` bounded to `limit` characters — how a user's value is quoted in an error."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
        return f"{value!r}… ({limit}+ characters)"
    if isinstance(value, (list, dict, tuple, set)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    return clip(repr(value), limit)


def line_of(text: str | bytes, offset: int) -> int:
    """1-based line of the character (or byte) at `offset`."""
    sep: Any = b"\n" if isinstance(text, bytes) else "\n"
    return text.count(sep, 0, max(0, offset)) + 1


def syntax_error(exc: yaml.YAMLError, text: str | None = None) -> tuple[int | None, str]:
    """(1-based line or None, what is wrong) of a PyYAML parse error — the one place that reads its marks.

    A reader error (a NUL or other control character) carries a character offset, not a mark; with the
    parsed `text` it becomes a line too."""
    if isinstance(exc, yaml.reader.ReaderError):
        ch = exc.character
        code = ord(ch) if isinstance(ch, str) else int(ch)
        what = "a NUL byte is not allowed" if code == 0 else f"character #x{code:04x} is not allowed ({exc.reason})"
        return (line_of(text, exc.position) if text is not None else None), what
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if not problem:
        problem = next(iter(str(exc).splitlines()), "") or "invalid YAML"
    return (mark.line + 1 if mark is not None else None), clip(str(problem))


def parse_yaml(text: str, where: str, *, what: str = "YAML") -> Any:
    """Parse `text`; a syntax error raises `ValidationError(where, "line N: not valid <what>: …")`."""
    try:
        return yaml.load(text, Loader=SafeLoader)  # a safe loader
    except yaml.YAMLError as exc:
        line, problem = syntax_error(exc, text)
        at = f"line {line}: " if line is not None else ""
        raise ValidationError(where, f"{at}not valid {what}: {problem}") from None


def read_text(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A user file's text as UTF-8; a missing, unreadable, too large, non-UTF-8 or NUL-carrying file raises
    `ValidationError(path, …)` naming the line (never a byte offset). The size is checked before reading."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise ValidationError(str(p), f"file too large ({_size(size)}; the limit is {_size(max_bytes)})")
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValidationError(str(p), "file not found") from None
    except IsADirectoryError:
        raise ValidationError(str(p), "is a directory, not a file") from None
    except OSError as exc:
        raise ValidationError(str(p), f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew since the stat, or a pipe / special file
        raise ValidationError(str(p), f"file too large (over {_size(max_bytes)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(str(p), f"line {line_of(data, exc.start)}: not UTF-8 text") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise ValidationError(str(p), f"line {line_of(text, nul)}: a NUL byte is not allowed") from None
    return text


def _size(n: int) -> str:
    return f"{n / 1_000_000:.3g} MB" if n >= 1_000_000 else f"{n / 1000:.3g} KB" if n >= 1000 else f"{n} bytes"


def load_yaml_file(path: str | Path, *, what: str = "YAML") -> Any:
    """Read and parse a YAML file (see `parse_yaml` and `read_text` for the errors)."""
    return parse_yaml(read_text(path), str(path), what=what)
