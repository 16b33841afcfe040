"""The sequence settings form's fields, headless: a program's top-level settings as one line of text each
(what the form shows) and back (what `SequenceDraft.set_settings` takes), with a one-line error naming the
field for a value it cannot read. A condition field holds a rule as the quick filter when it reads back as
the same rule (`stage=decision grade>=C -mql:any`), else as a one-line mapping (`{any: [...]}`); the form's
`f2` opens the segment builder on it.

| field | text |
|---|---|
| entry | `manual` · `segment NAME` · `rule CONDITION` · `event KIND [node=… template=… url=… form=…]` |
| send window | `tue,wed,thu 08:30-16:30` (days: names or a range `mon-fri`); empty: none |
| time zone | `lead America/Chicago`: whose zone first (lead / account / sequence), then the fallback zone |
| holidays | `US` (on, this calendar when the lead has no country) · `on` · `off` |
| caps | `1/day 2/week`; empty: none |
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import ValidationError
from ..segments.quick import parse_quick, to_quick
from ..segments.rules import GROUP_OPS, parse_rule
from ..sequences.codec import dump_yaml
from ..sequences.model import WAIT_FOR_EVENTS, WEEKDAYS, SendWindow, SequenceDef, TemplateSpec
from ..yamlfile import parse_yaml

#: The form's fields, in order, with their titles.
FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "Name  (a slug)"),
    ("description", "Description"),
    ("stage", "Stage  (awareness, consideration, decision, customer …)"),
    ("entry", "Entry  (manual · segment NAME · rule CONDITION · event KIND …)  f2: build"),
    ("reentry", "Re-entry  (never · anytime · after_exit)"),
    ("goal", "Goal  (a condition: reaching it ends the program, converted)  f2: build"),
    ("exit_when", "Exit when  (any of these conditions)  f2: build"),
    ("send_window", "Send window  (tue,wed,thu 08:30-16:30 or mon-fri 09:00-17:00; empty: any time)"),
    ("timezone", "Time zone  (whose first: lead / account / sequence, then the fallback zone)"),
    ("holidays", "Holidays  (a country code such as US: skip its public holidays · on · off)"),
    ("caps", "Frequency caps  (1/day 2/week; empty: none)"),
    ("suppressed", "Suppressed leads  (skip: carry on without the email · exit)"),
    ("category", "Subscription category  (of every send; empty: each template's)"),
    ("outside", "Outside the window  (next_window · skip)"),
)
RULE_FIELDS = ("entry", "goal", "exit_when")
CHOICES: dict[str, tuple[str, ...]] = {
    "reentry": ("never", "anytime", "after_exit"), "suppressed": ("skip", "exit"),
    "outside": ("next_window", "skip"), "entry": ("manual", "segment ", "rule ", "event "),
    "stage": ("awareness", "consideration", "decision", "customer"),
}
_TIME = re.compile(r"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")
_CAP = re.compile(r"^(\d+)/(day|week)$")
_EVENT_FILTERS = ("node", "template", "url", "form")


# ---------------------------------------------------------------------------------------------------
# Conditions as one line


def rule_text(rule: Any) -> str:
    """A rule as a form shows it: the quick filter when it reads back as the same rule, else a one-line
    mapping; empty for no rule."""
    if not rule or rule == {"all": []}:
        return ""
    try:
        quick = to_quick(parse_rule(rule))
        if quick and parse_quick(quick).to_data() == parse_rule(rule).to_data():
            return quick
    except ValidationError:
        pass
    return yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10_000).strip()


def parse_rule_text(text: str, where: str) -> dict[str, Any]:
    """Rule data from a condition field (quick filter or a `{…}` mapping), checked by the rule language."""
    text = text.strip()
    if text.startswith("{"):
        try:
            rule = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(where, f"not a rule mapping: {str(exc).splitlines()[0]}") from None
        if not isinstance(rule, dict):
            raise ValidationError(where, "a rule is a mapping, e.g. {all: [{field: score, ge: 50}]}")
        parse_rule(rule, where)
        return rule
    try:
        return parse_quick(text).to_data()
    except ValidationError as exc:
        raise ValidationError(where, exc.message) from None


def exit_rules(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """The exit list from one condition: the items of an ANY group (or of a one-item ALL group), else it."""
    if len(rule) == 1:
        (op, items), = rule.items()
        if op == "any" or (op == "all" and len(items) == 1):
            return list(items)
    return [rule]


def exit_text(rules: list[dict[str, Any]]) -> str:
    if not rules:
        return ""
    return rule_text(rules[0] if len(rules) == 1 and not _is_group(rules[0]) else {"any": rules})


def _is_group(rule: dict[str, Any]) -> bool:
    return len(rule) == 1 and next(iter(rule)) in GROUP_OPS


# ---------------------------------------------------------------------------------------------------
# The program → the form


def settings_fields(defn: SequenceDef) -> dict[str, str]:
    entry = defn.entry
    if entry.type == "segment" and entry.rule is not None:
        entry_text = f"rule {rule_text(entry.rule)}"
    elif entry.type == "segment":
        entry_text = f"segment {entry.segment or ''}"
    elif entry.type == "event" and entry.event is not None:
        entry_text = " ".join(["event", entry.event.kind, *(f"{k}={v}" for k in _EVENT_FILTERS
                                                            if (v := getattr(entry.event, k)))])
    else:
        entry_text = "manual"
    window = defn.send_window
    out = {"name": defn.name, "description": defn.description, "stage": defn.stage or "", "entry": entry_text,
           "reentry": defn.reentry, "goal": rule_text(defn.goal), "exit_when": exit_text(defn.exit_when),
           "suppressed": defn.suppressed, "category": defn.category or "",
           "send_window": "", "timezone": "lead UTC", "holidays": "on", "outside": "next_window", "caps": ""}
    if window is not None:
        out["send_window"] = f"{','.join(window.days)} {window.start}-{window.end}"
        out["timezone"] = f"{window.timezone_source} {window.default_timezone}"
        out["holidays"] = "off" if not window.holidays else (window.country or "on")
        out["outside"] = window.outside
    caps = defn.caps
    if caps is not None:
        out["caps"] = " ".join(part for part in (f"{caps.per_day}/day" if caps.per_day else "",
                                                  f"{caps.per_week}/week" if caps.per_week else "") if part)
    return out


# ---------------------------------------------------------------------------------------------------
# The form → the program


def settings_values(texts: dict[str, str]) -> dict[str, Any]:
    """What `set_settings` takes from the form's texts (every field of FIELDS), or a ValidationError naming
    the field. Inline templates are not a field: the draft keeps its own."""
    t = {k: texts.get(k, "").strip() for k, _title in FIELDS}
    if not t["name"]:
        raise ValidationError("name", "the program needs a name")
    for key in ("reentry", "suppressed", "outside"):
        if t[key] not in CHOICES[key]:
            raise ValidationError(key, f"{t[key]!r}: one of {', '.join(CHOICES[key])}")
    return {
        "name": t["name"], "description": t["description"], "stage": t["stage"] or None,
        "entry": _entry(t["entry"]), "reentry": t["reentry"],
        "goal": parse_rule_text(t["goal"], "goal") if t["goal"] else None,
        "exit_when": exit_rules(parse_rule_text(t["exit_when"], "exit_when")) if t["exit_when"] else [],
        "suppressed": t["suppressed"], "category": t["category"] or None,
        "send_window": _window(t) if t["send_window"] else None, "caps": _caps(t["caps"]),
    }


def _entry(text: str) -> dict[str, Any]:
    word, _sep, rest = text.partition(" ")
    rest = rest.strip()
    if word in ("", "manual") and not rest:
        return {"type": "manual"}
    if word == "segment" and rest:
        return {"type": "segment", "segment": rest}
    if word == "rule" and rest:
        return {"type": "segment", "rule": parse_rule_text(rest, "entry")}
    if word == "event" and rest:
        kind, *filters = rest.split()
        if kind not in WAIT_FOR_EVENTS:
            raise ValidationError("entry", f"event {kind!r}: one of {', '.join(WAIT_FOR_EVENTS)}")
        event: dict[str, Any] = {"kind": kind}
        for item in filters:
            key, sep, value = item.partition("=")
            if not sep or key not in _EVENT_FILTERS:
                raise ValidationError("entry", f"{item!r}: a filter is {'=, '.join(_EVENT_FILTERS)}=")
            event[key] = value
        return {"type": "event", "event": event}
    raise ValidationError("entry", f"{text!r}: manual, segment NAME, rule CONDITION or event KIND")


def _days(text: str) -> list[str]:
    days: list[str] = []
    for part in [p for p in re.split(r"[,\s]+", text.lower()) if p]:
        first, sep, last = part.partition("-")
        if first[:3] not in WEEKDAYS or (sep and last[:3] not in WEEKDAYS):
            raise ValidationError("send_window", f"{part!r}: days are mon … sun, or a range mon-fri")
        i, j = WEEKDAYS.index(first[:3]), WEEKDAYS.index((last if sep else first)[:3])
        days += [d for d in WEEKDAYS[i:j + 1] if d not in days]
    return days


def _window(t: dict[str, str]) -> dict[str, Any]:
    days_text, _sep, hours = t["send_window"].rpartition(" ")
    match = _TIME.match(hours)
    if not match or not days_text:
        raise ValidationError("send_window", f"{t['send_window']!r}: days then hours, e.g. tue,wed,thu 08:30-16:30")
    source, _sep, zone = t["timezone"].partition(" ")
    if source not in ("lead", "account", "sequence") or not zone.strip():
        raise ValidationError("timezone", f"{t['timezone']!r}: lead, account or sequence, then a zone: "
                                          "lead America/Chicago")
    window: dict[str, Any] = {"days": _days(days_text), "start": match.group(1).zfill(5),
                              "end": match.group(2).zfill(5), "timezone_source": source,
                              "default_timezone": zone.strip(), "outside": t["outside"]}
    holidays = t["holidays"]
    if holidays.lower() == "off":
        window["holidays"] = False
    elif holidays.lower() not in ("on", ""):
        if not re.fullmatch(r"[A-Za-z]{2}", holidays):
            raise ValidationError("holidays", f"{holidays!r}: a two-letter country code, on or off")
        window["country"] = holidays.upper()
    try:
        SendWindow.model_validate(window)
    except Exception as exc:
        raise ValidationError("send_window", str(exc).splitlines()[-1].strip()) from None
    return window


def _caps(text: str) -> dict[str, int] | None:
    if not text:
        return None
    caps: dict[str, int] = {}
    for part in text.lower().replace(",", " ").split():
        match = _CAP.match(part)
        if not match:
            raise ValidationError("caps", f"{part!r}: write N/day and/or N/week, e.g. 1/day 2/week")
        caps["per_" + match.group(2)] = int(match.group(1))
    return caps


# ---------------------------------------------------------------------------------------------------
# Inline templates as YAML


def templates_text(templates: list[TemplateSpec]) -> str:
    if not templates:
        return ""
    return dump_yaml([{"name": t.name, **t.model_dump(mode="json", exclude_none=True, exclude_defaults=True)}
                      for t in templates])


def parse_templates(text: str) -> list[TemplateSpec]:
    """Inline templates from their YAML list, or a ValidationError naming the line or the template."""
    data = parse_yaml(text, "templates") if text.strip() else []
    if not isinstance(data, list):
        raise ValidationError("templates", "write the templates as a list: - name: …")
    out: list[TemplateSpec] = []
    for i, item in enumerate(data):
        where = f"templates[{i}]" + (f" ({item['name']})" if isinstance(item, dict) and item.get("name") else "")
        if not isinstance(item, dict):
            raise ValidationError(where, "a template is a mapping: name, subject, html …")
        try:
            out.append(TemplateSpec.model_validate(item))
        except Exception as exc:  # pydantic's first error, in one line
            first = str(exc).splitlines()
            raise ValidationError(where, " ".join(line.strip() for line in first[1:3])[:200]) from None
    names = [t.name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError("templates", f"template {dupes[0]!r} is defined twice")
    return out
