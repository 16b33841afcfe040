"""The node forms' values, headless: a form's data → a `Step`, or one line saying why not.

A form refuses values that are wrong on their own — a duration that does not parse, split weights that do not
sum to 100, an action without what its type needs, a branch rule that does not parse, a bad id — with the
same checks and messages as `sequences.validate` (they run on the step alone). What depends on the rest of
the program (goto targets, the `node` a `wait_for` watches, empty yes/no lists, reachability, unknown
templates) is left to the draft's problems: a draft may be incomplete while it is being built.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..errors import ValidationError
from ..sequences.adaptive import DEFAULT_METRIC, default_window
from ..sequences.model import SPLIT_METRICS, SequenceDef, Step
from ..sequences.validate import Catalog, default_rule_parser, validate_definition
from .sequence_draft import check_step_id


def build_step(data: dict[str, Any], *, sequence: str = "") -> Step:
    """A step from the form's data (`{"id": …, "label": …, "goto": …, <kind>: {…}}`, children optional), or a
    ValidationError with one line: `wait_for: window: not a duration: '3 fortnights' (…)`. `sequence` is the
    program's name (an `enroll` into it is refused)."""
    step_id = data.get("id")
    if isinstance(step_id, str):
        check_step_id(step_id)
    if data.get("goto") not in (None, ""):
        check_step_id(str(data["goto"]))
    clean = {k: v for k, v in data.items() if not (k in ("label", "goto") and v in (None, ""))}
    try:
        step = Step.model_validate(clean)
    except PydanticValidationError as exc:
        errors = exc.errors(include_url=False)
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo explains the rest
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {err['loc'][-1]!r}"
            where = ".".join(str(p) for p in err["loc"][:-1])
        elif err["type"] == "missing":
            msg = f"missing required key {err['loc'][-1]!r}"
            where = ".".join(str(p) for p in err["loc"][:-1])
        raise ValidationError(where, msg) from exc
    kind = step.kind
    alone = step.model_copy(deep=True, update={"yes": None, "no": None, "goto": None})
    if alone.wait_for is not None:  # the watched send step is elsewhere in the program
        for event in alone.wait_for.events:
            event.node = None
    defn = SequenceDef(name=sequence or "_form", steps=[alone])
    catalog = Catalog(templates=None, segment_exists=None, parse_rule=default_rule_parser())
    for problem in validate_definition(defn, catalog, data=defn.to_json()):
        # only what is wrong with the step's own values: problems inside its kind's spec
        inside = problem.where.split(".", 2)[2:] if problem.where.startswith("steps.") else []
        if inside and inside[0].split(".")[0].split("[")[0] == kind:
            raise ValidationError(inside[0], problem.message)
        if not problem.where and kind == "branch":  # a rule error names its own path in the message
            raise ValidationError("", problem.message)
    if kind == "send" and not (step.send and step.send.template):
        raise ValidationError("send.template", "pick a template")
    return step


def form_data(step: Step) -> dict[str, Any]:
    """What a node form shows for a step: its own values (no children), defaults left out."""
    data = step.model_dump(mode="json", exclude_none=True, exclude_defaults=True, exclude={"yes", "no"})
    for arm in data.get("split", {}).get("arms", []):
        arm.pop("steps", None)
    return data


# -- adaptive splits and optimal send times in one line (docs/adaptive.md) ------------------------------

ADAPTIVE_HINT = ("empty: weighted by the arm weights · adaptive: click 3d floor=0.03 winner audience=persona "
                 "segments=a|b pool=20 lookback=30d seed=1")
_ADAPTIVE_KEYS = ("metric", "window", "floor", "audience", "segments", "pool", "lookback", "seed")


def adaptive_text(split: dict[str, Any]) -> str:
    """A split's adaptive settings as the form's one line (`form_data` shape in); empty for a weighted split."""
    if split.get("mode") != "adaptive":
        return ""
    metric = split.get("metric") or DEFAULT_METRIC
    parts = [str(metric), str(split.get("window") or default_window(metric))]
    if split.get("winner"):
        parts.append("winner")
    if split.get("drift") is False:
        parts.append("nodrift")
    for key in ("floor", "audience", "pool", "lookback", "seed"):
        if split.get(key) is not None:
            parts.append(f"{key}={split[key]:g}" if isinstance(split[key], float) else f"{key}={split[key]}")
    if split.get("segments"):
        parts.append("segments=" + "|".join(split["segments"]))
    return " ".join(parts)


def parse_adaptive(text: str) -> dict[str, Any]:
    """The form's adaptive line → split settings (`{}` for a weighted split). Words: a metric (open, click,
    goal), a window (3d), `winner`, and key=value for the rest; anything else is a one-line error."""
    words = text.split()
    if not words or words == ["weighted"]:
        return {}
    out: dict[str, Any] = {"mode": "adaptive"}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq and word in SPLIT_METRICS:
            key, value = "metric", word
        elif not eq and word == "winner":
            out["winner"] = True
            continue
        elif not eq and word == "nodrift":  # no restart at a detected change of the rates
            out["drift"] = False
            continue
        elif not eq and word != "adaptive":
            key, value = "window", word
        elif not eq:
            continue
        if key not in _ADAPTIVE_KEYS:
            raise ValidationError("split.adaptive", f"unknown setting {key!r} (one of {', '.join(_ADAPTIVE_KEYS)}, "
                                                    "winner)")
        try:
            out[key] = (float(value) if key in ("floor", "pool") else int(value) if key == "seed"
                        else value.split("|") if key == "segments" else value)
        except ValueError:
            raise ValidationError("split.adaptive", f"{key}: not a number: {value!r}") from None
    return out
