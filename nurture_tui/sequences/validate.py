"""Semantic validation of a sequence definition: one Problem per mistake, each at a precise path.

Rules (docs/sequences.md lists them with their messages):

- every `send.template` (and `wait_for` event template) is known: inline `templates:`, the templates
  directory next to the file, or already stored;
- `branch` and `wait_for` have at least one non-empty `yes`/`no` list (an empty list means "carry on
  with the next step"; with both empty the step would decide nothing); only they may have yes/no;
- no unreachable steps: nothing after an `exit` or a `goto` in the same list, `goto` targets exist,
  and every step can be reached from the start;
- `split`: 2–10 arms with unique names and integer weights ≥ 1 summing to 100 (`mode: adaptive`: no
  weights; window/lookback parse, 0 ≤ floor ≤ 1/arms, pool ≥ 0, not both winner and lookback, audience
  segment names its segments — docs/adaptive.md);
- waits and `wait_for` windows parse and are > 0; `wait_for` has a window;
- actions carry what their type needs; `update_field` names a lead column or `custom.<key>`;
- every loop (through `goto`) passes a `wait` or `wait_for`;
- segments named by entry/branch exist; rules parse (segment rule language);
- settings: stage, send window days/hours/time zone/country, caps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..yamlfile import clip_repr
from .adaptive import default_window
from .model import (
    UPDATABLE_LEAD_FIELDS,
    WEEKDAYS,
    SequenceDef,
    Step,
    compile_definition,
    parse_duration,
)
from .problems import Loc, Problem, display_path
from .timing import country_code, parse_hhmm, zone

STAGE_VALUES = ("awareness", "consideration", "decision", "customer")
MAX_ARMS = 10

#: What each action type needs (field names of ActionSpec).
ACTION_REQUIRES: dict[str, tuple[str, ...]] = {
    "update_field": ("field",),
    "set_stage": ("value",),
    "adjust_score": ("points",),
    "add_to_campaign": ("campaign",),
    "assign_owner": ("owner",),
    "create_task": ("subject",),
    "notify_rep": (),
    "add_tag": ("tag",),
    "remove_tag": ("tag",),
    "enroll": ("sequence",),
    "webhook": ("url",),
}


@dataclass
class Catalog:
    """What exists outside the file. `None` members are not checked (e.g. `validate --no-db`)."""

    templates: set[str] | None = None
    segment_exists: Callable[[str], bool] | None = None
    parse_rule: Callable[[Any, str], Any] | None = None  # segments.rules.parse_rule(data, where)
    #: No workspace (`validate` in a hook or CI job): a template not found in `templates` and any segment
    #: name are references that could not be checked; they are collected here instead of being problems.
    unchecked: list[Problem] | None = None


def default_rule_parser() -> Callable[[Any, str], Any] | None:
    try:
        from ..segments.rules import parse_rule
    except ImportError:  # the segments package is not built yet
        return None
    return lambda data, where: parse_rule(data, where=where)


class _Checker:
    def __init__(self, defn: SequenceDef, data: Any, catalog: Catalog,
                 locate: Callable[[Loc], int | None]) -> None:
        self.defn = defn
        self.data = data
        self.catalog = catalog
        self.locate = locate
        self.problems: list[Problem] = []
        self.step_locs: dict[str, Loc] = {}

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(display_path(self.data, loc), message, self.locate(loc)))

    def not_checked(self, loc: Loc, what: str) -> None:
        assert self.catalog.unchecked is not None
        self.catalog.unchecked.append(Problem(display_path(self.data, loc), f"{what} not checked (no workspace)",
                                              self.locate(loc)))

    # -- rules ---------------------------------------------------------------------------------
    def rule(self, loc: Loc, rule: Any) -> None:
        if rule is None or self.catalog.parse_rule is None:
            return
        from ..errors import NurtureError

        where = display_path(self.data, loc)
        try:
            parsed = self.catalog.parse_rule(rule, where)
        except NurtureError as exc:
            # parse_rule names its own path ("<where>.all[0].value: …"); keep it, add our line
            self.problems.append(Problem("", str(exc), self.locate(loc)))
            return
        root = getattr(parsed, "root", None)
        if root is not None and (self.catalog.segment_exists is not None or self.catalog.unchecked is not None):
            from ..segments.rules import segment_refs

            for name in dict.fromkeys(segment_refs(root)):
                self.segment(loc, name)

    def segment(self, loc: Loc, name: str | None) -> None:
        if name and self.catalog.segment_exists is None and self.catalog.unchecked is not None:
            self.not_checked(loc, f"segment {clip_repr(name)}")
        elif name and self.catalog.segment_exists is not None and not self.catalog.segment_exists(name):
            self.add(loc, f"unknown segment {clip_repr(name)}")

    def template(self, loc: Loc, name: str | None) -> None:
        if name and self.catalog.unchecked is not None and name not in (self.catalog.templates or ()):
            self.not_checked(loc, f"template {clip_repr(name)}")
        elif name and self.catalog.templates is not None and name not in self.catalog.templates:
            self.add(loc, f"unknown template {clip_repr(name)} "
                          "(not in templates:, the templates directory or the store)")

    def duration(self, loc: Loc, what: str, text: str) -> None:
        try:
            delta = parse_duration(text)
        except ValueError as exc:
            self.add(loc, f"{what}: {exc}")
            return
        if delta.total_seconds() <= 0:
            self.add(loc, f"{what} must be > 0")


def walk(steps: list[Step], loc: Loc) -> Iterator[tuple[Step, Loc]]:
    """Every step with its raw loc, depth first (the loc shape pydantic and the YAML tree use)."""
    for i, step in enumerate(steps):
        here = (*loc, i)
        yield step, here
        if step.yes:
            yield from walk(step.yes, (*here, "yes"))
        if step.no:
            yield from walk(step.no, (*here, "no"))
        if step.split:
            for j, arm in enumerate(step.split.arms):
                yield from walk(arm.steps, (*here, "split", "arms", j, "steps"))


def validate_definition(
    defn: SequenceDef,
    catalog: Catalog,
    *,
    data: Any = None,
    locate: Callable[[Loc], int | None] | None = None,
) -> list[Problem]:
    """All semantic problems of `defn`. `data` is the raw mapping (for display paths; defaults to the
    definition's JSON) and `locate` maps a loc to a file line."""
    chk = _Checker(defn, data if data is not None else defn.to_json(), catalog, locate or (lambda _loc: None))
    _check_settings(chk)
    steps = list(walk(defn.steps, ("steps",)))
    if not defn.steps:
        chk.add(("steps",), "a sequence needs at least one step")
    seen: set[str] = set()
    duplicate = False
    for step, loc in steps:
        if step.id in seen:
            chk.add((*loc, "id"), f"duplicate step id {clip_repr(step.id)}")
            duplicate = True
        seen.add(step.id)
        chk.step_locs.setdefault(step.id, loc)
    send_ids = {s.id for s, _ in steps if s.send is not None}
    for step, loc in steps:
        _check_step(chk, step, loc, seen, send_ids)
    targets = {s.goto for s, _ in steps if s.goto}
    _check_lists(chk, defn.steps, ("steps",), targets)
    if not duplicate:
        _check_graph(chk)
    return chk.problems


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,119}$")


