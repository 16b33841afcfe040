"""The sequence definition: what admins write in YAML and edit in the tree editor (docs/sequences.md).

A sequence is a list of `steps`. Each step is exactly one node kind: `send`, `wait`, `wait_for`,
`branch`, `split`, `action` or `exit`. `wait_for` and `branch` carry `yes`/`no` child lists, `split`
carries weighted `arms`, each with its own step list. When a child list ends the lead *rejoins* the
flow at the step after its parent (put an `exit` at the end of a list to stop there instead). Any step
may set `goto: <step id>` to jump instead of continuing (loops are allowed only through a wait).

Conditions (`branch.rule`, `goal`, `exit_when`, `entry.rule`) are segment rules in the segment rule
language, kept here as plain JSON-able dicts and validated by the segments package.

`compile_definition()` flattens the tree into a node map with successor ids: that is what the engine,
the simulator and the per-node counters work on. Step ids are stable slugs, so versions can be diffed
and waiting enrollments migrated by id.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NODE_KINDS = ("send", "wait", "wait_for", "branch", "split", "action", "exit")
WAIT_FOR_EVENTS = ("open", "click", "form", "page_view", "reply", "campaign_response", "unsubscribe")
ACTION_TYPES = (
    "update_field", "set_stage", "adjust_score", "add_to_campaign", "assign_owner", "create_task",
    "notify_rep", "add_tag", "remove_tag", "enroll", "webhook",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Lead columns an `update_field` action may write; anything else must be `custom.<key>` (score, owner,
#: tags and stage have their own action types; identity and sync columns are not writable).
UPDATABLE_LEAD_FIELDS = (
    "title", "company", "industry", "country", "state", "city", "phone", "status", "persona", "stage",
    "lead_source", "timezone",
)

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def parse_duration(text: str | int | float) -> timedelta:
    """'5d', '36h', '1w2d', '90m', '30s' (or a number of seconds) → timedelta. Raises ValueError."""
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    s = str(text).strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    pos = 0
    total = timedelta()
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += timedelta(**{_DURATION_UNITS[m.group(2)]: float(m.group(1))})
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"not a duration: {text!r} (use e.g. 5d, 36h, 1w2d, 90m)")
    return total


def format_duration(delta: timedelta) -> str:
    secs = int(delta.total_seconds())
    if secs == 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            parts.append(f"{secs // size}{unit}")
            secs %= size
    return "".join(parts)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:80] or "step"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EventMatch(_Model):
    """An engagement event a `wait_for` (or event entry) listens for."""

    kind: str
    node: str | None = None  # the send step whose email was opened/clicked
    template: str | None = None
    url: str | None = None  # glob pattern, e.g. "*/pricing*"
    form: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in WAIT_FOR_EVENTS:
            raise ValueError(f"unknown event kind {v!r} (one of {', '.join(WAIT_FOR_EVENTS)})")
        return v


class SendSpec(_Model):
    template: str
    category: str | None = None  # subscription category; default: the template's
    send_time: Literal["optimal"] | None = None  # optimal: the lead's best hour (docs/adaptive.md)


class WaitSpec(_Model):
    duration: str | None = None
    until: date | None = None  # a calendar date (start of day in the lead's time zone)
    weekday: str | None = None  # next given weekday …
    time: str | None = None  # … at this local time (HH:MM)

    @model_validator(mode="after")
    def _one_form(self) -> WaitSpec:
        forms = [self.duration is not None, self.until is not None, self.weekday is not None]
        if sum(forms) != 1:
            raise ValueError("wait needs exactly one of duration, until, weekday")
        return self


class WaitForSpec(_Model):
    events: list[EventMatch]
    window: str | None = None
    mode: Literal["up_to", "exactly"] = "up_to"


class BranchSpec(_Model):
    rule: dict[str, Any] | None = None
    segment: str | None = None  # a saved segment name instead of an inline rule

    @model_validator(mode="after")
    def _one(self) -> BranchSpec:
        if (self.rule is None) == (self.segment is None):
            raise ValueError("branch needs exactly one of rule, segment")
        return self


class ActionSpec(_Model):
    type: str
    field: str | None = None
    value: Any = None
    points: float | None = None
    campaign: str | None = None
    status: str | None = None  # campaign member status
    owner: str | None = None  # username, "group:NAME" (round-robin) or "queue:NAME"
    subject: str | None = None
    body: str | None = None
    tag: str | None = None
    sequence: str | None = None
    url: str | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in ACTION_TYPES:
            raise ValueError(f"unknown action type {v!r} (one of {', '.join(ACTION_TYPES)})")
        return v


class ExitSpec(_Model):
    reason: str = "exit step"


class Arm(_Model):
    name: str
    weight: int = 0  # weighted splits: percent of traffic (ignored by adaptive splits)
    steps: list[Step] = Field(default_factory=list)


SPLIT_METRICS = ("open", "click", "goal")
AUDIENCE_KEYS = ("all", "persona", "stage", "segment")


class SplitSpec(_Model):
    """`mode: weighted` (the default) splits by fixed percentages; `mode: adaptive` allocates by Thompson
    sampling on the metric (docs/adaptive.md; unset settings take the defaults of sequences/adaptive.py)."""

    mode: Literal["weighted", "adaptive"] | None = None
    metric: Literal["open", "click", "goal"] | None = None  # the reward: this happens within `window`
    window: str | None = None  # the delayed-reward window, e.g. 3d
    floor: float | None = None  # minimum traffic share per arm while no winner is declared
    winner: bool | None = None  # declare a winner at P(best) ≥ 0.95 and send everyone to it
    audience: Literal["all", "persona", "stage", "segment"] | None = None  # learn separately per …
    segments: list[str] | None = None  # audience: segment — the segments, first match wins
    pool: float | None = None  # pooling strength toward the overall posterior (pseudo-observations)
    lookback: str | None = None  # only decisions of this recent period count (for drifting rates)
    drift: bool | None = None  # restart the evidence when the rates change (default on)
    seed: int | None = None
    arms: list[Arm]  # last: the settings read first in a file

    @property
    def adaptive(self) -> bool:
        return self.mode == "adaptive"


class Step(_Model):
    id: str
    label: str | None = None
    send: SendSpec | None = None
    wait: WaitSpec | None = None
    wait_for: WaitForSpec | None = None
    branch: BranchSpec | None = None
    split: SplitSpec | None = None
    action: ActionSpec | None = None
    exit: ExitSpec | None = None
    yes: list[Step] | None = None
    no: list[Step] | None = None
    goto: str | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG_RE.match(v):
            raise ValueError(f"step id {v!r} must be a slug (lower-case letters, digits, - and _)")
        return v

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Step:
        kinds = [k for k in NODE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a step needs exactly one of {', '.join(NODE_KINDS)} (found {found})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in NODE_KINDS if getattr(self, k) is not None)

    @property
    def has_yes_no(self) -> bool:
        return self.kind in ("wait_for", "branch")


class EntrySpec(_Model):
    type: Literal["segment", "manual", "event"] = "manual"
    segment: str | None = None
    rule: dict[str, Any] | None = None
    event: EventMatch | None = None


class SendWindow(_Model):
    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: str = "09:00"
    end: str = "17:00"
    timezone_source: Literal["lead", "account", "sequence"] = "lead"
    default_timezone: str = "UTC"
    holidays: bool = True
    country: str | None = None  # holiday calendar when neither the lead nor its account has a country
    outside: Literal["next_window", "skip"] = "next_window"


class Caps(_Model):
    per_day: int | None = None
    per_week: int | None = None


class TemplateSpec(_Model):
    name: str
    subject: str
    html: str
    text: str | None = None
    category: str = "marketing"
    stage: str | None = None


class SequenceDef(_Model):
    name: str
    description: str = ""
    stage: str | None = None
    entry: EntrySpec = Field(default_factory=EntrySpec)
    reentry: Literal["never", "anytime", "after_exit"] = "never"
    goal: dict[str, Any] | None = None
    exit_when: list[dict[str, Any]] = Field(default_factory=list)
    suppressed: Literal["skip", "exit"] = "skip"
    category: str | None = None  # the sends' subscription category unless a step names one; default: the template's
    send_window: SendWindow | None = None
    caps: Caps | None = None
    templates: list[TemplateSpec] = Field(default_factory=list)
    steps: list[Step]

    def to_json(self) -> dict[str, Any]:
        """The stored/serialised form (what sequence.draft and sequence_version.definition hold)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


