"""A published sequence version prepared for execution: compiled node map plus parsed rules.

Versions are immutable once published, so a plan is built once per process and database and reused
by every batch (keyed by the database URL so tests on many workspaces never mix plans).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from ..errors import NurtureError
from ..segments.rules import Rule, parse_rule
from ..sequences.adaptive import AdaptiveSettings
from ..sequences.model import CompiledSequence, Node, SequenceDef, compile_definition
from ..store.tables import sequence, sequence_version


@dataclass
class Plan:
    version_id: int
    sequence_id: int
    sequence_name: str
    compiled: CompiledSequence
    goal: Rule | None
    exits: list[Rule]
    branch_rules: dict[str, Rule] = field(default_factory=dict)  # node id (or "__entry__") -> parsed rule
    adaptive: dict[str, AdaptiveSettings] = field(default_factory=dict)  # adaptive split id -> its settings

    @property
    def definition(self) -> SequenceDef:
        return self.compiled.definition

    @property
    def nodes(self) -> dict[str, Node]:
        return self.compiled.nodes

    @property
    def has_rules(self) -> bool:
        return self.goal is not None or bool(self.exits)


_plans: dict[tuple[str, int], Plan] = {}
_lock = threading.Lock()


def _db_key(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def load_plan(conn: Connection, version_id: int) -> Plan:
    key = (_db_key(conn), version_id)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    row = conn.execute(
        select(sequence_version.c.definition, sequence_version.c.sequence_id, sequence.c.name)
        .join(sequence, sequence.c.id == sequence_version.c.sequence_id)
        .where(sequence_version.c.id == version_id)
    ).first()
    if row is None:
        raise NurtureError(f"sequence version {version_id} not found")
    defn = SequenceDef.model_validate(row.definition)
    where = f"sequence {row.name!r}"
    plan = Plan(
        version_id=version_id,
        sequence_id=row.sequence_id,
        sequence_name=row.name,
        compiled=compile_definition(defn),
        goal=parse_rule(defn.goal, f"{where}.goal") if defn.goal else None,
        exits=[parse_rule(r, f"{where}.exit_when[{i}]") for i, r in enumerate(defn.exit_when)],
    )
    with _lock:
        _plans[key] = plan
    return plan


def branch_rule(conn: Connection, plan: Plan, node: Node) -> Rule:
    """The parsed rule of a branch node (a saved segment is resolved by name once per plan)."""
    rule = plan.branch_rules.get(node.id)
    if rule is None:
        spec = node.step.branch
        assert spec is not None
        if spec.rule is not None:
            rule = parse_rule(spec.rule, f"{node.path}.branch.rule")
        else:  # a saved segment, resolved by name when the rule is compiled
            rule = parse_rule({"in_segment": spec.segment}, f"{node.path}.branch.segment")
        plan.branch_rules[node.id] = rule
    return rule


def entry_rule(conn: Connection, plan: Plan) -> Rule | None:
    """The parsed entry rule of a segment-entry sequence (inline rule or saved segment), or None."""
    entry = plan.definition.entry
    if entry.type != "segment":
        return None
    if "__entry__" not in plan.branch_rules:
        where = f"sequence {plan.sequence_name!r}.entry"
        if entry.rule is not None:
            rule = parse_rule(entry.rule, f"{where}.rule")
        else:
            rule = parse_rule({"in_segment": entry.segment}, f"{where}.segment")
        plan.branch_rules["__entry__"] = rule
    return plan.branch_rules["__entry__"]


def clear_cache() -> None:
    with _lock:
        _plans.clear()
