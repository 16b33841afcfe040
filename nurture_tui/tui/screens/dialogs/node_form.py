"""The sequence editor's node dialogs: `KindModal` (which kind of step to add: one letter) and `NodeForm` (a
step's own values, per kind: a template picker, durations, the events a `wait_for` listens for with its
window and `up_to`/`exactly`, a branch condition in the quick-filter syntax or as a segment, split arms and
weights, an action type picker with that type's parameters, an exit reason; then id, label and goto).

`enter` moves to the next field and saves on the last, `ctrl+s` saves from anywhere, `esc` cancels. The
form refuses a bad value in one line (`sequence_nodes.build_step`: validate's own checks on the step alone);
what depends on the rest of the program stays a draft problem, shown at the node."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import yaml
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from ....console.sequence_nodes import build_step, form_data
from ....errors import ValidationError
from ....sequences.model import ACTION_TYPES, WAIT_FOR_EVENTS, WEEKDAYS, Step
from ...keymap import bind
from ...widgets.segments.pick_list import Choice, PickList

#: The kinds `a`/`A` offer, with the letter that picks each.
KINDS = (("s", "send", "send an email"), ("w", "wait", "wait a duration, until a date or a weekday"),
         ("f", "wait_for", "wait for an event (yes/no arms)"), ("b", "branch", "branch on a condition (yes/no arms)"),
         ("x", "split", "A/B split (weighted arms)"), ("a", "action", "do something (score, tag, field, campaign…)"),
         ("e", "exit", "leave the sequence"))
#: The parameters each action type takes, in the order the form asks for them.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "update_field": ("field", "value"), "set_stage": ("value",), "adjust_score": ("points",),
    "add_to_campaign": ("campaign", "status"), "assign_owner": ("owner",), "create_task": ("subject", "body"),
    "notify_rep": ("subject", "body"), "add_tag": ("tag",), "remove_tag": ("tag",), "enroll": ("sequence",),
    "webhook": ("url",),
}
PARAMS = ("field", "value", "points", "campaign", "status", "owner", "subject", "body", "tag", "sequence", "url")
PARAM_HINTS = {"field": "lead field: status, industry, custom.<key> …", "value": "the value",
               "points": "points, e.g. 10 or -5", "campaign": "campaign name", "status": "member status",
               "owner": "username, group:NAME or queue:NAME", "subject": "task / notification subject",
               "body": "body (optional)", "tag": "tag", "sequence": "sequence to enrol into", "url": "https://…"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class KindModal(ModalScreen[str | None]):
    """Pick the kind of the new step: its letter, or `↑`/`↓` and `enter`."""

    CSS_PATH = "node_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "node_kind.cancel"),
        *[bind(letter, f"pick('{kind}')", kind, f"node_kind.{kind}", show=False) for letter, kind, _h in KINDS],
    ]

    def __init__(self, title: str = "Add a step") -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield OptionList(*[Option(f"{letter}  {kind:<9} {help_}", id=kind) for letter, kind, help_ in KINDS],
                             id="kinds")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, kind: str) -> None:
        self.dismiss(kind)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NodeForm(ModalScreen[Step | None]):
    """Returns the step built from the form (its children are the editor's business), or None."""

    CSS_PATH = "node_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "node_form.cancel"),
        bind("ctrl+s", "save", "Save", "node_form.save", priority=True),
    ]

    def __init__(self, step: Step, *, sequence: str, ids: list[str], names: dict[str, list[str]],
                 new: bool = False) -> None:
        super().__init__()
        self.step = step
        self.kind = step.kind
        self.sequence = sequence
        self.ids = ids
        self.names = names
        self.new = new
        self.data = form_data(step)
        self._problem_text = ""

    # -- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        spec = self.data.get(self.kind, {})
        with VerticalScroll(id="dialog"):
            yield Label(f"{'New' if self.new else 'Edit'} {self.kind} step", id="title")
            yield from self._field("id", "Id  (a slug; gotos follow a rename)", self.step.id)
            yield from self._kind_fields(spec)
            yield from self._field("label", "Label  (optional)", self.step.label or "")
            yield from self._field("goto", "Goto  (optional: jump to this step id after it)", self.step.goto or "",
                                   self.ids)
            yield Label("", id="problem")
            yield Label("enter: next field / save · ctrl+s: save · esc: cancel", id="hint")

    def _field(self, name: str, title: str, value: str = "", suggest: list[str] | None = None) -> list[Widget]:
        box = Input(value, id=name, select_on_focus=True)
        if suggest:
            box.suggester = SuggestFromList(suggest, case_sensitive=True)
        return [Label(title, classes="step", id=f"{name}-label"), box]

    def _kind_fields(self, spec: dict[str, Any]) -> list[Widget]:
        k = self.kind
        if k == "send":
            templates = self.names.get("templates", [])
            picker = PickList([Choice(t, t) for t in templates], placeholder="type to search the templates",
                              id="template")
            return [Label("Template", classes="step"), picker,
                    *self._field("category", "Subscription category  (optional: the template's)",
                                 spec.get("category", ""))]
        if k == "wait":
            if "duration" in spec:
                text = spec["duration"]
            elif "until" in spec:
                text = str(spec["until"])
            else:
                text = f"{spec.get('weekday', '')} {spec.get('time', '')}".strip()
            return self._field("wait", "Wait  (a duration 2d / 36h, a date 2026-05-01, or a weekday: tue 10:00)",
                               text)
        if k == "wait_for":
            events = ", ".join(_event_text(e) for e in spec.get("events", []))
            fields = self._field("events", f"Events  ({' / '.join(WAIT_FOR_EVENTS)}; "
                                           "filters node= template= url= form=; comma between events)", events,
                                 list(WAIT_FOR_EVENTS))
            mode = self._field("mode", "Mode  (up_to: yes as soon as it happens · exactly: wait the whole window)",
                               spec.get("mode", "up_to"), ["up_to", "exactly"])
            return [*fields, *self._field("window", "Window  (3d, 1w, 36h)", spec.get("window", "")), *mode]
        if k == "branch":
            text = f"segment {spec['segment']}" if "segment" in spec else _rule_text(spec.get("rule"))
            return self._field("rule", "Condition  (quick filter: score>=50 grade>=B- · segment NAME · "
                                       "or a rule as {all: [...]})", text)
        if k == "split":
            arms = ", ".join(f"{a['name']} {a['weight']}" for a in spec.get("arms", []))
            return self._field("arms", "Arms  (name weight, …: weights sum to 100)", arms)
        if k == "action":
            picker = PickList([Choice(t, t) for t in ACTION_TYPES], placeholder="type to search the action types",
                              id="type")
            out: list[Widget] = [Label("Action type", classes="step"), picker]
            for name in PARAMS:
                value = spec.get(name)
                text = "" if value is None else (value if isinstance(value, str) else _scalar(value))
                out += self._field(name, name.capitalize() + f"  ({PARAM_HINTS[name]})", text,
                                   self.names.get("sequences", []) if name == "sequence" else None)
            return out
        return self._field("reason", "Reason  (shown in the lead's history)", spec.get("reason", "exit step"))

    def on_mount(self) -> None:
        spec = self.data.get(self.kind, {})
        if self.kind == "send":
            picker = self.query_one("#template", PickList)
            picker.set_choices(picker.choices, spec.get("template", ""))
        if self.kind == "action":
            picker = self.query_one("#type", PickList)
            picker.set_choices(picker.choices, spec.get("type", ""))
            self._show_params(spec.get("type", ""))
        self.query_one("#id", Input).focus()

    def _show_params(self, action_type: str) -> None:
        wanted = ACTION_FIELDS.get(action_type, ())
        for name in PARAMS:
            for widget in (self.query_one(f"#{name}-label"), self.query_one(f"#{name}")):
                widget.display = name in wanted

    # -- moving through the fields ------------------------------------------------------------------

    def _order(self) -> list[Widget]:
        """The fields in the order `enter` visits them (hidden parameters skipped)."""
        out: list[Widget] = []
        for w in self.query("Input, PickList"):
            if isinstance(w, Input) and isinstance(w.parent, PickList):
                continue
            if w.display:
                out.append(w)
        return out

    def _next(self, after: Widget) -> None:
        order = self._order()
        i = order.index(after) if after in order else -1
        if i + 1 >= len(order):
            self.action_save()
            return
        order[i + 1].focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._next(event.input)

    @on(PickList.Picked)
    def _picked(self, event: PickList.Picked) -> None:
        event.pick_list.input.value = event.key
        if event.pick_list.id == "type":
            self._show_params(event.key)
        self._problem("")
        self._next(event.pick_list)

    @on(PickList.NothingMatches)
    def _nothing(self, event: PickList.NothingMatches) -> None:
        if event.pick_list.id == "template" and event.text:  # not in the store yet: the draft says so
            self._next(event.pick_list)
            return
        self._problem(f"no {event.pick_list.id} matches {event.text[:40]!r}: pick one from the list")

    # -- saving -------------------------------------------------------------------------------------

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def collect(self) -> dict[str, Any]:
        """The form's data as `build_step` takes it (raises ValidationError for a value it cannot read)."""
        spec: dict[str, Any]
        k = self.kind
        if k == "send":
            spec = {"template": self.query_one("#template", PickList).input.value.strip()}
            if self.value("category"):
                spec["category"] = self.value("category")
        elif k == "wait":
            spec = _wait_spec(self.value("wait"))
        elif k == "wait_for":
            spec = {"events": _events(self.value("events"))}
            if self.value("window"):
                spec["window"] = self.value("window")
            if self.value("mode") and self.value("mode") != "up_to":
                spec["mode"] = self.value("mode")
        elif k == "branch":
            spec = _branch_spec(self.value("rule"))
        elif k == "split":
            spec = {"arms": _arms(self.value("arms"))}
        elif k == "action":
            action_type = self.query_one("#type", PickList).input.value.strip()
            spec = {"type": action_type}
            for name in ACTION_FIELDS.get(action_type, ()):
                text = self.value(name)
                if not text:
                    continue
                if name == "points":
                    try:
                        spec[name] = float(text)
                    except ValueError:
                        raise ValidationError("action.points", f"not a number: {text!r}") from None
                elif name == "value":
                    spec[name] = _typed(text)
                else:
                    spec[name] = text
        else:
            spec = {"reason": self.value("reason")} if self.value("reason") not in ("", "exit step") else {}
        return {"id": self.value("id"), "label": self.value("label"), "goto": self.value("goto"), k: spec}

    def action_save(self) -> None:
        try:
            step = build_step(self.collect(), sequence=self.sequence)
        except ValidationError as exc:
            self._problem(str(exc))
            return
        self.dismiss(step)

    def _problem(self, text: str) -> None:
        if text != self._problem_text:
            self._problem_text = text
            self.query_one("#problem", Label).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------------------------------------------
