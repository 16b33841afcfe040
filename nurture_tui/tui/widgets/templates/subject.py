"""The subject's one-line editor: a TextArea (undo, selection, merge-field insertion like the bodies) where
`enter` moves on to the HTML part instead of adding a line break (a subject is one line)."""

from __future__ import annotations

from textual import events
from textual.widgets import TextArea


class SubjectArea(TextArea):
    DEFAULT_CSS = "SubjectArea { height: 1; }"

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(text, id=id, compact=True, soft_wrap=False, highlight_cursor_line=False,
                         placeholder="Subject, e.g. Welcome, {{ lead.first_name | default(\"there\") }}")

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.screen.focus_next()
            return
        await super()._on_key(event)
