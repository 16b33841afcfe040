"""The sequence editor's node dialogs: `KindModal` (which kind of step to add: one letter) and `NodeForm` (a
step's own values, per kind: a template picker, durations, the events a `wait_for` listens for with its
window and `up_to`/`exactly`, a branch condition in the quick-filter syntax or as a segment, split arms and
weights, the action type — one letter each, as the kinds — with that type's parameters, an exit reason; then
id, label and goto).

`enter` moves to the next field and saves on the last, `ctrl+s` saves from anywhere (in a picker, with the
choice `enter` would take), `esc` cancels. The form refuses a bad value in one line (`sequence_nodes.
build_step`: validate's own checks on the step alone); what depends on the rest of the program stays a draft
problem, shown at the node."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import yaml
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.events import Key
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ....console.sequence_nodes import ADAPTIVE_HINT, adaptive_text, build_step, form_data, parse_adaptive
from ....console.sequence_pickers import template_order
from ....console.sequence_settings import parse_rule_text, rule_text
from ....errors import ValidationError
from ....sequences.model import WAIT_FOR_EVENTS, WEEKDAYS, SequenceDef, Step
from ...keymap import bind
from ...widgets.segments.pick_list import Choice, PickList

if TYPE_CHECKING:
    from ...app import NurtureApp

#: The kinds `a`/`A` offer, with the letter that picks each.
KINDS = (("s", "send", "send an email"), ("w", "wait", "wait a duration, until a date or a weekday"),
         ("f", "wait_for", "wait for an event (yes/no arms)"), ("b", "branch", "branch on a condition (yes/no arms)"),
         ("x", "split", "A/B split (weighted arms)"), ("a", "action", "do something (score, tag, field, campaign…)"),
         ("e", "exit", "leave the sequence"))
#: The action types with the letter that picks each in the form's type list (no search, no `enter`), and the
#: word the list shows for it.
ACTION_LETTERS = (("a", "adjust_score"), ("t", "add_tag"), ("r", "remove_tag"), ("u", "update_field"),
                  ("s", "set_stage"), ("c", "add_to_campaign"), ("e", "enroll"), ("n", "notify_rep"),
                  ("k", "create_task"), ("o", "assign_owner"), ("w", "webhook"))
ACTION_WORDS = {"adjust_score": "score", "add_tag": "tag", "remove_tag": "untag", "update_field": "field",
                "set_stage": "stage", "add_to_campaign": "campaign", "enroll": "enroll", "notify_rep": "notify",
                "create_task": "task", "assign_owner": "owner", "webhook": "webhook"}
#: The parameters each action type takes, in the order the form asks for them.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "update_field": ("field", "value"), "set_stage": ("value",), "adjust_score": ("points",),
    "add_to_campaign": ("campaign", "status"), "assign_owner": ("owner",), "create_task": ("subject", "body"),
    "notify_rep": ("subject", "body"), "add_tag": ("tag",), "remove_tag": ("tag",), "enroll": ("sequence",),
    "webhook": ("url",),
}
PARAMS = ("field", "value", "points", "campaign", "status", "owner", "subject", "body", "tag", "sequence", "url")
#: Parameters picked from a list (`sequence_pickers.picker_names` key): type to narrow, `enter` picks; a name
#: not in the list is taken as typed (a new campaign, `queue:NAME`), the draft's validation has the last word.
PICKED = {"field": "fields", "campaign": "campaigns", "owner": "owners"}
#: Parameters with inline suggestions (`→` completes).
SUGGESTED = {"status": "statuses", "sequence": "sequences"}
PARAM_HINTS = {"field": "lead field: status, industry, custom.<key> …", "value": "the value",
               "points": "points, e.g. 10 or -5", "campaign": "campaign name", "status": "member status",
               "owner": "username, group:NAME or queue:NAME", "subject": "task / notification subject",
               "body": "body (optional)", "tag": "tag", "sequence": "sequence to enrol into", "url": "https://…"}
#: The opening of the template's text the send form shows (about three lines).
PREVIEW_CHARS = 220
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


class ActionTypeList(Widget, can_focus=True):
    """The action types, a letter and a word each (`t tag`, `a score` …; the type's name is in the label
    above). A letter picks one and the form moves on to its parameters; `↑`/`↓` step through the types and
    `enter` takes the one shown. `value`: the type picked (or the step's)."""

    @dataclass
    class Picked(Message):
        type_list: ActionTypeList
        key: str

        @property
        def control(self) -> ActionTypeList:
            return self.type_list

    @dataclass
    class Changed(Message):
        """`↑`/`↓` showed another type (not picked yet)."""

        type_list: ActionTypeList
        key: str

    def __init__(self, value: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.value = value
        self.letters = {letter: kind for letter, kind in ACTION_LETTERS}
        self.order = [kind for _letter, kind in ACTION_LETTERS]

    def render(self) -> Text:
        return Text("  ").join(
            Text.assemble((letter, "bold"), " ", (ACTION_WORDS[kind], "reverse" if kind == self.value else "dim"))
            for letter, kind in ACTION_LETTERS)

    def on_key(self, event: Key) -> None:
        kind = self.letters.get(event.character or "")
        if kind is not None:
            event.stop()
            event.prevent_default()
            self.pick(kind)
        elif event.key in ("up", "down"):
            event.stop()
            step = 1 if event.key == "down" else -1
            i = self.order.index(self.value) + step if self.value in self.order else 0
            self.value = self.order[i % len(self.order)]
            self.refresh(layout=True)
            self.post_message(self.Changed(self, self.value))
        elif event.key == "enter" and self.value:
            event.stop()
            self.pick(self.value)

    def pick(self, kind: str) -> None:
        self.value = kind
        self.refresh(layout=True)
        self.post_message(self.Picked(self, kind))


class NodeForm(ModalScreen[Step | None]):
    """Returns the step built from the form (its children are the editor's business), or None."""

    CSS_PATH = "node_form.tcss"
    HELP = """\
`enter` moves to the next field and saves on the last; `ctrl+s` saves from any field — in a picker with the
match `enter` would take (the first, with no search). An action's type is one letter (`a` score, `t` tag,
`r` untag, `u` field, `s` stage, `c` campaign, `e` enroll, `n` notify, `k` task, `o` owner, `w` webhook), and
the form moves on to that type's parameters. The send form lists the program's own templates first and the
ones it sends already last. `f2` on a branch's condition opens the condition builder. `esc` cancels.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "node_form.cancel"),
        bind("ctrl+s", "save", "Save", "node_form.save", priority=True),
        bind("f2", "build_rule", "Build the condition", "node_form.build_rule"),
        bind("f1", "app.help", "Help", "node_form.help", show=False),
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
        self.pickers_loaded = step.kind != "action"  # the action parameters' names arrive in a worker

    # -- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        spec = self.data.get(self.kind, {})
        with VerticalScroll(id="dialog"):
            yield Label(f"{'New' if self.new else 'Edit'} {self.kind} step", id="title")
            yield from self._field("id", "Id  (a slug; gotos follow a rename)", self.step.id)
            yield from self._kind_fields(spec)
            yield from self._field("label", "Label  (optional)", self.step.label or "")
            yield from self._rare_fields(spec)
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
            templates = template_order(self.names.get("templates", []), self._program())
            picker = PickList([Choice(t, t) for t in templates], placeholder="type to search the templates",
                              id="template")
            return [Label("Template", classes="step"), picker, Static("", id="preview")]
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
            return [*fields, *self._field("window", "Window  (3d, 1w, 36h)", spec.get("window", ""))]
        if k == "branch":
            text = f"segment {spec['segment']}" if "segment" in spec else rule_text(spec.get("rule"))
            return self._field("rule", "Condition  (quick filter: score>=50 grade>=B- · segment NAME · "
                                       "a rule as {all: [...]})  f2: build it", text)
        if k == "split":
            arms = ", ".join(f"{a['name']} {a['weight']}" if a.get("weight") else a["name"]
                             for a in spec.get("arms", []))
            return self._field("arms", "Arms  (name weight, …: weights sum to 100; adaptive: names only)", arms)
        if k == "action":
            action_type = spec.get("type", "")
            out: list[Widget] = [Label(_type_title(action_type), classes="step", id="type-label"),
                                 ActionTypeList(action_type, id="type")]
            for name in PARAMS:
                value = spec.get(name)
                text = "" if value is None else (value if isinstance(value, str) else _scalar(value))
                title = name.capitalize() + f"  ({PARAM_HINTS[name]})"
                if name in PICKED:
                    out += [Label(title, classes="step", id=f"{name}-label"),
                            PickList([], placeholder=f"type to search the {PICKED[name]}", id=name)]
                else:
                    out += self._field(name, title, text, self.names.get(SUGGESTED.get(name, ""), None))
            return out
        return self._field("reason", "Reason  (shown in the lead's history)", spec.get("reason", "exit step"))

    def _program(self) -> SequenceDef | None:
        """The program this step belongs to: the draft of the editor under this form (None elsewhere)."""
        for screen in reversed(self.app.screen_stack):
            defn = getattr(getattr(screen, "draft", None), "defn", None)
            if isinstance(defn, SequenceDef):
                return defn
        return None

    def _rare_fields(self, spec: dict[str, Any]) -> list[Widget]:
        """The kind's fields most steps leave at their default: after the label."""
        if self.kind == "send":
            return [*self._field("category", "Subscription category  (optional: the program's, else the template's)",
                                 spec.get("category", "")),
                    *self._field("send_time", "Send time  (plain: as scheduled · optimal: the lead's best hour, "
                                              "≤ 24 h later)", spec.get("send_time", "plain"), ["plain", "optimal"])]
        if self.kind == "split":  # most splits are fixed A/B weights: adaptive is set after the label
            return self._field("adaptive", f"Adaptive  ({ADAPTIVE_HINT})", adaptive_text(self.data.get("split", {})),
                               ["click 3d", "open 3d", "goal 14d"])
        if self.kind == "wait_for":
            return self._field("mode", "Mode  (up_to: yes as soon as it happens · exactly: wait the whole window)",
                               spec.get("mode", "up_to"), ["up_to", "exactly"])
        return []

    def on_mount(self) -> None:
        spec = self.data.get(self.kind, {})
        if self.kind == "send":
            picker = self.query_one("#template", PickList)
            picker.set_choices(picker.choices, spec.get("template", ""))
        if self.kind == "action":
            for name in PICKED:
                self.query_one(f"#{name}", PickList).set_choices([], str(spec.get(name) or ""))
            self._show_params(spec.get("type", ""))
            self._load_pickers()
        if self.kind == "send" and spec.get("template"):
            self._preview(spec["template"])
        self.query_one("#id", Input).focus()

    # -- what the pickers offer, the template preview -----------------------------------------------

    @property
    def backend(self) -> Any:
        return cast("NurtureApp", self.app).backend

    @work(exclusive=True, group="node_form.pickers", exit_on_error=False, description="Names to pick")
    async def _load_pickers(self) -> None:
        from ....console.sequence_pickers import picker_names

        names = await asyncio.to_thread(picker_names, self.backend.session)
        for name, key in PICKED.items():
            picker = self.query_one(f"#{name}", PickList)
            picker.set_choices([Choice(n, n) for n in names.get(key, [])], picker.input.value)
        for name, key in SUGGESTED.items():
            self.query_one(f"#{name}", Input).suggester = SuggestFromList(names.get(key, []), case_sensitive=True)
        self.pickers_loaded = True

    @on(OptionList.OptionHighlighted, "#template OptionList")
    def _template_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self._preview(event.option.id)

    @work(exclusive=True, group="node_form.preview", exit_on_error=False, description="Template preview")
    async def _preview(self, name: str) -> None:
        """The highlighted template's subject and opening lines (merge fields shown by name)."""
        from rich.text import Text

        box = self.query_one("#preview", Static)
        await asyncio.sleep(0.1)  # typing on: only the template the cursor rests on is rendered
        try:
            preview = await asyncio.to_thread(self.backend.templates.preview, name)
        except Exception as exc:
            box.update(Text(f"{name}: {str(exc).splitlines()[0][:120]} (an inline template of this program is "
                            "checked with the program)", style="dim"))
            return
        body = " ".join(preview.body.split())
        box.update(Text.assemble(("Subject: ", "dim"), (preview.subject, "bold"), "\n",
                                 (body[:PREVIEW_CHARS] + ("…" if len(body) > PREVIEW_CHARS else ""), "dim")))

    @work(exclusive=True, group="node_form.rule", exit_on_error=False, description="Build a condition")
    async def action_build_rule(self) -> None:
        """`f2` on a branch's condition: the segment builder on it; its result replaces the text, and the form
        moves on."""
        from ..rule_builder import RuleBuilderScreen

        if self.kind != "branch":
            return
        box = self.query_one("#rule", Input)
        text = box.value.strip()
        try:
            data = parse_rule_text(text, "branch.rule") if text and not text.startswith("segment ") else None
        except ValidationError as exc:
            self._problem(str(exc))
            return
        builder = RuleBuilderScreen(f"branch {self.value('id') or 'step'}", data)
        await self.app.push_screen_wait(builder)
        if builder.result is None:
            box.focus()
            return
        box.value = rule_text(builder.result)
        self._problem("")
        self._next(box)  # the condition is done: on to the label

    def _show_params(self, action_type: str) -> None:
        wanted = ACTION_FIELDS.get(action_type, ())
        for name in PARAMS:
            for widget in (self.query_one(f"#{name}-label"), self.query_one(f"#{name}")):
                widget.display = name in wanted

    # -- moving through the fields ------------------------------------------------------------------

    def _order(self) -> list[Widget]:
        """The fields in the order `enter` visits them (hidden parameters skipped)."""
        out: list[Widget] = []
        for w in self.query("Input, PickList, ActionTypeList"):
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
        self._problem("")
        self._next(event.pick_list)

    @on(ActionTypeList.Changed)
    def _type_changed(self, event: ActionTypeList.Changed) -> None:
        self.query_one("#type-label", Label).update(_type_title(event.key))
        self._show_params(event.key)

    @on(ActionTypeList.Picked)
    def _type_picked(self, event: ActionTypeList.Picked) -> None:
        self.query_one("#type-label", Label).update(_type_title(event.key))
        self._show_params(event.key)
        self._problem("")
        self._next(event.type_list)

    @on(PickList.NothingMatches)
    def _nothing(self, event: PickList.NothingMatches) -> None:
        free = event.pick_list.id == "template" or event.pick_list.id in PICKED
        if free and event.text:  # not in the store (yet): taken as typed, the draft's validation says more
            self._next(event.pick_list)
            return
        self._problem(f"no {event.pick_list.id} matches {event.text[:40]!r}: pick one from the list")

    # -- saving -------------------------------------------------------------------------------------

    def value(self, name: str) -> str:
        widget = self.query_one(f"#{name}")
        box = widget.input if isinstance(widget, PickList) else widget
        assert isinstance(box, Input)
        return box.value.strip()

    def collect(self) -> dict[str, Any]:
        """The form's data as `build_step` takes it (raises ValidationError for a value it cannot read)."""
        spec: dict[str, Any]
        k = self.kind
        if k == "send":
            spec = {"template": self.query_one("#template", PickList).input.value.strip()}
            if self.value("category"):
                spec["category"] = self.value("category")
            if self.value("send_time") not in ("", "plain", "optimal"):
                raise ValidationError("send.send_time", f"plain or optimal (got {self.value('send_time')!r})")
            if self.value("send_time") == "optimal":
                spec["send_time"] = "optimal"
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
            adaptive = parse_adaptive(self.value("adaptive"))
            spec = {"arms": _arms(self.value("arms"), adaptive=bool(adaptive)), **adaptive}
        elif k == "action":
            action_type = self.query_one("#type", ActionTypeList).value
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
        focused = self.focused
        picker = focused.parent if focused is not None else None
        if isinstance(picker, PickList):  # what `enter` would take: the highlighted match of the search
            picker.take()
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


def _type_title(action_type: str) -> str:
    return f"Action type  {action_type}" if action_type else "Action type  (its letter picks it)"


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


def _arms(text: str, *, adaptive: bool = False) -> list[dict[str, Any]]:
    arms: list[dict[str, Any]] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        name, _sep, weight = part.rpartition(" ")
        if adaptive and not (name and weight.isdigit()):  # an adaptive split allocates: names only
            arms.append({"name": part})
            continue
        if not name:
            raise ValidationError("split.arms", f"{part!r}: write each arm as `name weight`, e.g. `a 50, b 50`")
        try:
            arms.append({"name": name.strip(), "weight": int(weight)})
        except ValueError:
            raise ValidationError("split.arms", f"{part!r}: the weight is a whole number") from None
    if len(arms) < 2:
        raise ValidationError("split.arms", "a split needs at least two arms: `a 50, b 50`")
    return arms


def _branch_spec(text: str) -> dict[str, Any]:
    if not text:
        raise ValidationError("branch.rule", "write the condition, e.g. score>=50 grade>=B-, or segment NAME "
                                             "(f2 builds it)")
    if text.lower().startswith("segment "):
        return {"segment": text[8:].strip()}
    return {"rule": parse_rule_text(text, "branch.rule")}
