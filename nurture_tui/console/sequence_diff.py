"""A line diff of two programs as their canonical YAML (what `nurture sequences export` writes, templates
left out): the publish dialog shows the draft against the published version, unified or side by side.

Both views come from the same `difflib` opcodes, grouped into hunks with `context` equal lines around each
change; the UI only colours them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..sequences.codec import definition_to_export, dump_yaml
from ..sequences.model import SequenceDef

#: Equal lines kept around each change.
CONTEXT = 3


@dataclass(frozen=True)
class UnifiedLine:
    """`tag`: " " equal, "-" only in the published version, "+" only in the draft, "@" a hunk header."""

    tag: str
    text: str


@dataclass(frozen=True)
class SideBySideRow:
    """One row of the two columns (None: no line on that side). `tag`: equal / replace / delete / insert,
    or "hunk" for the separator between hunks (its texts are the line-number headers)."""

    tag: str
    old: str | None
    new: str | None
    old_no: int | None = None
    new_no: int | None = None


def canonical_yaml(defn: SequenceDef | None) -> list[str]:
    """The program as its export writes it, one string per line (templates left out: publishing a version
    does not change them). Nothing published: no lines."""
    if defn is None:
        return []
    return dump_yaml(definition_to_export(defn, templates=[])).splitlines()


@dataclass(frozen=True)
class YamlDiff:
    old: list[str]  # the published version's lines
    new: list[str]  # the draft's lines

    @classmethod
    def of(cls, published: SequenceDef | None, draft: SequenceDef) -> YamlDiff:
        return cls(canonical_yaml(published), canonical_yaml(draft))

    @property
    def same(self) -> bool:
        return self.old == self.new

    def _hunks(self, context: int) -> list[list[tuple[str, int, int, int, int]]]:
        matcher = difflib.SequenceMatcher(None, self.old, self.new, autojunk=False)
        return list(matcher.get_grouped_opcodes(context)) if not self.same else []

    def counts(self) -> tuple[int, int]:
        """(lines added, lines removed)."""
        added = removed = 0
        for hunk in self._hunks(0):
            for tag, i1, i2, j1, j2 in hunk:
                if tag != "equal":
                    removed += i2 - i1
                    added += j2 - j1
        return added, removed

    def unified(self, context: int = CONTEXT) -> list[UnifiedLine]:
        out: list[UnifiedLine] = []
        for hunk in self._hunks(context):
            first, last = hunk[0], hunk[-1]
            out.append(UnifiedLine("@", f"@@ -{first[1] + 1},{last[2] - first[1]} "
                                        f"+{first[3] + 1},{last[4] - first[3]} @@"))
            for tag, i1, i2, j1, j2 in hunk:
                if tag == "equal":
                    out.extend(UnifiedLine(" ", line) for line in self.old[i1:i2])
                    continue
                out.extend(UnifiedLine("-", line) for line in self.old[i1:i2])
                out.extend(UnifiedLine("+", line) for line in self.new[j1:j2])
        return out

    def side_by_side(self, context: int = CONTEXT) -> list[SideBySideRow]:
        out: list[SideBySideRow] = []
        for hunk in self._hunks(context):
            first = hunk[0]
            out.append(SideBySideRow("hunk", f"published line {first[1] + 1}", f"draft line {first[3] + 1}"))
            for tag, i1, i2, j1, j2 in hunk:
                old, new = self.old[i1:i2], self.new[j1:j2]
                for k in range(max(len(old), len(new))):
                    left = old[k] if k < len(old) else None
                    right = new[k] if k < len(new) else None
                    row_tag = tag if tag in ("equal", "replace") else ("delete" if right is None else "insert")
                    if tag == "replace" and (left is None or right is None):
                        row_tag = "delete" if right is None else "insert"
                    out.append(SideBySideRow(row_tag, left, right, i1 + k + 1 if left is not None else None,
                                             j1 + k + 1 if right is not None else None))
        return out
