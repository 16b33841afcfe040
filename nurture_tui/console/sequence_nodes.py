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
from ..sequences.model import SequenceDef, Step
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