# Reading the one-line fields


def _scalar(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if not isinstance(value, (int, float)) else str(value)


def _typed(text: str) -> Any:
    """A field value: a number or true/false when it reads as one, else the text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float)) and not isinstance(value, str) else text


def _event_text(event: dict[str, Any]) -> str:
    return " ".join([event["kind"], *(f"{k}={v}" for k, v in event.items() if k != "kind")])


def _events(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        words = part.split()
        event: dict[str, Any] = {"kind": words[0]}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep or key not in ("node", "template", "url", "form"):
                raise ValidationError("wait_for.events", f"{word!r}: a filter is node=, template=, url= or form=")
            event[key] = value
        out.append(event)
    if not out:
        raise ValidationError("wait_for.events", "name at least one event: " + ", ".join(WAIT_FOR_EVENTS))
    return out


def _wait_spec(text: str) -> dict[str, Any]:
    if _DATE.match(text):
        return {"until": text}
    words = text.split()
    if words and words[0].lower()[:3] in WEEKDAYS:
        spec = {"weekday": words[0].lower()[:3]}
        if len(words) > 1:
            spec["time"] = words[1]
        return spec
    return {"duration": text}


def _arms(text: str) -> list[dict[str, Any]]:
    arms = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        name, _sep, weight = part.rpartition(" ")
        if not name:
            raise ValidationError("split.arms", f"{part!r}: write each arm as `name weight`, e.g. `a 50, b 50`")
        try:
            arms.append({"name": name.strip(), "weight": int(weight)})
        except ValueError:
            raise ValidationError("split.arms", f"{part!r}: the weight is a whole number") from None
    if len(arms) < 2:
        raise ValidationError("split.arms", "a split needs at least two arms: `a 50, b 50`")
    return arms


def _rule_text(rule: Any) -> str:
    """A branch rule as the form shows it: the quick filter when it reads back as the same rule, else the
    rule as a one-line mapping."""
    from ....segments.quick import parse_quick, to_quick
    from ....segments.rules import parse_rule

    if not rule or rule == {"all": []}:
        return ""
    try:
        quick = to_quick(parse_rule(rule))
        if quick and parse_quick(quick).to_data() == rule:
            return quick
    except ValidationError:
        pass
    return yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _branch_spec(text: str) -> dict[str, Any]:
    from ....segments.quick import parse_quick

    if not text:
        raise ValidationError("branch.rule", "write the condition, e.g. score>=50 grade>=B-, or segment NAME")
    if text.lower().startswith("segment "):
        return {"segment": text[8:].strip()}
    if text.startswith("{"):
        try:
            rule = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError("branch.rule", f"not a rule mapping: {str(exc).splitlines()[0]}") from None
        if not isinstance(rule, dict):
            raise ValidationError("branch.rule", "a rule is a mapping, e.g. {all: [{field: score, ge: 50}]}")
        return {"rule": rule}
    return {"rule": parse_quick(text).to_data()}
