"""Collect every binding the app declares and render docs/keymap.md (scripts/gen_keymap.py writes it,
tests/tui/test_docs.py checks the committed file matches). The app class is passed in, so the app can
validate a user keymap against these ids without this module importing it."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding

HEADER = """# Keymap

Generated from the live bindings by `scripts/gen_keymap.py` — do not edit by hand.
Every binding has a stable id; remap any of them in your config file:

```toml
[tui.keymap]
"leads.tag" = "t"
"app.mode.mql" = "m,7"
```

Several keys are separated by commas. `?` or `F1` on any screen shows the keys that apply there.
"""


def _scopes(app_class: type[Any]) -> list[tuple[str, type[Any]]]:
    from .modes import MODES
    from .screens.base import ListScreen
    from .screens.dialogs.condition_form import ConditionForm
    from .screens.dialogs.confirm import ConfirmModal
    from .screens.dialogs.error import ErrorModal
    from .screens.dialogs.help import HelpScreen
    from .screens.dialogs.merge_fields import MergeFieldModal
    from .screens.dialogs.prompt import ChoiceModal, PromptModal
    from .screens.dialogs.template_versions import TemplateVersionsModal
    from .screens.lead_detail import LeadDetailScreen
    from .screens.segment_editor import SegmentEditorScreen
    from .screens.sequence_editor import SequenceEditorScreen
    from .screens.template_editor import TemplateEditorScreen
    from .widgets.leads.lead_list import LeadList

    lists = ", ".join(m.title for m in MODES if issubclass(m.screen_class, ListScreen))
    scopes: list[tuple[str, type[Any]]] = [("App (every screen)", app_class), (f"Lists ({lists})", ListScreen)]
    for mode in MODES:
        scopes.append((mode.title, mode.screen_class))
        if mode.name == "leads":
            scopes.append(("Leads list", LeadList))
        if mode.name == "segments":
            scopes += [("Segment builder", SegmentEditorScreen), ("Condition form", ConditionForm)]
        if mode.name == "sequences":
            from .screens.dialogs.node_form import KindModal, NodeForm
            from .screens.dialogs.sequence_publish import PublishModal
            from .screens.dialogs.sequence_settings import SettingsForm
            from .screens.sequence_simulator import SequenceSimulatorScreen

            scopes += [("Sequence editor", SequenceEditorScreen), ("Step kind", KindModal), ("Node form", NodeForm),
                       ("Sequence settings", SettingsForm), ("Publish a sequence", PublishModal),
                       ("Sequence test (simulate, forecast)", SequenceSimulatorScreen)]
        if mode.name == "templates":
            scopes += [("Template editor", TemplateEditorScreen), ("Merge fields", MergeFieldModal),
                       ("Template versions", TemplateVersionsModal)]
    scopes += [("Lead detail", LeadDetailScreen), ("Help", HelpScreen), ("Confirm", ConfirmModal),
               ("Prompt", PromptModal), ("Choice", ChoiceModal), ("Error", ErrorModal)]
    return scopes


def collect_bindings(app_class: type[Any]) -> list[tuple[str, Binding]]:
    """(scope, binding) for every binding `app_class` and its screens declare (their own, not inherited)."""
    out: list[tuple[str, Binding]] = []
    for scope, cls in _scopes(app_class):
        for b in cls.__dict__.get("BINDINGS", []):
            if isinstance(b, Binding):
                out.append((scope, b))
    return out


def _keys(b: Binding) -> str:
    names = {"question_mark": "?", "slash": "/", "greater_than_sign": ">", "less_than_sign": "<",
             "space": "space", "escape": "esc"}
    return ", ".join(f"`{names.get(k.strip(), k.strip())}`" for k in b.key.split(","))


def render_keymap(app_class: type[Any]) -> str:
    lines = [HEADER]
    scope = None
    for s, b in collect_bindings(app_class):
        if s != scope:
            scope = s
            lines += ["", f"## {s}", "", "| Keys | Action | Binding id |", "|---|---|---|"]
        lines.append(f"| {_keys(b)} | {b.description or b.action} | `{b.id}` |")
    return "\n".join(lines) + "\n"
