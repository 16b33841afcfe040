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
from .rules import (
    ConditionError,
    Group,
    Node,
    Rule,
    SegmentCondition,
    check_node,
    condition_items,
    parse_rule,
    segment_refs,
)


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
    graph = _graph_with(conn, rule.root, segment_name)
    refs: list[str] = []
    for path, cond in segment_ref_paths(rule.root, where):
        target, problem = _reference(graph, cond.segment, segment_name)
        if problem is not None:
            raise ValidationError(path, problem)
        assert target is not None
        refs.append(target)
    return refs


def _graph_with(conn: Connection, root: Node | None, segment_name: str | None) -> dict[str, list[str]]:
    graph = reference_graph(conn)
    if segment_name is not None:
        graph[_canonical(graph, segment_name) or segment_name] = segment_refs(root) if root is not None else []
    return graph


def _reference(graph: dict[str, list[str]], name: str, segment_name: str | None) -> tuple[str | None, str | None]:
    """(the segment `name` resolves to, the problem with referring to it from `segment_name` or None)."""
    target = _canonical(graph, name)
    if target is None:
        return None, f"no saved segment named {name!r}"
    if segment_name is not None and target == (_canonical(graph, segment_name) or segment_name):
        return target, f"segment {segment_name!r} cannot contain itself"
    cycle = _find_cycle(graph, target, [])
    if cycle is not None:
        return target, f"segment references form a cycle ({' → '.join(cycle)})"
    return target, None


def check_rule(conn: Connection, data: Any, *, segment_name: str | None = None,
               where: str = "rule") -> list[ConditionError]:
    """Every problem of rule data, each at its condition: `rules.check_node` (shape, fields, values) plus
    the references `check_references` would refuse (missing segment, itself, a cycle through
    `segment_name`). For a builder's per-keystroke validation; nothing is written."""
    problems = check_node(data, where)
    if isinstance(data, Rule):
        data = data.to_data()
    bad = {p.at for p in problems}
    refs: list[tuple[tuple[str | int, ...], str, str]] = []
    for at, path, leaf in condition_items(data, where):
        if at not in bad and isinstance(leaf, dict) and "in_segment" in leaf:
            refs.append((at, f"{path}.in_segment", str(leaf["in_segment"]).strip()))
    if not refs:
        return problems
    graph = reference_graph(conn)
    if segment_name is not None:
        graph[_canonical(graph, segment_name) or segment_name] = [name for _at, _path, name in refs]
    for at, path, name in refs:
        _target, problem = _reference(graph, name, segment_name)
        if problem is not None:
            problems.append(ConditionError(path, problem, at))
    return sorted(problems, key=lambda problem: problem.at)


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
