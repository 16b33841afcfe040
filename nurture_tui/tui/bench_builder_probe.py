"""The measured side of `nurture bench segment-builder` (run as
`python -m nurture_tui.tui.bench_builder_probe`): a fresh process that opens the real app headless on the
demo data set, with the workspace clock at the data set's "now", drives the segment builder and the
template editor by key events (as the terminal driver posts them), and prints one JSON object per line:

- `{"event": "keys", "where": ..., "ms": [...]}` — key → the widget changed → the frame after it painted, for
  every key typed: the condition form's subject picker and value input, the template editor's HTML TextArea;
- `{"event": "count", ...}` — the last key of an edit in the builder (the `enter` that saves the condition
  `activity: click at_least 2`, then `ctrl+r` redoing it after an `u`) → the screen shows that rule's count
  (debounce, the count and sample worker, the repaint); `undo_ms` the same for the `u` (one-condition rule);
- `{"event": "preview", ...}` — a key typed into the template editor's HTML part → the preview for the
  chosen lead shows that edit and is painted (debounce, check + compose render in the worker, repaint).

With `--reference` it instead times the same typing into a bare Textual `Input` in a minimal app (the
keystroke reference).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

SIZE = (130, 40)
#: What is typed into the condition form's value input (subject `industry`, operator `in`).
VALUE_TEXT = "Software, Fintech, Health"
SUBJECT_TEXT = "industry"


def _emit(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _key_event(key: str) -> Any:
    """The Key event the terminal driver posts for `key` (a character or a key name), character included
    (`App.simulate_key` posts none, so printable keys would not type)."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    name = _character_to_key(key) if len(key) == 1 and not key.isalnum() else key
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(name, name)))
    except KeyError:
        char = key if len(key) == 1 else None
    return events.Key(name, char)


async def _until(cond: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.0005)


def _changed_from(get: Callable[[], Any], before: Any) -> Callable[[], bool]:
    return lambda: get() != before


async def _painted(widget: Any) -> None:
    """Wait for the frame after everything pending (the screen runs its after-refresh callbacks only once no
    widget is dirty, i.e. after the repaint that shows the change)."""
    done = asyncio.Event()
    widget.call_after_refresh(done.set)
    await done.wait()


async def key_to_paint(app: Any, key: str, changed: Callable[[], bool], widget: Any) -> float:
    start = time.perf_counter()
    app.post_message(_key_event(key))
    await _until(changed, 10.0, f"key {key!r} to take effect")
    await _painted(widget)
    return (time.perf_counter() - start) * 1000


async def type_text(app: Any, text: str, value: Callable[[], str], widget: Any, pause: float) -> list[float]:
    """Type `text` one key at a time, each timed key → value changed → painted."""
    out = []
    for ch in text:
        before = value()
        out.append(await key_to_paint(app, ch, _changed_from(value, before), widget))
        await asyncio.sleep(pause)
    return out


async def erase(app: Any, n: int, value: Callable[[], str], widget: Any, pause: float) -> list[float]:
    out = []
    for _ in range(n):
        before = value()
        out.append(await key_to_paint(app, "backspace", _changed_from(value, before), widget))
        await asyncio.sleep(pause)
    return out


async def _press(pilot: Any, *keys: str) -> None:
    await pilot.press(*keys)


# -- the segment builder -----------------------------------------------------------------------------


async def _builder(app: Any, pilot: Any, rounds: int, counts: int, pause: float) -> None:
    from textual.widgets import Input, Static

    from .screens.dialogs.condition_form import ConditionForm
    from .screens.segment_editor import DEBOUNCE_SECONDS, SegmentEditorScreen

    await _until(lambda: getattr(app.screen, "rows", None) is not None, what="the Segments list")
    await _press(pilot, "n")
    await _until(lambda: isinstance(app.screen, SegmentEditorScreen) and app.screen.subjects, what="the builder")
    editor: Any = app.screen
    await _until(lambda: editor.last is not None, what="the empty rule's count")

    # typing in the condition form: the subject picker (fuzzy search), then the value (checked as typed)
    await _press(pilot, "a")
    await _until(lambda: isinstance(app.screen, ConditionForm), what="the condition form")
    form: Any = app.screen
    await pilot.pause()
    subject_input = form.query_one("#subject").input
    subject_ms: list[float] = []
    for _ in range(rounds):
        subject_ms += await type_text(app, SUBJECT_TEXT, lambda: subject_input.value, subject_input, pause)
        subject_ms += await erase(app, len(SUBJECT_TEXT), lambda: subject_input.value, subject_input, pause)
    _emit(event="keys", where="condition_subject", ms=[round(x, 3) for x in subject_ms])
    await _press(pilot, *SUBJECT_TEXT, "enter", "i", "n", "enter")
    value = form.query_one("#value", Input)
    await _until(lambda: value.has_focus, what="the value input")
    value_ms: list[float] = []
    for _ in range(rounds):
        value_ms += await type_text(app, VALUE_TEXT, lambda: value.value, value, pause)
        value_ms += await erase(app, len(VALUE_TEXT), lambda: value.value, value, pause)
    _emit(event="keys", where="condition_value", ms=[round(x, 3) for x in value_ms])
    await _press(pilot, "escape")
    await _until(lambda: app.screen is editor, what="the form to close")

    # live count: a behaviour rule built by keys; time from the last key of each edit to the count painted
    count_box = editor.query_one("#count", Static)

    async def edit_to_count(key: str) -> tuple[float, int]:
        before = editor.last
        start = time.perf_counter()
        app.post_message(_key_event(key))
        await _until(lambda: editor.last is not before, 120.0, "the count")
        await _painted(count_box)
        return (time.perf_counter() - start) * 1000, editor.last.count

    async def add_condition(subject: str, op: str, val: str) -> tuple[float, int]:
        await _press(pilot, "a")
        await _until(lambda: isinstance(app.screen, ConditionForm), what="the condition form")
        await _press(pilot, *subject, "enter", *op, "enter", *val)
        form = app.screen
        await _until(lambda: form.query_one("#value", Input).value == val, what="the value")
        return await edit_to_count("enter")

    open_ms, open_count = await add_condition("activity: open", "within", "14d")
    first_ms, rule_count = await add_condition("activity: click", "at_least", "2")
    rule = editor.draft.data()
    redo_ms, undo_ms = [first_ms], []
    for _ in range(counts - 1):
        await asyncio.sleep(pause)
        ms, _n = await edit_to_count("u")
        undo_ms.append(ms)
        await asyncio.sleep(pause)
        ms, n = await edit_to_count("ctrl+r")
        if n != rule_count or editor.draft.data() != rule:
            raise RuntimeError(f"redo counted {n} for {editor.draft.data()}, expected {rule_count} for {rule}")
        redo_ms.append(ms)
    _emit(event="count", rule=rule, count=rule_count, ms=[round(x, 3) for x in redo_ms],
          undo_ms=[round(x, 3) for x in undo_ms], open_only_ms=round(open_ms, 3), open_only_count=open_count,
          debounce_s=DEBOUNCE_SECONDS)


