"""Validation problems: where (a path readers recognise), what, and the file line when known.

Paths name steps the way `compile_definition` does (`steps.fast_track.yes[1].wait`), so a message from
the YAML parser, from pydantic and from the semantic checks all point at the same place. A problem is
located by a *loc* — the raw key/index tuple into the definition's data — which turns into both the
display path and (for files) the line number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .model import step_path

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    where: str  # display path, e.g. steps.fast_track.yes[1].wait ("" for the whole file)
    message: str
    line: int | None = None
    file: str | None = None  # set when the problem is in another file (a templates/ file)

    def format(self, filename: str | None = None) -> str:
        parts = [p for p in (self.file or filename, self.where) if p]
        head = ": ".join(parts)
        tail = f" (line {self.line})" if self.line else ""
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"


class ProblemsError(ValidationError):
    """One or more problems in a sequence definition; `str()` is one line per problem."""

    def __init__(self, filename: str | None, problems: Sequence[Problem]) -> None:
        self.filename = filename
        self.problems = list(problems)
        lines = [p.format(filename) for p in self.problems]
        super().__init__("", "\n".join(lines))

    @property
    def lines(self) -> list[str]:
        return [p.format(self.filename) for p in self.problems]


def display_path(data: Any, loc: Loc) -> str:
    """Turn a raw loc like ('steps', 2, 'yes', 1, 'wait') into 'steps.fast_track.yes[1].wait'.

    Top-level steps are named by id and top-level templates by name when those are readable strings;
    everything else is shown by position.
    """
    out = ""
    cur: Any = data
    for depth, key in enumerate(loc):
        if isinstance(key, int):
            item = cur[key] if isinstance(cur, list) and -len(cur) <= key < len(cur) else None
            if depth == 1 and out == "steps":
                sid = item.get("id") if isinstance(item, dict) else None
                out = step_path("steps", key, sid if isinstance(sid, str) and sid else None)
            elif depth == 1 and out == "templates" and isinstance(item, dict) and isinstance(item.get("name"), str):
                out = f"templates.{item['name']}"
            else:
                out += f"[{key}]"
            cur = item
        else:
            out = f"{out}.{key}" if out else str(key)
            cur = cur.get(key) if isinstance(cur, dict) else None
    return out
