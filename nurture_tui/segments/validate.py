"""Checks that need the database: referenced saved segments exist, and segment references never form
a cycle (a segment may not contain itself, directly or through others).

Shape and type checks (unknown field, wrong value type, bad regex, empty `in` list) happen in
`rules.parse_rule`; both raise `ValidationError` with the path inside the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from ..errors import ValidationError
from ..store.tables import segment
from .rules import Group, Node, Rule, SegmentCondition, parse_rule, segment_refs


def segment_ref_paths(node: Node, path: str = "rule") -> Iterator[tuple[str, SegmentCondition]]:
    """(path, condition) for every `in_segment` in the tree."""
    if isinstance(node, Group):
        for i, item in enumerate(node.items):
            yield from segment_ref_paths(item, f"{path}.{node.op}[{i}]")
    elif isinstance(node, SegmentCondition):
        yield f"{path}.in_segment", node


def reference_graph(conn: Connection) -> dict[str, list[str]]:
    """Saved segment name → names its rule refers to (unparseable stored rules refer to nothing)."""
    graph: dict[str, list[str]] = {}
    for name, data in conn.execute(select(segment.c.name, segment.c.rule)):
        try:
            graph[name] = segment_refs(parse_rule(data).root)
        except ValidationError:
            graph[name] = []
    return graph


def _canonical(graph: dict[str, Any], name: str) -> str | None:
    if name in graph:
        return name
    lowered = {k.lower(): k for k in graph}
    return lowered.get(name.lower())


def check_references(conn: Connection, rule: Rule, *, segment_name: str | None = None,
                     where: str = "rule") -> list[str]:
    """Raise ValidationError for a reference to a missing segment, to itself, or one that leads back to
    `segment_name` (the segment being saved with this rule). Returns the referenced names."""
    graph = reference_graph(conn)
    if segment_name is not None:
        graph[segment_name] = segment_refs(rule.root)
    refs: list[str] = []
    for path, cond in segment_ref_paths(rule.root, where):
        target = _canonical(graph, cond.segment)
        if target is None:
            raise ValidationError(path, f"no saved segment named {cond.segment!r}")
        if segment_name is not None and target == segment_name:
            raise ValidationError(path, f"segment {segment_name!r} cannot contain itself")
        cycle = _find_cycle(graph, target, [])
        if cycle is not None:
            raise ValidationError(path, f"segment references form a cycle ({' → '.join(cycle)})")
        refs.append(target)
    return refs


def _find_cycle(graph: dict[str, list[str]], name: str, stack: list[str]) -> list[str] | None:
    if name in stack:
        return [*stack[stack.index(name):], name]
    for ref in graph.get(name, []):
        target = _canonical(graph, ref)
        if target is None:
            continue
        found = _find_cycle(graph, target, [*stack, name])
        if found is not None:
            return found
    return None


def dependency_order(graph: dict[str, list[str]], names: list[str]) -> list[str]:
    """`names` ordered so every segment comes after the segments it (transitively) refers to."""
    ordered: list[str] = []
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in done or name in trail:
            return
        for ref in graph.get(name, []):
            target = _canonical(graph, ref)
            if target is not None:
                visit(target, (*trail, name))
        done.add(name)
        ordered.append(name)

    for name in names:
        visit(name, ())
    wanted = set(names)
    return [n for n in ordered if n in wanted]
