"""A sequence being edited in the tree editor: the `SequenceDef` with every edit the editor offers (add, edit
in place, move, delete, copy/paste, rename, settings), undo/redo, validation at node paths, and the one-line
summary of each node. Pure data over `sequences.model`: no Textual, no database (validation takes a
`Catalog` the caller built), so every key of the editor is testable without a terminal.

**Paths.** A step is addressed by the indices down the step lists, with an *arm label* between a step and
its children: `(3,)` is the fourth top-level step, `(3, "yes", 0)` the first step of its `yes` list,
`(0, "curiosity", 1)` the second step of the split arm named `curiosity`. Arm labels are `"yes"`/`"no"`
for `wait_for`/`branch` steps and the arm's name for a `split`. A path that ends with an arm label (or the
empty path `()`, the top-level list) addresses a *list*: the tree shows it as the arm's header row, and
"add after" on it adds the list's first step. Step paths end with an int, list paths with a str (or are
`()`). Every edit returns the path where the cursor goes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..errors import ValidationError
from ..sequences.adaptive import DEFAULT_METRIC, default_window
from ..sequences.codec import dump_definition, parse_text
from ..sequences.model import NODE_KINDS, Arm, SequenceDef, Step, iter_steps
from ..sequences.problems import Loc, ProblemsError
from ..sequences.validate import Catalog, default_rule_parser, validate_definition

Path = tuple[int | str, ...]
#: Undo history kept per editor (each entry is the definition as JSON text: see `_checkpoint`).
MAX_UNDO = 200
#: The settings `set_settings` edits: every top-level field of SequenceDef except `steps`.
SETTINGS = tuple(f for f in SequenceDef.model_fields if f != "steps")
#: A short label per node kind for the tree (the UI colours it by kind); `goto` and `arm` rows too.
BADGES = {"send": "SEND", "wait": "WAIT", "wait_for": "WATCH", "branch": "IF", "split": "A/B",
          "action": "DO", "exit": "EXIT", "goto": "GOTO", "arm": ""}

_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_COUNTER_RE = re.compile(r"^(.*?)-(\d+)$")


@dataclass(frozen=True)
class DraftProblem:
    """A validation problem located in the draft: `path` is the step (None for a setting), `setting` the
    top-level setting (`send_window`, `goal`, …; None for a step), `detail` what inside it (`goto`,
    `wait_for.events[0]`, `days[1]`), `where` the display path the CLI would print."""

    path: Path | None
    setting: str | None
    detail: str
    where: str
    message: str

    def format(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass(frozen=True)
class Row:
    """One row of the tree: a step, an arm header (`kind == "arm"`, path ends with the arm label) or the
    `goto` of a step (`kind == "goto"`, the step's path)."""

    path: Path
    depth: int
    kind: str
    badge: str
    summary: str
    step_id: str | None = None
    label: str | None = None


def is_list_path(path: Path) -> bool:
    return not path or isinstance(path[-1], str)


def copy_definition(defn: SequenceDef) -> SequenceDef:
    """A deep copy, through pydantic-core's JSON (3× faster than `model_copy(deep=True)` for a 200-step program;
    every field of a definition is JSON data, so nothing is lost)."""
    return SequenceDef.model_validate_json(defn.model_dump_json())


class SequenceDraft:
    def __init__(self, definition: SequenceDef, catalog: Catalog | None = None) -> None:
        self.defn = copy_definition(definition)
        self.catalog = catalog
        self._undo: list[str] = []  # the definitions before each edit, as JSON (see `_checkpoint`)
        self._redo: list[SequenceDef] = []
        self.changes = 0  # edits since load or the last `mark_saved`
        self.revision = 0  # bumps on every change (edits, undo, redo): a cache key for the UI
        self._problems: tuple[int, Catalog | None, list[DraftProblem]] | None = None

    # -- loading and dumping --------------------------------------------------------------------------

    @classmethod
    def new(cls, name: str, catalog: Catalog | None = None) -> SequenceDraft:
        """A blank program (no steps, default settings)."""
        return cls(SequenceDef(name=name, steps=[]), catalog)

    @classmethod
    def from_yaml(cls, text: str, filename: str = "<sequence>", catalog: Catalog | None = None) -> SequenceDraft:
        """Load YAML text; a file whose structure does not parse raises ProblemsError (its lines)."""
        parsed = parse_text(text, filename)
        if parsed.definition is None:
            raise ProblemsError(filename, parsed.problems)
        return cls(parsed.definition, catalog)

    def definition(self) -> SequenceDef:
        """A copy of the definition as it stands (what `service.save_draft` takes)."""
        return copy_definition(self.defn)

    def snapshot(self) -> SequenceDraft:
        """A draft of the definition as it stands, for a worker to check while editing goes on (one copy)."""
        return SequenceDraft(self.defn, self.catalog)

    def frozen(self) -> str:
        """The definition as it stands, as JSON text: what a worker thaws (`thaw`) into its own draft to check
        while editing goes on. Half a `snapshot` on the calling thread, and the text is not shared with anything."""
        return self.defn.model_dump_json()

    @classmethod
    def thaw(cls, frozen: str, catalog: Catalog | None = None) -> SequenceDraft:
        """A draft of a definition `frozen` earlier (equal to the `snapshot` taken then)."""
        draft = cls(SequenceDef(name="_", steps=[]), catalog)
        draft.defn = SequenceDef.model_validate_json(frozen)
        return draft

    def dump(self) -> str:
        """The canonical YAML (`nurture sequences export` format)."""
        return dump_definition(self.defn)

    @property
    def dirty(self) -> bool:
        return self.changes != 0

    def mark_saved(self) -> None:
        self.changes = 0

    # -- reading --------------------------------------------------------------------------------------

    def steps_at(self, list_path: Path) -> list[Step]:
        """The step list at a list path (a yes/no list that does not exist yet reads as empty)."""
        return self._list(list_path, create=False)

    def step(self, path: Path) -> Step:
        if is_list_path(path):
            raise ValidationError("path", f"{path!r} is a list, not a step")
        items = self._list(path[:-1], create=False)
        index = path[-1]
        assert isinstance(index, int)
        if not 0 <= index < len(items):
            raise ValidationError("path", f"no step at {path!r}")
        return items[index]

    def walk(self) -> list[tuple[Path, Step]]:
        """Every step with its path, depth first (display order)."""
        return list(_walk(self.defn.steps, ()))

    def find(self, step_id: str) -> Path | None:
        """The path of the step with this id (the first one if ids repeat)."""
        return next((p for p, s in self.walk() if s.id == step_id), None)

    def ids(self) -> set[str]:
        return {s.id for s in iter_steps(self.defn.steps)}

    def arms(self, path: Path) -> list[str]:
        """The arm labels of the step at `path` (yes/no, the split's arm names, or none)."""
        step = self.step(path)
        if step.has_yes_no:
            return ["yes", "no"]
        if step.split is not None:
            return [a.name for a in step.split.arms]
        return []

    def rows(self) -> list[Row]:
        """The tree as rows: each step, its `goto` (a row of its own), and under `wait_for`/`branch`/`split`
        steps one header row per arm with the arm's steps below it."""
        out: list[Row] = []

        def visit(steps: list[Step], base: Path, depth: int) -> None:
            for i, step in enumerate(steps):
                path = (*base, i)
                kind = step.kind  # a search of the kinds: once per step (the tree asks for rows on every edit)
                out.append(Row(path, depth, kind, BADGES[kind], summary(step), step.id, step.label))
                if kind in ("wait_for", "branch"):  # has_yes_no
                    for arm in ("yes", "no"):
                        out.append(Row((*path, arm), depth + 1, "arm", "", arm))
                        visit(getattr(step, arm) or [], (*path, arm), depth + 2)
                elif step.split is not None:
                    for a in step.split.arms:
                        share = "" if step.split.adaptive else f" {a.weight}%"
                        out.append(Row((*path, a.name), depth + 1, "arm", "", f"{a.name}{share}"))
                        visit(a.steps, (*path, a.name), depth + 2)
                if step.goto is not None:
                    out.append(Row(path, depth, "goto", BADGES["goto"], f"goto {step.goto}", step.id))

        visit(self.defn.steps, (), 0)
        return out

    def referrers(self, path: Path) -> list[str]:
        """Ids of the steps outside the subtree at `path` that point into it — with `goto` or as a
        `wait_for` event's `node` — so the UI can ask before deleting (or moving) it."""
        inside = {s.id for s in _subtree(self.step(path))}
        own = {id(s) for s in _subtree(self.step(path))}
        out: list[str] = []
        for step in iter_steps(self.defn.steps):
            if id(step) in own:
                continue
            nodes = {e.node for e in step.wait_for.events} if step.wait_for is not None else set()
            if (step.goto is not None and step.goto in inside) or nodes & inside:
                out.append(step.id)
        return out

    # -- new steps ------------------------------------------------------------------------------------

    def new_id(self, kind: str, taken: Iterable[str] = ()) -> str:
        """A fresh id from the kind and a counter: `send-2` for the draft's second send, `wait-for-3`, …
        (the counter skips ids already in use)."""
        used = self.ids() | set(taken)
        base = kind.replace("_", "-")
        n = sum(1 for s in iter_steps(self.defn.steps) if s.kind == kind) + 1
        while f"{base}-{n}" in used:
            n += 1
        return f"{base}-{n}"

    def blank(self, kind: str) -> Step:
        """A new step of `kind` with a fresh id and placeholder values for the node form to fill in (a
        blank send has no template yet, a wait_for no event: validation says so at the node)."""
        if kind not in NODE_KINDS:
            raise ValidationError("kind", f"unknown step kind {kind!r} (one of {', '.join(NODE_KINDS)})")
        specs: dict[str, dict[str, Any]] = {
            "send": {"template": ""},
            "wait": {"duration": "1d"},
            "wait_for": {"events": [{"kind": "open"}], "window": "3d"},
            "branch": {"rule": {"all": []}},
            "split": {"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]},
            "action": {"type": "add_tag", "tag": ""},
            "exit": {},
        }
        return Step.model_validate({"id": self.new_id(kind), kind: specs[kind]})

    # -- editing --------------------------------------------------------------------------------------

    def add_after(self, path: Path, step: Step) -> Path:
        """Insert `step` after the step at `path`; on a list path (an arm header, or `()` for the top-level
        list) it becomes that list's first step. Its ids must be new (see `paste_after` for copies)."""
        self._check_new_ids(step)
        self._checkpoint()
        items, index = self._insertion_point(path)
        items.insert(index, step.model_copy(deep=True))
        return (*(path if is_list_path(path) else path[:-1]), index)

    def add_first_child(self, path: Path, arm: str, step: Step) -> Path:
        """Insert `step` as the first step of arm `arm` (yes / no / a split arm's name) of the step at `path`."""
        return self.add_after((*path, arm), step)

    def replace(self, path: Path, step: Step, *, drop_children: bool = False) -> Path:
        """Edit the step at `path` in place (what the node form saves). Its children stay: the yes/no lists
        when the new step is a `wait_for`/`branch` bringing none of its own, a split's arm steps by arm name
        (renamed arms take, in order, the steps of the arms whose names are gone). An edit that would drop
        child steps (e.g. a branch turned into a send) raises ValidationError unless `drop_children`. A changed
        id is checked and rewritten in every `goto` and `wait_for` event `node` that pointed at the old one."""
        old = self.step(path)
        new = step.model_copy(deep=True)
        if new.has_yes_no and old.has_yes_no:
            if new.yes is None:
                new.yes = copy.deepcopy(old.yes)
            if new.no is None:
                new.no = copy.deepcopy(old.no)
        if new.split is not None and old.split is not None:
            _carry_arms(old.split.arms, new.split.arms)
        kept = {s.id for s in _subtree(new)}
        lost = [s.id for s in _subtree(old)[1:] if s.id not in kept]
        if lost and not drop_children:
            raise ValidationError(old.id, f"this edit would delete {len(lost)} step(s) below it: {', '.join(lost)}")
        others = self.ids() - {s.id for s in _subtree(old)}
        for s in _subtree(new):
            check_step_id(s.id)
            if s.id in others:
                raise ValidationError(s.id, f"step id {s.id!r} is already used")
        self._checkpoint()
        items = self._list(path[:-1], create=False)
        index = path[-1]
        assert isinstance(index, int)
        items[index] = new
        if new.id != old.id:
            _rewrite_refs(self.defn.steps, {old.id: new.id})
        return path

    def rename(self, path: Path, new_id: str) -> Path:
        """Give the step a new id; every `goto` (and `wait_for` event `node`) that pointed at it follows."""
        old = self.step(path)
        if new_id == old.id:
            return path
        check_step_id(new_id)
        if new_id in self.ids():
            raise ValidationError(new_id, f"step id {new_id!r} is already used")
        self._checkpoint()
        step = self.step(path)
        _rewrite_refs(self.defn.steps, {step.id: new_id})
        step.id = new_id
        return path

    def move(self, path: Path, delta: int) -> Path:
        """Move up (-1) or down (+1) within its list; at either end it stays (and that is no edit)."""
        if is_list_path(path):
            return path
        items = self._list(path[:-1], create=False)
        index = path[-1]
        assert isinstance(index, int)
        new = index + delta
        if not 0 <= new < len(items):
            return path
        self._checkpoint()
        items = self._list(path[:-1], create=False)
        items[index], items[new] = items[new], items[index]
        return (*path[:-1], new)

    def delete(self, path: Path) -> Path:
        """Delete the step and everything below it (ask first when `referrers(path)` is not empty: their
        gotos are left dangling, and validation reports them). Returns where the cursor goes: the step now
        at that place, else the one before it, else the list's header."""
        self.step(path)
        self._checkpoint()
        list_path = path[:-1]
        items = self._list(list_path, create=False)
        index = path[-1]
        assert isinstance(index, int)
        del items[index]
        if not items:
            self._drop_empty_list(list_path)
            return list_path
        return (*list_path, min(index, len(items) - 1))

    def copy(self, path: Path) -> Step:
        """The step with its subtree (for `paste_after`)."""
        return self.step(path).model_copy(deep=True)

    def paste_after(self, path: Path, subtree: Step) -> Path:
        """Insert a copied subtree after `path` (as `add_after`). Ids already used in the draft get a fresh
        counter (`flag-intent-1` → `flag-intent-3`), and the subtree's own gotos and event nodes follow
        them; gotos to steps outside the subtree are kept."""
        pasted = subtree.model_copy(deep=True)
        used = self.ids()
        mapping: dict[str, str] = {}
        for s in _subtree(pasted):
            if s.id in used:
                mapping[s.id] = _next_free(s.id, used)
            used.add(mapping.get(s.id, s.id))
        _rewrite_refs([pasted], mapping)
        for s in _subtree(pasted):
            s.id = mapping.get(s.id, s.id)
        return self.add_after(path, pasted)

    def set_settings(self, **fields: Any) -> None:
        """Change top-level settings (`SETTINGS`: name, description, stage, entry, reentry, goal, exit_when,
        suppressed, send_window, caps, templates); values are models or their plain data. A value of the
        wrong shape raises ValidationError and changes nothing."""
        unknown = [k for k in fields if k not in SETTINGS]
        if unknown:
            raise ValidationError("settings", f"unknown setting {unknown[0]!r} (one of {', '.join(SETTINGS)})")
        data = {k: getattr(self.defn, k) for k in SETTINGS}
        data.update(fields)
        try:
            candidate = SequenceDef.model_validate({**data, "steps": []})
        except PydanticValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValidationError(where, str(err["msg"]).removeprefix("Value error, ")) from exc
        self._checkpoint()
        for key in fields:
            setattr(self.defn, key, getattr(candidate, key))

    def set_window(self, **fields: Any) -> None:
        """Change fields of the send window (days, start, end, timezone_source, default_timezone, holidays,
        country, outside), creating it with its defaults first; `set_settings(send_window=None)` removes it."""
        current = self.defn.send_window.model_dump() if self.defn.send_window is not None else {}
        self.set_settings(send_window={**current, **fields})

    # -- undo -----------------------------------------------------------------------------------------

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.defn)
        self.defn = SequenceDef.model_validate_json(self._undo.pop())
        self.changes -= 1
        self.revision += 1
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.defn.model_dump_json())
        self.defn = self._redo.pop()
        self.changes += 1
        self.revision += 1
        return True

    # -- checking -------------------------------------------------------------------------------------

    def problems(self, catalog: Catalog | None = None) -> list[DraftProblem]:
        """Every problem `sequences.validate` finds, located at draft paths. `catalog` (else the draft's own,
        else rules only) says which templates and segments exist; the draft's inline templates are added."""
        given = cat = catalog or self.catalog
        cached = self._problems
        if cached is not None and cached[0] == self.revision and cached[1] is given:
            return list(cached[2])
        if cat is None:
            cat = Catalog(templates=None, segment_exists=None, parse_rule=default_rule_parser())
        elif cat.templates is not None and self.defn.templates:
            cat = dc_replace(cat, templates=cat.templates | {t.name for t in self.defn.templates})
        locs: list[Loc] = []

        def record(loc: Loc) -> int:  # validate hands each problem's loc to `locate`: keep it, by index
            locs.append(loc)
            return len(locs)

        out = []
        for p in validate_definition(self.defn, cat, locate=record):
            loc = locs[p.line - 1] if p.line else ()
            path, setting, detail = self._locate(loc)
            out.append(DraftProblem(path, setting, detail, p.where, p.message))
        self._problems = (self.revision, given, out)
        return list(out)

    @property
    def publishable(self) -> bool:
        """No problems (against the draft's catalog): only then may it be published."""
        return not self.problems()

    def problems_at(self, path: Path, catalog: Catalog | None = None) -> list[DraftProblem]:
        return [p for p in self.problems(catalog) if p.path == path]

    # -- internals ------------------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        # The history holds text, not models: a 200-step copy is over a thousand objects the cyclic GC would
        # scan on every full collection, and two hundred of them made those collections slow enough to
        # stall the editor; text is one object it never scans. `undo` validates it back (what a copy did).
        self._undo.append(self.defn.model_dump_json())
        del self._undo[:-MAX_UNDO]
        self._redo.clear()
        self.changes += 1
        self.revision += 1

    def _list(self, list_path: Path, *, create: bool) -> list[Step]:
        if not list_path:
            return self.defn.steps
        if not is_list_path(list_path):
            raise ValidationError("path", f"{list_path!r} is a step, not a list")
        step = self.step(list_path[:-1])
        arm = list_path[-1]
        assert isinstance(arm, str)
        if step.has_yes_no and arm in ("yes", "no"):
            items = getattr(step, arm)
            if items is None:
                items = []
                if create:
                    setattr(step, arm, items)
            return items
        if step.split is not None:
            for a in step.split.arms:
                if a.name == arm:
                    return a.steps
            raise ValidationError(step.id, f"no arm {arm!r} (arms: {', '.join(a.name for a in step.split.arms)})")
        kind = step.kind
        raise ValidationError(step.id, f"a {kind} step has no {arm!r} list (only wait_for and branch have yes/no, "
                                       "and split its arms)")

    def _insertion_point(self, path: Path) -> tuple[list[Step], int]:
        if is_list_path(path):
            return self._list(path, create=True), 0
        items = self._list(path[:-1], create=False)
        index = path[-1]
        assert isinstance(index, int)
        if not 0 <= index < len(items):
            raise ValidationError("path", f"no step at {path!r}")
        return items, index + 1

    def _drop_empty_list(self, list_path: Path) -> None:
        """An emptied yes/no list goes away (missing and empty mean the same; the export leaves it out)."""
        arm = list_path[-1] if list_path else None
        if isinstance(arm, str) and arm in ("yes", "no"):
            step = self.step(list_path[:-1])
            if step.has_yes_no:
                setattr(step, arm, None)

    def _check_new_ids(self, step: Step) -> None:
        used = self.ids()
        for s in _subtree(step):
            check_step_id(s.id)
            if s.id in used:
                raise ValidationError(s.id, f"step id {s.id!r} is already used")
            used.add(s.id)

    def _locate(self, loc: Loc) -> tuple[Path | None, str | None, str]:
        """A validation loc (`('steps', 2, 'yes', 1, 'goto')`) → (draft path, setting, detail)."""
        if not loc or loc[0] != "steps":
            head = str(loc[0]) if loc else None
            return None, head, _detail(loc[1:])
        path: Path = ()
        rest: list[Any] = list(loc[1:])
        steps = self.defn.steps
        while rest and isinstance(rest[0], int):
            index: int = rest.pop(0)
            if not 0 <= index < len(steps):
                break
            path = (*path, index)
            step = steps[index]
            if len(rest) >= 2 and str(rest[0]) in ("yes", "no") and isinstance(rest[1], int):
                arm = str(rest.pop(0))
                path = (*path, arm)
                steps = getattr(step, arm) or []
            elif (len(rest) >= 5 and rest[:2] == ["split", "arms"] and rest[3] == "steps"
                  and isinstance(rest[2], int) and isinstance(rest[4], int) and step.split is not None):
                a = step.split.arms[rest[2]]
                del rest[:4]
                path = (*path, a.name)
                steps = a.steps
        return (path or None), (None if path else "steps"), _detail(tuple(rest))


