"""Key bindings: every binding has a stable dotted id (`<scope>.<action>`), users remap them in config

    [tui.keymap]
    "leads.tag" = "t"
    "app.mode.mql" = "m,7"

and `docs/keymap.md` is generated from the live BINDINGS (scripts/gen_keymap.py; a test keeps it in sync).
Theme choice is persisted in `<data dir>/tui-state.json` so it survives restarts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.binding import Binding


def bind(keys: str, action: str, description: str, id: str, *, show: bool = True, priority: bool = False,
         tooltip: str = "", key_display: str | None = None) -> Binding:
    """A binding with a stable id (what the user keymap and docs/keymap.md refer to)."""
    return Binding(keys, action, description, show=show, priority=priority, id=id, tooltip=tooltip or description,
                   key_display=key_display)


def validate_keymap(keymap: dict[str, str], known_ids: Iterable[str]) -> list[str]:
    """Problems in a user keymap (unknown binding ids), one line each, naming the id."""
    known = set(known_ids)
    return [f"tui.keymap: unknown binding id {bid!r}" for bid in keymap if bid not in known]


def _state_file(data_dir: Path) -> Path:
    return data_dir / "tui-state.json"


def load_ui_state(data_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(_state_file(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_ui_state(data_dir: Path, **values: Any) -> None:
    state = load_ui_state(data_dir)
    state.update(values)
    path = _state_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)