# -- the template editor -----------------------------------------------------------------------------


async def _template_editor(app: Any, pilot: Any, lead_id: int, previews: int, pause: float) -> None:
    from textual.widgets import Input, TextArea

    from ..bench.segment_builder import HTML_TYPED, TEMPLATE_HTML, TEMPLATE_SUBJECT
    from .screens.template_editor import TemplateEditorScreen

    editor: Any = TemplateEditorScreen()
    app.push_screen(editor)
    await _until(lambda: app.screen is editor and editor.opened, what="the template editor")
    editor.query_one("#name", Input).value = "bench-builder"
    editor.query_one("#subject", TextArea).load_text(TEMPLATE_SUBJECT)
    html = editor.query_one("#html", TextArea)
    html.load_text(TEMPLATE_HTML)
    await _press(pilot, "ctrl+l")
    await _press(pilot, *str(lead_id), "enter")
    await _until(lambda: editor.lead is not None, what="the preview lead")

    def settled() -> bool:
        return editor.shown_generation == editor.generation

    await _until(settled, what="the first preview")
    preview = editor.query_one("#preview")
    html.focus()
    html.move_cursor(html.document.end)
    await pilot.pause()
    keys_ms = await type_text(app, HTML_TYPED, lambda: html.text, html, pause)
    _emit(event="keys", where="template_html", ms=[round(x, 3) for x in keys_ms])

    # preview latency: one key typed → the preview of that draft painted
    await _until(settled, what="the preview after typing")
    out = []
    for i in range(previews):
        key = "x" if i % 2 == 0 else "backspace"
        before, generation = html.text, editor.generation
        start = time.perf_counter()
        app.post_message(_key_event(key))
        await _until(_changed_from(lambda: html.text, before), what="the key")
        await _until(_changed_from(lambda: editor.generation, generation), what="the edit")
        await _until(settled, 30.0, "the preview")
        await _painted(preview)
        out.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(pause)
    shown = str(preview.content)
    if "Thanks" not in shown:
        raise RuntimeError(f"the preview does not show the typed text: {shown[:300]!r}")
    _emit(event="preview", ms=[round(x, 3) for x in out], debounce_s=editor.PREVIEW_DELAY, lead_id=lead_id,
          shown=shown[:600])


async def _measure(db_url: str, now: str, lead_id: int, rounds: int, counts: int, previews: int,
                   pause: float) -> None:
    from ..clock import VirtualClock
    from ..config import load_settings
    from ..workspace import Workspace
    from .app import make_app

    ws = Workspace.open(load_settings(None, db_url), clock=VirtualClock(datetime.fromisoformat(now)),
                        check_schema=False)
    app = make_app(ws, initial_mode="segments", background=False, status_interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _builder(app, pilot, rounds, counts, pause)
            await _template_editor(app, pilot, lead_id, previews, pause)
            _emit(event="done")
    finally:
        ws.close()


async def _measure_reference(rounds: int, pause: float) -> None:
    """The same keys as the condition form's value, typed into a bare `Input` in a minimal app."""
    from textual.app import App, ComposeResult
    from textual.widgets import Input

    class Reference(App[None]):
        def compose(self) -> ComposeResult:
            yield Input(id="value")

    app = Reference()
    async with app.run_test(size=SIZE) as pilot:
        box = app.query_one(Input)
        box.focus()
        await pilot.pause()
        ms: list[float] = []
        for _ in range(rounds):
            ms += await type_text(app, VALUE_TEXT, lambda: box.value, box, pause)
            ms += await erase(app, len(VALUE_TEXT), lambda: box.value, box, pause)
        _emit(event="reference_keys", where="bare_input", ms=[round(x, 3) for x in ms])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db")
    parser.add_argument("--now")
    parser.add_argument("--lead", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="Times the value text is typed and erased.")
    parser.add_argument("--counts", type=int, default=10, help="Edits whose count latency is timed.")
    parser.add_argument("--previews", type=int, default=20, help="Edits whose preview latency is timed.")
    parser.add_argument("--pause", type=float, default=0.03, help="Seconds between keys (a fast typist).")
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    if args.reference:
        asyncio.run(_measure_reference(args.rounds, args.pause))
    else:
        asyncio.run(_measure(args.db, args.now, args.lead, args.rounds, args.counts, args.previews, args.pause))


if __name__ == "__main__":
    main()
