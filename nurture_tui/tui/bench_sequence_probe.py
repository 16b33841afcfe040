"""The measured side of `nurture bench sequence-editor` (run as `python -m nurture_tui.tui.bench_sequence_probe
--db URL`): a fresh process opens the real app headless on the bench workspace and prints one JSON object
per line:

- `{"event": "build", "name": …, "nodes": …, "keys": …, "free": …, "parts": {…}, "seconds": …}` — a sample
  built from nothing by `tui.sequence_builds`, every character typed as a key (no paste), checked equal to
  the sample file after a canonical dump;
- `{"event": "keys", "ms": [...]}` — with the 200-node program `bench-200` open: key → the tree changed →
  the frame after it painted, for cursor moves (`↓`/`↑`/`J`) and edits (`shift+↓` moves a step, `u` undoes);
- `{"event": "validate", "ms": [...]}` — an edit's key → the draft's check of that revision shown (title and
  problem marks painted), each edit after a pause (the editor checks a lone edit at once);
- with `--reference`: `{"event": "reference_keys", "ms": [...]}` — the same cursor keys in a bare Textual
  `Tree` of as many nodes in a minimal app.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from .bench_builder_probe import _emit, _painted, _until, key_to_paint

SIZE = (130, 40)
SAMPLES = Path(__file__).resolve().parents[2] / "sequences"
BIG = "bench-200"


async def _builds(app: Any, pilot: Any) -> None:
    from ..sequences.codec import canonical_dump, parse_text
    from .screens.sequence_editor import SequenceEditorScreen
    from .sequence_builds import BUILDS, KeyLog, templates_of

    for name, build in BUILDS.items():
        text = (SAMPLES / f"{name}.yaml").read_text(encoding="utf-8")
        expected = parse_text(text).definition
        editor = SequenceEditorScreen(None)
        app.push_screen(editor)

        def opened(e: SequenceEditorScreen = editor) -> bool:
            return app.screen is e and e.draft is not None

        await _until(opened, what="a blank program")
        log = KeyLog(pilot)
        start = time.perf_counter()
        await build(log, templates_of(text))
        seconds = time.perf_counter() - start
        assert expected is not None and editor.draft is not None
        if canonical_dump(editor.draft.defn) != canonical_dump(expected):
            raise RuntimeError(f"the build of {name} differs from sequences/{name}.yaml")
        _emit(event="build", name=name, nodes=len(editor.draft.ids()), keys=log.keys, free=log.free,
              parts=log.parts, seconds=round(seconds, 2))
        editor.draft.mark_saved()  # not stored: leave without the unsaved-changes question
        app.pop_screen()
        await pilot.pause()


async def _big(app: Any, pilot: Any, rounds: int, pause: float) -> None:
    from .screens.sequence_editor import SequenceEditorScreen

    editor = SequenceEditorScreen(BIG)
    app.push_screen(editor)
    await _until(lambda: app.screen is editor and editor.draft is not None, what="the 200-node program")
    loaded = editor.draft
    assert loaded is not None
    await _until(lambda: editor.checked_revision == loaded.revision, what="its first check")
    tree = editor.seq_tree
    tree.focus()
    await pilot.pause()
    nodes = len(loaded.ids())
    ms: list[float] = []
    validate: list[float] = []

    def cursor() -> Any:
        return tree.cursor_line

    async def move(key: str) -> None:
        before = cursor()
        ms.append(await key_to_paint(app, key, lambda: cursor() != before, tree))
        await asyncio.sleep(pause)

    async def edit(key: str) -> None:
        draft = editor.draft
        assert draft is not None
        revision = draft.revision
        start = time.perf_counter()
        try:
            ms.append(await key_to_paint(app, key, lambda: draft.revision != revision, tree))
        except TimeoutError:
            notes = [n.message for n in app._notifications][-2:]
            raise TimeoutError(f"{key} at {tree.cursor_path} did nothing: {notes}, focus {app.focused}, "
                               f"screen {app.screen}") from None
        await _until(lambda: editor.checked_revision == draft.revision, 30.0, "the check of the edit")
        await _painted(editor.query_one("#name"))
        validate.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(max(pause, 0.2))  # a fresh edit: the debouncer checks it at once

    for _ in range(rounds):
        for _ in range(30):
            await move("down")
        for _ in range(10):
            await move("up")
        for _ in range(3):
            await move("J")
        for _ in range(5):
            await edit("shift+down")
            await edit("u")
    _emit(event="keys", nodes=nodes, ms=[round(x, 3) for x in ms])
    _emit(event="validate", nodes=nodes, ms=[round(x, 3) for x in validate])


async def _measure(db_url: str, data_dir: str, rounds: int, pause: float, builds: bool) -> None:
    from ..config import Settings
    from ..workspace import Workspace
    from .app import make_app

    settings = Settings(db_url=db_url, data_dir=Path(data_dir), user={"name": "bench", "role": "admin"})
    ws = Workspace.open(settings, check_schema=False)
    app = make_app(ws, initial_mode="sequences", background=False, status_interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _until(lambda: getattr(app.screen, "rows", None) is not None, what="the Sequences list")
            if builds:
                await _builds(app, pilot)
            await _big(app, pilot, rounds, pause)
            _emit(event="done")
    finally:
        ws.close()


async def _measure_reference(nodes: int, rounds: int, pause: float) -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Tree

    class Reference(App[None]):
        def compose(self) -> ComposeResult:
            tree: Tree[None] = Tree("program")
            for i in range(nodes):
                tree.root.add_leaf(f"SEND  send template-{i}  #step-{i}")
            tree.root.expand()
            yield tree

    app = Reference()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(Tree)
        tree.focus()
        await pilot.pause()
        ms: list[float] = []
        for _ in range(rounds):
            for key in ["down"] * 30 + ["up"] * 10:
                before = tree.cursor_line

                def moved(b: int = before) -> bool:
                    return tree.cursor_line != b

                ms.append(await key_to_paint(app, key, moved, tree))
                await asyncio.sleep(pause)
        _emit(event="reference_keys", ms=[round(x, 3) for x in ms])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db")
    parser.add_argument("--data-dir", default=".")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.03, help="Seconds between keys.")
    parser.add_argument("--no-builds", action="store_true", help="Only the 200-node program.")
    parser.add_argument("--reference", type=int, default=0, help="Time a bare Tree of this many nodes instead.")
    args = parser.parse_args()
    if args.reference:
        asyncio.run(_measure_reference(args.reference, args.rounds, args.pause))
    else:
        asyncio.run(_measure(args.db, args.data_dir, args.rounds, args.pause, not args.no_builds))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