# ---------------------------------------------------------------------------------------------------
# Summaries


def badge(kind: str) -> str:
    return BADGES.get(kind, kind.upper())


def summary(step: Step) -> str:
    """One line that says what the node does (its `goto` is a row of its own: `goto fast-track`):
    `send welcome-1`, `wait 2d`, `wait_for click '*/pricing*' up to 3d`, `wait_for open of email-1 exactly 5d`,
    `branch score ≥ 50 AND grade ≥ B-`, `split A 50 / B 50`, `action add_to_campaign 'Webinar' status
    Responded`, `exit`."""
    if step.send is not None:
        cat = f" [{step.send.category}]" if step.send.category else ""
        sto = " at the optimal time" if step.send.send_time == "optimal" else ""
        return f"send {step.send.template or '?'}{cat}{sto}"
    if step.wait is not None:
        w = step.wait
        if w.duration is not None:
            return f"wait {w.duration}"
        if w.until is not None:
            return f"wait until {w.until.isoformat()}"
        return f"wait until {w.weekday} {w.time or '09:00'}"
    if step.wait_for is not None:
        wf = step.wait_for
        events = " or ".join(_event(e.kind, e.node, e.template, e.url, e.form) for e in wf.events) or "?"
        mode = "exactly" if wf.mode == "exactly" else "up to"
        return f"wait_for {events} {mode} {wf.window or '?'}"
    if step.branch is not None:
        if step.branch.segment is not None:
            return f"branch in segment {_q(step.branch.segment)}"
        return f"branch {render_rule(step.branch.rule)}"
    if step.split is not None and step.split.adaptive:  # docs/adaptive.md
        sp = step.split
        per = f" per {sp.audience}" if sp.audience and sp.audience != "all" else ""
        return (f"split adaptive on {sp.metric or DEFAULT_METRIC} within {sp.window or default_window(sp.metric)}{per}"
                f"{', winner at 95%' if sp.winner else ''}: " + " / ".join(a.name for a in sp.arms))
    if step.split is not None:
        return "split " + " / ".join(f"{a.name} {a.weight}" for a in step.split.arms)
    if step.action is not None:
        return f"action {_action(step)}"
    assert step.exit is not None
    reason = step.exit.reason
    return "exit" if reason == "exit step" else f"exit {_q(reason)}"