def _check_settings(chk: _Checker) -> None:
    d = chk.defn
    if not _NAME_RE.match(d.name):
        chk.add(("name",), f"invalid name {clip_repr(d.name)} (letters, digits, space, _ . -; at most 120 characters)")
    if d.stage is not None and d.stage not in STAGE_VALUES:
        chk.add(("stage",), f"unknown stage {clip_repr(d.stage)} (one of {', '.join(STAGE_VALUES)})")
    e = d.entry
    if e.type == "segment":
        if (e.segment is None) == (e.rule is None):
            chk.add(("entry",), "segment entry needs exactly one of segment, rule")
        chk.segment(("entry", "segment"), e.segment)
        chk.rule(("entry", "rule"), e.rule)
    elif e.type == "event" and e.event is None:
        chk.add(("entry",), "event entry needs an event")
    elif e.type == "manual" and (e.segment or e.rule or e.event):
        chk.add(("entry",), "manual entry takes no segment, rule or event (set type: segment or event)")
    if e.event is not None:
        chk.template(("entry", "event", "template"), e.event.template)
    chk.rule(("goal",), d.goal)
    for i, rule in enumerate(d.exit_when):
        chk.rule(("exit_when", i), rule)
    w = d.send_window
    if w is not None:
        if not w.days:
            chk.add(("send_window", "days"), "at least one day is needed")
        for i, day in enumerate(w.days):
            if day not in WEEKDAYS:
                chk.add(("send_window", "days", i), f"unknown day {clip_repr(day)} (one of {', '.join(WEEKDAYS)})")
        times = {}
        for key in ("start", "end"):
            try:
                times[key] = parse_hhmm(getattr(w, key))
            except ValueError as exc:
                chk.add(("send_window", key), str(exc))
        if len(times) == 2 and times["start"] >= times["end"]:
            chk.add(("send_window",), f"start {w.start} must be before end {w.end}")
        if zone(w.default_timezone) is None:
            chk.add(("send_window", "default_timezone"), f"unknown time zone {clip_repr(w.default_timezone)}")
        if w.country and country_code(w.country) is None:
            chk.add(("send_window", "country"), f"no holiday calendar for country {clip_repr(w.country)}")
    if d.caps is not None:
        for key in ("per_day", "per_week"):
            value = getattr(d.caps, key)
            if value is not None and value < 1:
                chk.add(("caps", key), "a cap must be ≥ 1")
    names: set[str] = set()
    for i, t in enumerate(d.templates):
        if t.name in names:
            chk.add(("templates", i, "name"), f"duplicate template {clip_repr(t.name)}")
        names.add(t.name)


