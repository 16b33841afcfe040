"""The sequence editor: a program as a tree (every node with its badge and one-line summary, arms as labelled
children), edited by keyboard — add, edit in a form per node kind, move, delete, copy/paste a subtree,
undo/redo, settings — validated in a debounced worker after every edit with the problems listed below the
tree and marked at their node, saved as the draft (refused when the stored draft changed since it was
loaded), and published with the diff and the leads in flight shown first.

Beside editing: `t` tests the saved draft in the simulator (`SequenceSimulatorScreen`: a lead's timeline with
outcomes picked by key, the forecast on a segment); `c` shows the published program's live counters on the
tree (`v` cycles the versions they are summed over), refreshed every POLL_SECONDS and on `data_changed`; and
the stored draft is watched in a worker every POLL_SECONDS: a `nurture sequences apply` while the editor is
open reloads an unedited draft (with a notice), or asks whether to reload and lose the edits or keep them
(saving is then refused, and says why); `R` reloads on demand.

`SequenceEditorScreen(name)` edits the stored draft of sequence `name`; `SequenceEditorScreen(None)` starts a
new blank program (its name is asked on the first save). The list screen pushes it (`e`/`enter`/`n`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import OptionList, Static, Tree
from textual.widgets.option_list import Option

from ... import heap
from ...console.sequence_draft import DraftProblem, Path, SequenceDraft, check_step_id, is_list_path
from ...console.sequence_editing import EditorState, LoadedDraft, SequenceEditing
from ...console.sequence_live import LiveCounts, SequenceLive
from ...errors import NurtureError, ValidationError
from ...sequences.model import Step
from ...sequences.service import checksum
from ...sequences.validate import Catalog
from ..debounce import Debouncer
from ..keymap import bind
from ..widgets.sequences.sequence_tree import Key, SequenceTree
from .base import NurtureScreen
from .dialogs.confirm import ConfirmModal
from .dialogs.node_form import KindModal, NodeForm
from .dialogs.prompt import ChoiceModal, PromptModal
from .dialogs.sequence_publish import PublishModal
from .dialogs.sequence_settings import SettingsForm
from .sequence_simulator import SequenceSimulatorScreen

#: Edits closer together than this are validated once, after the last of them.
DEBOUNCE_SECONDS = 0.15
BRANCHING = ("wait_for", "branch", "split")

#: The editors holding the heap frozen (`_freeze_heap`), so a screen thaws it at most once.
_FREEZERS: set[int] = set()


def _freeze_heap(editor: SequenceEditorScreen) -> None:
    """Move every object alive once a program is loaded (the app, Textual, the program) into the GC's
    permanent generation. A full collection scans every tracked object, and after a while in the console
    that is half a million of them: 250–400 ms with the UI thread stopped, in the middle of a keystroke.
    Frozen, they are skipped, and a full collection scans only what editing made since. O(1), no scan.
    The hold is shared with the in-process engine's (`heap`): neither thaws the other's."""
    if id(editor) not in _FREEZERS:
        _FREEZERS.add(id(editor))
        heap.hold()


def _thaw_heap(editor: SequenceEditorScreen) -> None:
    """The editor closed: its hold goes; the last holder's release gives the frozen objects back to the
    collector (a closed editor's widgets and drafts among them, which only a collection frees)."""
    if id(editor) in _FREEZERS:
        _FREEZERS.discard(id(editor))
        heap.release()


class SequenceEditorScreen(NurtureScreen):
    CSS_PATH = "sequence_editor.tcss"
    TITLE = "Sequence editor"
    AREA = "sequences"
    HELP = """\
Edit the program as a tree. `a` adds a step after the cursor (on an arm header or the top: first in that list),
`A` adds the first step of an arm of the step under the cursor (`y` / `n` or the arm's letter), `e` or `enter`
edits a step in its form (on the top row: the settings; `s` too; `f2` in a condition field opens the segment
builder on it), `d` deletes (asks when gotos point into it), `shift+↑/↓` move within the list, `y` / `p` copy
and paste a subtree, `u` / `ctrl+r` undo and redo. `J` / `K` next / previous branch, `g` jumps to a goto's
target and `backspace` back, `o` goes out of an arm to its step, `space` folds. `tab` goes to the problems:
`enter` on one jumps to its node. `ctrl+s` saves the draft, `P` publishes (shows the diff — `s` there: side by
side — and the leads in flight first), `z` pauses or resumes the published program. `t` tests the saved draft:
simulate a lead (outcomes by key at each decision) or forecast on a segment (`f` there). `c` shows the live
counters per node (here / in / yes / no / exited / goal, summed over the live versions; `v` cycles the
versions). A file applied meanwhile reloads the draft (asks first when you have unsaved edits); `R` reloads on
demand.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("a", "add", "Add", "sequence_editor.add"),
        bind("A", "add_child", "Add in arm", "sequence_editor.add_child", key_display="A"),
        bind("e", "edit", "Edit", "sequence_editor.edit"),
        bind("d,delete", "delete", "Delete", "sequence_editor.delete"),
        # priority: the tree's own shift+↑/↓ jump between siblings; here they move the step
        bind("shift+up", "move(-1)", "Move up", "sequence_editor.move_up", show=False, priority=True),
        bind("shift+down", "move(1)", "Move down", "sequence_editor.move_down", show=False, priority=True),
        bind("y", "copy", "Copy", "sequence_editor.copy", show=False),
        bind("p", "paste", "Paste", "sequence_editor.paste", show=False),
        bind("u", "undo", "Undo", "sequence_editor.undo"),
        bind("ctrl+r", "redo", "Redo", "sequence_editor.redo", show=False),
        bind("J", "branch(1)", "Next branch", "sequence_editor.next_branch", show=False, key_display="J"),
        bind("K", "branch(-1)", "Previous branch", "sequence_editor.previous_branch", show=False, key_display="K"),
        bind("g", "jump", "Go to target", "sequence_editor.jump", show=False),
        bind("backspace", "jump_back", "Jump back", "sequence_editor.jump_back", show=False),
        bind("o", "out", "Out of the arm", "sequence_editor.out", show=False),
        bind("s", "settings", "Settings", "sequence_editor.settings"),
        bind("tab", "switch_pane", "Problems", "sequence_editor.problems", show=False),
        bind("ctrl+s", "save", "Save", "sequence_editor.save"),
        bind("P", "publish", "Publish", "sequence_editor.publish", key_display="P"),
        bind("z", "pause_resume", "Pause/resume", "sequence_editor.pause", show=False),
        bind("t", "test", "Test", "sequence_editor.test"),
        bind("c", "counters", "Counters", "sequence_editor.counters"),
        bind("v", "counter_version", "Counter version", "sequence_editor.counter_version", show=False),
        bind("R", "reload_draft", "Reload", "sequence_editor.reload", show=False, key_display="R"),
        bind("escape", "close", "Back", "sequence_editor.back"),
    ]

    @dataclass
    class Loaded(Message, bubble=False):
        loaded: LoadedDraft
        names: dict[str, list[str]]

    @dataclass
    class Checked(Message, bubble=False):
        revision: int
        problems: list[DraftProblem]

    @dataclass
    class StoreSeen(Message, bubble=False):
        """The stored draft's state now, and the live counters when they are shown."""

        generation: int
        state: EditorState
        live: LiveCounts | None

    def __init__(self, name: str | None = None) -> None:
        """`name`: the sequence whose stored draft to edit; None: a new blank program."""
        super().__init__()
        self.stored_name = name
        self.draft: SequenceDraft | None = None
        self.state: EditorState | None = None
        self.names: dict[str, list[str]] = {}
        self.problems: list[DraftProblem] = []
        self.checked_revision = -1
        self.clipboard: Step | None = None
        self.jumps: list[Key] = []
        self._checker = Debouncer(self, DEBOUNCE_SECONDS, self._check)
        self.counters_on = False
        self.counter_version: int | None = None  # None: summed over the live versions
        self.live: LiveCounts | None = None
        self.kept_over: str | None = None  # the stored checksum whose reload was declined ("keep mine")
        self._store_generation = 0  # bumped by our own writes and loads: older watch results are dropped
        self._reload_cursor: Key | None = None
        self._shown_title: Text | None = None

    # -- layout and loading -------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield Static("loading…", id="name")
        yield SequenceTree(id="tree")
        yield OptionList(id="problems")

    @property
    def seq_tree(self) -> SequenceTree:
        return self.query_one("#tree", SequenceTree)

    @property
    def editing(self) -> SequenceEditing:
        return SequenceEditing(self.session)

    def on_mount(self) -> None:
        self.nurture.open_editors.add(self)
        self.query_one("#problems", OptionList).display = False
        self.seq_tree.focus()
        self._load()
        self.set_interval(self.POLL_SECONDS, self._watch_store)

    def on_unmount(self) -> None:
        self.nurture.open_editors.discard(self)
        _thaw_heap(self)

    def unsaved_changes(self) -> str:
        if self.draft is None or not self.draft.dirty:
            return ""
        return f"sequence {self.stored_name or self.draft.defn.name + ' (new)'}"

    @work(thread=True, exclusive=True, group="sequence_editor.load", exit_on_error=False, description="Load sequence")
    def _load(self) -> None:
        editing = self.editing
        self.post_result(self.Loaded(editing.load(self.stored_name), editing.names()))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self._store_generation += 1
        self.draft = message.loaded.draft
        self.state = message.loaded.state
        self.names = message.names
        self.kept_over = None
        cursor, self._reload_cursor = self._reload_cursor, None
        self.refresh_draft(cursor or ())
        _freeze_heap(self)

    # -- the store, watched: a file applied meanwhile, and the live counters -------------------------

    def _watch_store(self) -> None:
        if self.stored_name is not None and self.draft is not None and self.is_current:
            self._read_store(self.stored_name, self._store_generation, self.counters_on, self.counter_version)

    @work(thread=True, exclusive=True, group="sequence_editor.watch", exit_on_error=False,
          description="Watch the stored draft")
    def _read_store(self, name: str, generation: int, counters: bool, version: int | None) -> None:
        state = self.editing.state(name)
        live = SequenceLive(self.session).counts(name, version) if counters else None
        self.post_result(self.StoreSeen(generation, state, live))

    @on(StoreSeen)
    def _store_seen(self, message: StoreSeen) -> None:
        if message.generation != self._store_generation or self.draft is None or self.state is None:
            return  # we saved, published or loaded since it was read
        if message.live is not None and self.counters_on:
            self.live = message.live
            self.seq_tree.show_counts(message.live.counts, message.live.allocations)
        changed = message.state.base != self.state.base
        self.state = EditorState(self.state.name, message.state.status, message.state.version, self.state.base,
                                 message.state.published_checksum)
        self._title()
        if not changed or message.state.base == self.kept_over:
            return
        if not self.draft.dirty:
            self.notify(f"the stored draft of {self.state.name} changed (a `nurture sequences apply`?): reloaded",
                        title="Draft reloaded")
            self._reload()
        else:
            self.kept_over = message.state.base
            self._ask_reload()

    def _reload(self) -> None:
        self._reload_cursor = self.seq_tree.cursor_key
        self._store_generation += 1
        self._load()

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Reload?")
    async def _ask_reload(self) -> None:
        choice = await self.app.push_screen_wait(ChoiceModal(
            "The stored draft changed while you were editing (a `nurture sequences apply`?)",
            [("reload", "Reload it and lose my edits"),
             ("keep", "Keep my edits (saving is refused while the stored draft differs; R reloads)")]))
        if choice == "reload":
            self._reload()
        else:
            self.notify("kept your edits: ctrl+s is refused until you reload (R), since the stored draft "
                        "changed", severity="warning")

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Reload")
    async def action_reload_draft(self) -> None:
        if self.stored_name is None:
            self.notify("a new program: nothing stored to reload")
            return
        if self.draft is not None and self.draft.dirty and not await self.app.push_screen_wait(ConfirmModal(
                "Reload the stored draft?", "Your unsaved edits are lost.", confirm_label="Reload",
                destructive=True)):
            return
        self._reload()

    def data_changed(self, what: str) -> None:
        if what == "sequences":
            self._watch_store()

    def action_counters(self) -> None:
        if self.stored_name is None or self.state is None or self.state.version is None:
            self.notify("no live counters: the program is not published yet")
            return
        self.counters_on = not self.counters_on
        if not self.counters_on:
            self.live = None
            self.seq_tree.show_counts(None)
            self._title()
        else:
            self._watch_store()

    def action_counter_version(self) -> None:
        if not self.counters_on or self.live is None:
            self.notify("`c` shows the live counters first")
            return
        order: list[int | None] = [None, *self.live.versions]
        self.counter_version = order[(order.index(self.counter_version) + 1) % len(order)] \
            if self.counter_version in order else None
        self._watch_store()

    # -- testing before going live ------------------------------------------------------------------

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Test")
    async def action_test(self) -> None:
        draft = self.draft
        if draft is None:
            return
        if draft.dirty or self.stored_name is None:
            ok = await self.app.push_screen_wait(ConfirmModal(
                "Save the draft first?", "The simulator runs on the saved draft.", confirm_label="Save"))
            if not ok or not await self._save():
                return
        assert self.stored_name is not None
        arms = {step.id: [arm.name for arm in step.split.arms] for _path, step in draft.walk()
                if step.split is not None}
        await self.app.push_screen(SequenceSimulatorScreen(self.stored_name, arms))

    # -- showing the draft --------------------------------------------------------------------------

    def refresh_draft(self, cursor: Path | Key | None = None) -> None:
        """Redraw the tree and the title at once; validate after a pause in editing."""
        if self.draft is None:
            return
        self.seq_tree.show(self.draft, cursor, self._problems_now())
        self._title()
        self._checker.request()

    def _problems_now(self) -> list[DraftProblem]:
        """The problems last found (marks of an older revision stay until the check of this one lands)."""
        return self.problems

    def _title(self) -> None:
        draft, state = self.draft, self.state
        if draft is None or state is None:
            return
        name = draft.defn.name
        if state.version is None:
            where = "new, not saved yet" if state.status == "new" else "draft, never published"
        else:
            same = state.published_checksum == checksum(draft.defn.to_json())
            where = f"v{state.version} {state.status}" + ("" if same else ", draft differs")
        unsaved = draft.dirty
        checked = self.checked_revision == draft.revision
        n = len(self.problems)
        verdict = "checking…" if not checked else f"✗ {n} problem{'s' * (n != 1)}" if n else "✓ publishable"
        live = self.live
        counters = f"  counters {live.scope}" if self.counters_on and live is not None else ""
        title = Text.assemble(
            (name, "bold"), ("  ", ""), (where, "dim"),
            ("  ● unsaved" if unsaved else "  saved", "yellow" if unsaved else "dim"),
            ("  ", ""), (verdict, "red" if checked and n else "green" if checked else "dim"),
            (counters, "cyan"))
        if title != self._shown_title:  # one line high: a repaint, no layout of the screen
            self._shown_title = title
            self.query_one("#name", Static).update(title, layout=False)

    def _check(self) -> None:
        # After the edit has painted: the check's copy and its thread would otherwise hold the GIL while the
        # tree repaints, and every edit would wait for validation to show.
        self.call_after_refresh(self._start_check)

    def _start_check(self) -> None:
        draft = self.draft
        if draft is not None and self.checked_revision != draft.revision:
            self._run_check(draft.frozen(), draft.catalog, draft.revision)

    @work(thread=True, exclusive=True, group="sequence_editor.check", exit_on_error=False, description="Validate")
    def _run_check(self, frozen: str, catalog: Catalog | None, revision: int) -> None:
        # The draft is rebuilt here, off the UI thread; `_checked` drops the result if an edit came since.
        self.post_result(self.Checked(revision, SequenceDraft.thaw(frozen, catalog).problems()))

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        if self.draft is None or message.revision != self.draft.revision:
            return  # an edit came after: its own check is on its way
        same = message.problems == self.problems
        self.problems = message.problems
        self.checked_revision = message.revision
        if not same:  # most edits change no problem: the panel is left as it is
            panel = self.query_one("#problems", OptionList)
            panel.clear_options()
            panel.add_options([Option(Text.assemble(("✗ ", "bold red"), p.format()), id=str(i))
                               for i, p in enumerate(message.problems)])
            panel.display = bool(message.problems)
        self.seq_tree.mark_problems(self.problems)
        self._title()

    @on(OptionList.OptionSelected, "#problems")
    def _problem_selected(self, event: OptionList.OptionSelected) -> None:
        """`enter` on a problem: the cursor goes to its node (a setting's: the settings form)."""
        event.stop()
        problem = self.problems[int(event.option.id or 0)]
        self.seq_tree.focus()
        if problem.path is not None:
            self.seq_tree.go((problem.path, False))
        else:
            self.action_settings()

    def action_switch_pane(self) -> None:
        panel = self.query_one("#problems", OptionList)
        if self.seq_tree.has_focus and panel.display:
            panel.focus()
            if panel.highlighted is None and panel.option_count:
                panel.highlighted = 0
        else:
            self.seq_tree.focus()

    # -- editing ------------------------------------------------------------------------------------

    def _edit(self, change: Any) -> bool:
        """Apply one edit to the draft (a refused edit is a toast, the draft unchanged)."""
        try:
            cursor = change()
        except ValidationError as exc:
            self.notify(str(exc), severity="warning")
            return False
        self.refresh_draft(cursor)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("save", "publish", "pause_resume"):
            return self.write_state()
        return True

    @on(Tree.NodeSelected, "#tree")
    def _selected(self, event: Tree.NodeSelected[Any]) -> None:
        """`enter` on the tree edits the node under the cursor."""
        event.stop()
        self.action_edit()

    def _form(self, step: Step, *, new: bool) -> NodeForm:
        assert self.draft is not None
        ids = sorted(self.draft.ids())
        names = dict(self.names)
        inline = [t.name for t in self.draft.defn.templates]
        names["templates"] = sorted(set(names.get("templates", [])) | set(inline))
        return NodeForm(step, sequence=self.draft.defn.name, ids=ids, names=names, new=new)

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Add a step")
    async def action_add(self) -> None:
        if self.draft is None:
            return
        await self._add(self.seq_tree.cursor_path, None)

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Add in an arm")
    async def action_add_child(self) -> None:
        draft = self.draft
        if draft is None:
            return
        path = self.seq_tree.cursor_path
        if is_list_path(path):  # an arm header (or the top): first in that list, as `a`
            await self._add(path, None)
            return
        arms = draft.arms(path)
        if not arms:
            self.notify(f"a {draft.step(path).kind} step has no arms: `a` adds after it", severity="warning")
            return
        arm = arms[0] if len(arms) == 1 else await self.app.push_screen_wait(
            ChoiceModal("Add as the first step of", [(a, a) for a in arms]))
        if arm:
            await self._add(path, arm)

    async def _add(self, path: Path, arm: str | None) -> None:
        draft = self.draft
        assert draft is not None
        kind = await self.app.push_screen_wait(KindModal())
        if not kind:
            return
        step = await self.app.push_screen_wait(self._form(draft.blank(kind), new=True))
        if step is None:
            return
        if arm is None:
            self._edit(lambda: draft.add_after(path, step))
        else:
            self._edit(lambda: draft.add_first_child(path, arm, step))

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Edit a step")
    async def action_edit(self) -> None:
        draft = self.draft
        if draft is None:
            return
        path = self.seq_tree.cursor_path
        if not path:
            await self._settings()
            return
        if is_list_path(path):  # an arm header: the step it belongs to
            path = path[:-1]
        step = await self.app.push_screen_wait(self._form(draft.step(path), new=False))
        if step is None:
            return
        try:
            cursor = draft.replace(path, step)
        except ValidationError as exc:
            if "would delete" not in exc.message:
                self.notify(str(exc), severity="warning")
                return
            ok = await self.app.push_screen_wait(ConfirmModal(
                "Delete the steps below it?", f"{exc.message}. `u` undoes.", confirm_label="Delete",
                destructive=True))
            if not ok:
                return
            self._edit(lambda: draft.replace(path, step, drop_children=True))
            return
        self.refresh_draft(cursor)

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Settings")
    async def action_settings(self) -> None:
        await self._settings()

    async def _settings(self) -> None:
        draft = self.draft
        if draft is None:
            return
        values = await self.app.push_screen_wait(SettingsForm(draft, lambda v: draft.set_settings(**v)))
        if values is not None:
            self.refresh_draft()

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Delete a step")
    async def action_delete(self) -> None:
        draft = self.draft
        path = self.seq_tree.cursor_path
        if draft is None or is_list_path(path):
            return
        step = draft.step(path)
        referrers = draft.referrers(path)
        below = len([s for p, s in draft.walk() if p[:len(path)] == path]) - 1
        if referrers or below:
            scope = f"{step.id} and the {below} step(s) below it" if below else step.id
            refs = (f"\nThese point into it and will be left dangling: {', '.join(referrers)}"
                    if referrers else "")
            ok = await self.app.push_screen_wait(ConfirmModal(
                f"Delete {step.id}?", f"Deletes {scope}.{refs}\n`u` undoes.", confirm_label="Delete",
                destructive=True))
            if not ok:
                return
        self._edit(lambda: draft.delete(path))

    def action_move(self, delta: int) -> None:
        draft = self.draft
        if draft is not None:
            path = self.seq_tree.cursor_path
            self._edit(lambda: draft.move(path, delta))

    def action_copy(self) -> None:
        path = self.seq_tree.cursor_path
        if self.draft is None or is_list_path(path):
            return
        self.clipboard = self.draft.copy(path)
        self.notify(f"copied {self.clipboard.id} (and what is below it): `p` pastes after the cursor")

    def action_paste(self) -> None:
        draft, clip = self.draft, self.clipboard
        if draft is None or clip is None:
            self.notify("nothing copied: `y` copies the step under the cursor")
            return
        path = self.seq_tree.cursor_path
        self._edit(lambda: draft.paste_after(path, clip))

    def action_undo(self) -> None:
        if self.draft is not None and self.draft.undo():
            self.refresh_draft()
        else:
            self.notify("nothing to undo")

    def action_redo(self) -> None:
        if self.draft is not None and self.draft.redo():
            self.refresh_draft()
        else:
            self.notify("nothing to redo")

    # -- moving around ------------------------------------------------------------------------------

    def action_branch(self, delta: int) -> None:
        rows = self.seq_tree.rows
        keys = [(r.path, r.kind == "goto") for r in rows]
        here = self.seq_tree.cursor_key
        start = keys.index(here) if here in keys else -1
        order = range(start + 1, len(rows)) if delta > 0 else range(start - 1, -1, -1)
        for i in order:
            if rows[i].kind in BRANCHING:
                self.seq_tree.go(keys[i])
                return
        self.notify("no more branches " + ("below" if delta > 0 else "above"))

    def action_jump(self) -> None:
        draft = self.draft
        path = self.seq_tree.cursor_path
        if draft is None or is_list_path(path):
            return
        step = draft.step(path)
        target = step.goto
        if target is None and step.wait_for is not None:
            target = next((e.node for e in step.wait_for.events if e.node), None)
        if target is None:
            self.notify("this step has no goto (nor watches a step)")
            return
        found = draft.find(target)
        if found is None:
            self.notify(f"no step {target!r} in this program", severity="warning")
            return
        self.jumps.append(self.seq_tree.cursor_key)
        self.seq_tree.go((found, False))

    def action_jump_back(self) -> None:
        if self.jumps:
            self.seq_tree.go(self.jumps.pop())

    def action_out(self) -> None:
        """To the step whose arm holds the cursor (`a` then adds after it): one key for the tree's two
        `shift+left`s (the arm header, then its step)."""
        path = self.seq_tree.cursor_path
        step = path[:-2] if not is_list_path(path) else path[:-1]
        if len(path) < 2 or not step:
            self.notify("already at the top level")
            return
        self.seq_tree.go((step, False))

    # -- saving, publishing, leaving ----------------------------------------------------------------

    @work(exclusive=True, group="sequence_editor.save", exit_on_error=False, description="Save the draft")
    async def action_save(self) -> None:
        await self._save()

    async def _save(self) -> bool:
        draft, state = self.draft, self.state
        if draft is None or state is None:
            return False
        if self.stored_name is None and draft.defn.name == "untitled":
            name = await self.app.push_screen_wait(PromptModal(
                "Save the new program as", "a name: cold-lead-reengagement", validate=_name_problem))
            if not name:
                return False
            self._edit(lambda: draft.set_settings(name=name))
        revision = draft.revision
        self._store_generation += 1
        try:
            saved = await asyncio.to_thread(self.editing.save, draft.definition(), state.base,
                                            stored_name=self.stored_name)
        except NurtureError as exc:
            self.notify(f"not saved: {str(exc).splitlines()[0]}", severity="error")
            return False
        if draft.revision == revision:
            draft.mark_saved()
        self._store_generation += 1
        self.state = saved
        self.stored_name = saved.name
        self._title()
        self.notify(f"saved the draft of {saved.name}", title="Sequence saved")
        self.nurture.data_changed("sequences")
        return True

    @work(exclusive=True, group="sequence_editor.save", exit_on_error=False, description="Publish")
    async def action_publish(self) -> None:
        draft = self.draft
        if draft is None:
            return
        if (draft.dirty or self.stored_name is None) and not await self._save():
            return
        name = self.stored_name
        assert name is not None and self.state is not None
        preview = await asyncio.to_thread(self.editing.preview, name)
        choice = await self.app.push_screen_wait(PublishModal(name, self.state.version, preview))
        if choice is None:
            return
        self._store_generation += 1
        try:
            result = await asyncio.to_thread(self.editing.publish, name, migrate=choice == "migrate")
        except NurtureError as exc:
            self.notify(f"not published: {str(exc).splitlines()[0]}", severity="error")
            return
        self.state = await asyncio.to_thread(self.editing.state, name)
        self._store_generation += 1
        self._title()
        moved = ""
        if result.migration is not None:
            moved = f"; {result.migration.moved} lead(s) moved, {result.migration.stayed} stayed"
        self.notify((f"published v{result.number}" if result.created else f"v{result.number} unchanged") + moved,
                    title="Sequence published")
        self.nurture.data_changed("sequences")

    @work(exclusive=True, group="sequence_editor.save", exit_on_error=False, description="Pause or resume")
    async def action_pause_resume(self) -> None:
        state = self.state
        if state is None or self.stored_name is None or state.version is None:
            self.notify("publish the program first (`P`)")
            return
        change = self.editing.resume if state.status == "paused" else self.editing.pause
        try:
            status = await asyncio.to_thread(change, self.stored_name)
        except NurtureError as exc:
            self.notify(str(exc), severity="error")
            return
        self.state = await asyncio.to_thread(self.editing.state, self.stored_name)
        self._title()
        self.notify(f"{self.stored_name} is {status}")
        self.nurture.data_changed("sequences")

    @work(exclusive=True, group="sequence_editor.form", exit_on_error=False, description="Leave")
    async def action_close(self) -> None:
        if await self.may_leave(self._save):
            self.dismiss()


def _name_problem(text: str) -> str | None:
    try:
        check_step_id(text)
    except ValidationError:
        return "a sequence name here is a slug: lower-case letters, digits, - and _"
    return None