def render_rule(rule: Any) -> str:
    """A branch condition in the segment language's English (`score ≥ 50 AND grade ≥ B-`); the raw data
    while it does not parse."""
    from ..segments.rules import parse_rule, render

    try:
        return render(parse_rule(rule))
    except ValidationError:
        return str(rule)


def _q(text: Any) -> str:
    return "'" + str(text).replace("'", "’") + "'"


def _event(kind: str, node: str | None, template: str | None, url: str | None, form: str | None) -> str:
    parts = [kind]
    if node is not None:
        parts.append(f"of {node}")
    if template is not None:
        parts.append(f"of template {template}")
    if form is not None:
        parts.append(_q(form))
    if url is not None:
        parts.append(_q(url))
    return " ".join(parts)


def _action(step: Step) -> str:
    a = step.action
    assert a is not None
    t = a.type
    if t == "update_field":
        return f"{t} {a.field or '?'} = {_q(a.value) if isinstance(a.value, str) else a.value}"
    if t == "set_stage":
        return f"{t} {a.value}"
    if t == "adjust_score":
        points = a.points or 0
        shown = int(points) if float(points).is_integer() else points
        return f"{t} {'+' if points > 0 else ''}{shown}"
    if t == "add_to_campaign":
        status = f" status {a.status}" if a.status else ""
        return f"{t} {_q(a.campaign or '?')}{status}"
    if t == "assign_owner":
        return f"{t} {a.owner}"
    if t in ("create_task", "notify_rep"):
        return f"{t} {_q(a.subject)}" if a.subject else t
    if t in ("add_tag", "remove_tag"):
        return f"{t} {a.tag}"
    if t == "enroll":
        return f"{t} {a.sequence}"
    return f"{t} {a.url}"