def _check_step(chk: _Checker, step: Step, loc: Loc, ids: set[str], send_ids: set[str]) -> None:
    kind = step.kind
    if kind not in ("branch", "wait_for") and (step.yes is not None or step.no is not None):
        chk.add(loc, f"only wait_for and branch steps have yes/no lists (this is a {kind} step)")
    if step.goto is not None:
        if kind == "exit":
            chk.add((*loc, "goto"), "an exit step cannot goto")
        elif step.goto not in ids:
            chk.add((*loc, "goto"), f"unknown step id {clip_repr(step.goto)}")
    if step.send is not None:
        chk.template((*loc, "send"), step.send.template)
    elif step.wait is not None:
        w = step.wait
        if w.duration is not None:
            chk.duration((*loc, "wait"), "duration", w.duration)
        if w.weekday is not None and w.weekday not in WEEKDAYS:
            chk.add((*loc, "wait"), f"unknown weekday {clip_repr(w.weekday)} (one of {', '.join(WEEKDAYS)})")
        if w.time is not None:
            try:
                parse_hhmm(w.time)
            except ValueError as exc:
                chk.add((*loc, "wait"), f"time: {exc}")
            if w.weekday is None:
                chk.add((*loc, "wait"), "time is only used with weekday")
    elif step.wait_for is not None:
        wf = step.wait_for
        if wf.window is None:
            chk.add((*loc, "wait_for"), "wait_for needs a window (how long to wait for the event, e.g. 3d)")
        else:
            chk.duration((*loc, "wait_for"), "window", wf.window)
        if not wf.events:
            chk.add((*loc, "wait_for"), "wait_for needs at least one event")
        for i, ev in enumerate(wf.events):
            if ev.node is not None and ev.node not in send_ids:
                chk.add((*loc, "wait_for", "events", i), f"node {clip_repr(ev.node)} is not a send step")
            chk.template((*loc, "wait_for", "events", i), ev.template)
    elif step.branch is not None:
        chk.rule((*loc, "branch", "rule"), step.branch.rule)
        chk.segment((*loc, "branch"), step.branch.segment)
    elif step.split is not None:
        _check_split(chk, step, loc)
    elif step.action is not None:
        _check_action(chk, step, loc)
    if kind in ("branch", "wait_for") and not step.yes and not step.no:
        chk.add(loc, f"{kind} needs a non-empty yes or no list (with both empty it decides nothing)")


