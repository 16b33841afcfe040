"""Collect every binding the app declares and render docs/keymap.md (scripts/gen_keymap.py writes it,
tests/tui/test_keymap_doc.py checks the committed file matches)."""

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


def _scopes() -> list[tuple[str, type[Any]]]:
    from .screens.base import FilterableScreen
    from .screens.dialogs.confirm import ConfirmModal
    from .screens.dialogs.error import ErrorModal
    from .screens.dialogs.help import HelpScreen
    from .screens.lead_detail import LeadDetailScreen
    from .screens.dialogs.prompt import ChoiceModal, PromptModal
    from .app import NurtureApp, screen_class
    from .keymap import MODES
    from .widgets.leads.lead_list import LeadList

    scopes: list[tuple[str, type[Any]]] = [("App (every screen)", NurtureApp),
                                           ("Lists (Segments, Sequences, Templates, Leaderboard, MQL queue)",
                                            FilterableScreen)]
    for name, title, _key in MODES:
        scopes.append((title, screen_class(name)))
        if name == "leads":
            scopes.append(("Leads list", LeadList))
    scopes += [("Lead detail", LeadDetailScreen), ("Help", HelpScreen), ("Confirm", ConfirmModal),
               ("Prompt", PromptModal), ("Choice", ChoiceModal), ("Error", ErrorModal)]
    return scopes


def collect_bindings() -> list[tuple[str, Binding]]:
    out: list[tuple[str, Binding]] = []
    for scope, cls in _scopes():
        for b in cls.__dict__.get("BINDINGS", []):  # own bindings (inherited ones are Textual's)
            if isinstance(b, Binding):
                out.append((scope, b))
    return out


def _keys(b: Binding) -> str:
    names = {"question_mark": "?", "slash": "/", "greater_than_sign": ">", "less_than_sign": "<",
             "space": "space", "escape": "esc"}
    return ", ".join(f"`{names.get(k.strip(), k.strip())}`" for k in b.key.split(","))


def render_keymap() -> str:
    lines = [HEADER]
    scope = None
    for s, b in collect_bindings():
        if s != scope:
            scope = s
            lines += ["", f"## {s}", "", "| Keys | Action | Binding id |", "|---|---|---|"]
        lines.append(f"| {_keys(b)} | {b.description or b.action} | `{b.id}` |")
    return "\n".join(lines) + "\n"