# ---------------------------------------------------------------------------------------------------
# Compiled form: a flat node map with successor ids.

END = None  # successor id meaning "the sequence is done"


@dataclass
class Node:
    id: str
    kind: str
    step: Step
    path: str  # where it is in the file, e.g. steps.fast_track.yes[1]
    next: str | None = END  # successor for plain nodes (and after a yes/no/arm list ends)
    yes: str | None = END
    no: str | None = END
    arms: list[tuple[str, int, str | None]] = field(default_factory=list)  # (name, weight, first id)


@dataclass
class CompiledSequence:
    definition: SequenceDef
    start: str | None
    nodes: dict[str, Node]

    def successor(self, node_id: str, outcome: str | None = None) -> str | None:
        """The next node id after `node_id` given an outcome ('yes'/'no' or an arm name)."""
        node = self.nodes[node_id]
        if node.kind in ("wait_for", "branch"):
            if outcome not in ("yes", "no"):
                raise ValueError(f"{node.path}: needs a yes/no outcome")
            return node.yes if outcome == "yes" else node.no
        if node.kind == "split":
            for name, _w, first in node.arms:
                if name == outcome:
                    return first
            raise ValueError(f"{node.path}: unknown arm {outcome!r}")
        if node.kind == "exit":
            return END
        return node.next