def _check_split(chk: _Checker, step: Step, loc: Loc) -> None:
    assert step.split is not None
    arms = step.split.arms
    here = (*loc, "split")
    if len(arms) < 2:
        chk.add(here, "a split needs at least 2 arms")
    if len(arms) > MAX_ARMS:
        chk.add(here, f"a split has at most {MAX_ARMS} arms (found {len(arms)})")
    names: set[str] = set()
    for j, arm in enumerate(arms):
        if arm.name in names:
            chk.add((*here, "arms", j), f"duplicate arm name {clip_repr(arm.name)}")
        names.add(arm.name)
        if arm.weight < 1 and not step.split.adaptive:
            chk.add((*here, "arms", j), f"weight must be ≥ 1 (got {arm.weight})")
    if step.split.adaptive:
        _check_adaptive(chk, step, here)
        return
    for key in ADAPTIVE_KEYS:
        if getattr(step.split, key) is not None:
            chk.add((*here, key), f"{key} is a setting of adaptive splits (add mode: adaptive)")
    total = sum(a.weight for a in arms)
    if arms and total != 100:
        chk.add(here, f"arm weights must sum to 100 (they sum to {total})")


#: SplitSpec settings that only mean something with `mode: adaptive`.
ADAPTIVE_KEYS = ("metric", "window", "floor", "winner", "audience", "segments", "pool", "lookback", "drift",
                 "seed")


def _check_adaptive(chk: _Checker, step: Step, here: Loc) -> None:
    """An adaptive split's settings (docs/adaptive.md); weights are not used."""
    sp = step.split
    assert sp is not None
    for key in ("window", "lookback"):
        value = getattr(sp, key)
        if value is not None:
            chk.duration((*here, key), key, value)
    k = max(1, len(sp.arms))
    if sp.floor is not None and not 0 <= sp.floor <= 1 / k:
        chk.add((*here, "floor"), f"floor must be between 0 and 1/{k} arms = {1 / k:.3g} (got {sp.floor:g})")
    if sp.pool is not None and sp.pool < 0:
        chk.add((*here, "pool"), f"pool must be ≥ 0 (got {sp.pool:g})")
    try:
        window_text = sp.window or default_window(sp.metric)
        window = parse_duration(window_text)
        if sp.lookback is not None and parse_duration(sp.lookback) <= window:
            chk.add((*here, "lookback"), f"lookback {sp.lookback} must be longer than the reward window "
                                         f"{window_text} (no decision would settle inside it)")
    except ValueError:
        pass  # reported above
    if sp.winner and sp.lookback is not None:
        chk.add((*here, "winner"), "winner and lookback do not mix: a declared winner stops the evidence a "
                                   "lookback needs (pick one)")
    if sp.audience == "segment":
        if not sp.segments:
            chk.add((*here, "segments"), "audience: segment needs segments (the segments to learn in, in order)")
        for i, name in enumerate(sp.segments or []):
            chk.segment((*here, "segments", i), name)
    elif sp.segments:
        chk.add((*here, "segments"), "segments are only used with audience: segment")