# ---------------------------------------------------------------------------------------------------
# Helpers


def _walk(steps: list[Step], base: Path) -> Iterator[tuple[Path, Step]]:
    for i, step in enumerate(steps):
        path = (*base, i)
        yield path, step
        if step.has_yes_no:
            for arm in ("yes", "no"):
                yield from _walk(getattr(step, arm) or [], (*path, arm))
        elif step.split is not None:
            for a in step.split.arms:
                yield from _walk(a.steps, (*path, a.name))


def _subtree(step: Step) -> list[Step]:
    return iter_steps([step])


def _detail(rest: tuple[Any, ...] | Loc) -> str:
    out = ""
    for key in rest:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def check_step_id(step_id: str) -> None:
    if not _SLUG_RE.match(step_id):
        raise ValidationError(step_id or "id", "a step id is a slug: lower-case letters, digits, - and _")


def _next_free(step_id: str, used: set[str]) -> str:
    m = _COUNTER_RE.match(step_id)
    base, n = (m.group(1), int(m.group(2))) if m else (step_id, 1)
    n += 1
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


def _rewrite_refs(steps: list[Step], mapping: dict[str, str]) -> None:
    """Point every goto and wait_for event node under `steps` from the old ids to the new ones."""
    if not mapping:
        return
    for s in iter_steps(steps):
        if s.goto is not None and s.goto in mapping:
            s.goto = mapping[s.goto]
        if s.wait_for is not None:
            for e in s.wait_for.events:
                if e.node is not None and e.node in mapping:
                    e.node = mapping[e.node]


def _carry_arms(old: list[Arm], new: list[Arm]) -> None:
    """Give each new arm without steps the steps of the old arm of the same name; the new arms whose name is
    new (renamed) take, in order, the steps of the old arms whose name is gone."""
    names = {a.name for a in new}
    by_name = {a.name: a for a in old}
    orphans = [a for a in old if a.name not in names]
    for arm in new:
        source = by_name.get(arm.name) or (orphans.pop(0) if orphans else None)
        if not arm.steps and source is not None:
            arm.steps = copy.deepcopy(source.steps)
