"""Write docs/keymap.md from the live bindings (tests/tui/test_docs.py checks the committed file)."""

from __future__ import annotations

from pathlib import Path

from nurture_tui.tui.app import NurtureApp
from nurture_tui.tui.keymap_doc import render_keymap

if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "keymap.md"
    target.write_text(render_keymap(NurtureApp))
    print(f"wrote {target}")