def _check_action(chk: _Checker, step: Step, loc: Loc) -> None:
    a = step.action
    assert a is not None
    here = (*loc, "action")
    for name in ACTION_REQUIRES[a.type]:
        if getattr(a, name) is None:
            chk.add(here, f"{a.type} needs {name}")
    if a.type == "update_field" and a.field is not None:
        f = a.field
        if not (f in UPDATABLE_LEAD_FIELDS or (f.startswith("custom.") and len(f) > len("custom."))):
            chk.add(here, f"unknown field {clip_repr(f)} "
                          f"(a lead field: {', '.join(UPDATABLE_LEAD_FIELDS)}; or custom.<key>)")
        elif f == "stage" and a.value not in STAGE_VALUES:
            chk.add(here, f"stage value {clip_repr(a.value)} is not one of {', '.join(STAGE_VALUES)}")
    if a.type == "set_stage" and a.value is not None and a.value not in STAGE_VALUES:
        chk.add(here, f"unknown stage {clip_repr(a.value)} (one of {', '.join(STAGE_VALUES)})")
    if a.type == "adjust_score" and a.points == 0:
        chk.add(here, "points must not be 0")
    if a.type == "webhook" and a.url is not None and not a.url.startswith(("http://", "https://")):
        chk.add(here, f"webhook url must start with http:// or https:// (got {clip_repr(a.url)})")
    if a.type == "enroll" and a.sequence == chk.defn.name:
        chk.add(here, "a sequence cannot enroll leads into itself (use goto)")


def _check_lists(chk: _Checker, steps: list[Step], loc: Loc, targets: set[str]) -> None:
    """Steps after an exit or a goto in the same list can never run (unless a goto jumps to them)."""
    for i, step in enumerate(steps):
        here = (*loc, i)
        if (step.kind == "exit" or step.goto is not None) and i + 1 < len(steps) and steps[i + 1].id not in targets:
            why = "an exit" if step.kind == "exit" else f"goto {step.goto}"
            chk.add((*loc, i + 1), f"unreachable: follows {why} ({display_path(chk.data, here)})")
        if step.yes:
            _check_lists(chk, step.yes, (*here, "yes"), targets)
        if step.no:
            _check_lists(chk, step.no, (*here, "no"), targets)
        if step.split:
            for j, arm in enumerate(step.split.arms):
                _check_lists(chk, arm.steps, (*here, "split", "arms", j, "steps"), targets)


def _check_graph(chk: _Checker) -> None:
    """Reachability from the start and loops without a wait, on the compiled node graph."""
    try:
        compiled = compile_definition(chk.defn)
    except ValueError:
        return
    nodes = compiled.nodes

    def successors(node_id: str) -> list[str]:
        n = nodes[node_id]
        if n.kind == "exit":
            return []
        if n.kind in ("branch", "wait_for"):
            out = [n.yes, n.no]
        elif n.kind == "split":
            out = [first for _name, _w, first in n.arms]
        else:
            out = [n.next]
        return [s for s in out if s is not None and s in nodes]

    reached: set[str] = set()
    todo = [compiled.start] if compiled.start else []
    while todo:
        nid = todo.pop()
        if nid in reached:
            continue
        reached.add(nid)
        todo += successors(nid)
    already = {p.where for p in chk.problems if p.message.startswith("unreachable")}
    for nid, node in nodes.items():
        if nid not in reached and node.path not in already:
            chk.add(chk.step_locs[nid], "unreachable: no path from the first step leads here")

    # a loop without a wait: a cycle in the graph once wait/wait_for nodes are removed
    waits = {nid for nid, n in nodes.items() if n.kind in ("wait", "wait_for")}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    # iterative depth-first search (a program of thousands of consecutive steps must not hit the
    # recursion limit); each frame is (node, its successors still to visit)
    for root in nodes:
        if root in waits or root in state:
            continue
        stack: list[str] = [root]
        frames: list[Iterator[str]] = [iter(successors(root))]
        state[root] = 1
        while frames:
            nxt = next(frames[-1], None)
            if nxt is None:
                frames.pop()
                state[stack.pop()] = 2
                continue
            if nxt in waits:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    closer = next((c for c in reversed(cycle) if nodes[c].step.goto), cycle[-1])
                    chain = " → ".join([*cycle, nxt])
                    chk.add(chk.step_locs[closer], f"loop without a wait: {chain} (add a wait or wait_for)")
            elif nxt not in state:
                state[nxt] = 1
                stack.append(nxt)
                frames.append(iter(successors(nxt)))