def step_path(base: str, index: int, step_id: str | None) -> str:
    """How a step is named in messages: top-level steps by id (`steps.intro`), nested ones by position
    (`steps.fast_track.yes[1]`, `steps.ab.split.arms[0].steps[2]`)."""
    if base == "steps" and step_id:
        return f"steps.{step_id}"
    return f"{base}[{index}]"


def choose_arm(node: Node, lead_id: int) -> str:
    """The split arm a lead takes: deterministic per (lead, node) — crc32 bucket 0–99 against the
    cumulative weights — so the same lead always takes the same arm (the engine and the simulator
    both draw this way)."""
    bucket = zlib.crc32(f"{lead_id}:{node.id}".encode()) % 100
    total = 0
    for name, weight, _first in node.arms:
        total += weight
        if bucket < total:
            return name
    return node.arms[-1][0]


def compile_definition(defn: SequenceDef) -> CompiledSequence:
    """Flatten the step tree. Duplicate ids raise ValueError (validation reports them with paths)."""
    nodes: dict[str, Node] = {}

    def walk(steps: list[Step], base: str, after: str | None) -> str | None:
        """Register `steps`; return the first id of the list (or `after` if empty)."""
        ids = [s.id for s in steps]
        for i, step in enumerate(steps):
            path = step_path(base, i, step.id)
            if step.id in nodes:
                raise ValueError(f"{path}: duplicate step id {step.id!r}")
            follow = ids[i + 1] if i + 1 < len(ids) else after
            if step.goto:
                follow = step.goto
            node = Node(id=step.id, kind=step.kind, step=step, path=path, next=follow)
            nodes[step.id] = node
            if step.has_yes_no:
                node.yes = walk(step.yes or [], f"{path}.yes", follow)
                node.no = walk(step.no or [], f"{path}.no", follow)
            elif step.split is not None:
                for j, arm in enumerate(step.split.arms):
                    first = walk(arm.steps, f"{path}.split.arms[{j}].steps", follow)
                    node.arms.append((arm.name, arm.weight, first))
        return ids[0] if ids else after

    start = walk(defn.steps, "steps", END)
    return CompiledSequence(definition=defn, start=start, nodes=nodes)


def iter_steps(steps: list[Step]) -> list[Step]:
    """Every step in the tree, depth first."""
    out: list[Step] = []
    for s in steps:
        out.append(s)
        out += iter_steps(s.yes or [])
        out += iter_steps(s.no or [])
        if s.split:
            for arm in s.split.arms:
                out += iter_steps(arm.steps)
    return out


Arm.model_rebuild()
Step.model_rebuild()
