"""The template editor (pushed from Templates: `n` new, `e`/`enter` edit).

Name, category and stage on one line; the subject, HTML and text parts in TextAreas (HTML highlighted where
tree-sitter has the grammar). Every edit restarts a short debounce; then one thread worker checks the draft
and renders it for the chosen lead through the real compose path (`console.templates.preview_for`). Each
request carries a generation number, and a result for an older generation is dropped, so a slow render
never overwrites a newer one and no keystroke waits for it. The problems panel lists every problem at its
part and line (`enter` on one puts the cursor there); `ctrl+s` saves through the mail area (nothing is
written while there is a problem), `ctrl+f` inserts a merge field, `ctrl+l` chooses the preview lead,
`ctrl+r` shows the versions and their diffs, `ctrl+t` sends a test, `esc` leaves (asking first when there
are unsaved changes).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Label, TextArea

from ...console.templates import (
    STAGES,
    DraftPreview,
    LeadChoice,
    MergeField,
    TemplateDraft,
    TemplateProblem,
    TemplateProblems,
    TemplateSource,
    addresses_problem,
)
from ...errors import NurtureError
from ..debounce import Debouncer
from ..keymap import bind
from ..widgets.templates.preview import DraftPreviewView
from ..widgets.templates.problems import ProblemsPanel
from ..widgets.templates.subject import SubjectArea
from .base import NurtureScreen
from .dialogs.confirm import ConfirmModal
from .dialogs.merge_fields import MergeFieldModal
from .dialogs.prompt import PromptModal
from .dialogs.template_versions import TemplateVersionsModal

PART_IDS = ("subject", "html", "text")
FIELD_IDS = ("name", "category", "stage")


class TemplateEditorScreen(NurtureScreen):
    CSS_PATH = "template_editor.tcss"
    TITLE = "Template editor"
    AREA = "templates"
    HELP = ("Edit a template: the subject, the HTML part and the text part (leave the text empty to derive it "
            "from the HTML). The preview on the right renders the draft for the lead you choose (`ctrl+l`, an "
            "email or id) through the real compose path, or with placeholder values; it follows your typing. "
            "Every problem is listed under the editor at its part and line — `enter` on one jumps there. "
            "`ctrl+f` inserts a merge field at the cursor, `ctrl+s` saves (a new version when the body "
            "changed; nothing is saved while there is a problem), `ctrl+r` lists the versions with diffs, "
            "`ctrl+t` sends a test message (marked as a test, never counted). `tab` moves between fields; "
            "`ctrl+z` / `ctrl+y` undo and redo in a part; `esc` goes back and asks before discarding changes "
            "(`q` asks too).")
    #: Typing re-renders at most ten times a second (a render is ~5 ms); a single edit renders at once.
    PREVIEW_DELAY: ClassVar[float] = 0.1
    #: Below 110 columns the name/category/stage fields take two lines (`-narrow`).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("ctrl+s", "save", "Save", "template_editor.save"),
        bind("ctrl+f", "insert_field", "Field", "template_editor.insert_field",
             tooltip="Insert a merge field at the cursor"),
        bind("ctrl+l", "choose_lead", "Lead", "template_editor.choose_lead", tooltip="Choose the preview lead"),
        bind("ctrl+r", "versions", "Versions", "template_editor.versions"),
        bind("ctrl+t", "test_send", "Test", "template_editor.test_send", tooltip="Send a test message"),
        bind("escape", "back", "Back", "template_editor.back"),
    ]

    @dataclass
    class Opened(Message, bubble=False):
        source: TemplateSource | None
        fields: list[MergeField]

    @dataclass
    class PreviewReady(Message, bubble=False):
        generation: int
        preview: DraftPreview

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.original_name = name  # the stored template being edited (None: a new one)
        self.base_version: int | None = None
        self.saved: TemplateDraft | None = None  # what is stored (the draft as last opened or saved)
        self.fields: list[MergeField] = []
        self.lead: LeadChoice | None = None
        self.last_part = "html"
        self.generation = 0
        self.shown_generation = -1  # the generation the preview and problems show
        self.problems: list[TemplateProblem] = []
        self.opened = False
        self._previewer = Debouncer(self, self.PREVIEW_DELAY, self._start_preview)

    # -- layout -------------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="editor-body"):
            with Vertical(id="edit-pane"):
                with Container(id="meta"):
                    yield Label("Name", classes="field-label")
                    yield Input(placeholder="welcome-1", id="name", compact=True)
                    yield Label("Category", classes="field-label")
                    yield Input("marketing", id="category", compact=True)
                    yield Label("Stage", classes="field-label")
                    yield Input(placeholder="awareness", id="stage", compact=True,
                                suggester=SuggestFromList(STAGES, case_sensitive=False))
                with Horizontal(id="subject-row"):
                    yield Label("Subject", classes="field-label part-label", id="subject-label")
                    yield SubjectArea(id="subject")
                yield Label("HTML", classes="part-label", id="html-label")
                yield TextArea(id="html", soft_wrap=True, show_line_numbers=True, compact=True,
                               placeholder="<p>Hi {{ lead.first_name | default(\"there\") }},</p>")
                yield Label("Text (empty: derived from the HTML)", classes="part-label", id="text-label")
                yield TextArea(id="text", soft_wrap=True, show_line_numbers=True, compact=True,
                               placeholder="Leave empty to send the HTML as text.")
                yield ProblemsPanel(id="problems")
                yield Label("", id="state")
            with Vertical(id="preview-pane"):
                with Horizontal(id="lead-row"):
                    yield Label("Lead", classes="field-label")
                    yield Input(placeholder="email or id, enter (ctrl+l)", id="lead", compact=True)
                yield Label("", id="lead-problem")
                with VerticalScroll(id="preview-box", can_focus=True):
                    yield DraftPreviewView(id="preview")

    def on_mount(self) -> None:
        self.nurture.open_editors.add(self)  # `q` anywhere asks before quitting with unsaved changes
        html = self.query_one("#html", TextArea)
        if "html" in html.available_languages:
            html.language = "html"
        self.query_one("#name", Input).disabled = self.original_name is not None
        self._set_state("loading…")
        self._open()

    @work(thread=True, exclusive=True, group="template_editor.open", exit_on_error=False,
          description="Opening the template")
    def _open(self) -> None:
        console = self.console.templates
        source = console.source(self.original_name) if self.original_name is not None else None
        self.post_result(self.Opened(source, console.merge_fields()))

    @on(Opened)
    def _opened(self, message: Opened) -> None:
        self.fields = message.fields
        if message.source is not None:
            self.base_version = message.source.version
            self._fill(message.source.draft)
        self.saved = self.draft()
        self.opened = True
        self.query_one("#html" if self.original_name else "#name").focus()
        self._schedule_preview()

    def _fill(self, draft: TemplateDraft, *, parts_only: bool = False) -> None:
        if not parts_only:
            self.query_one("#name", Input).value = draft.name
            self.query_one("#category", Input).value = draft.category
            self.query_one("#stage", Input).value = draft.stage or ""
        self.query_one("#subject", TextArea).load_text(draft.subject)
        self.query_one("#html", TextArea).load_text(draft.html)
        self.query_one("#text", TextArea).load_text(draft.text or "")

    # -- the draft ----------------------------------------------------------------------------------

    def draft(self) -> TemplateDraft:
        text = self.query_one("#text", TextArea).text
        return TemplateDraft(
            name=self.query_one("#name", Input).value.strip(),
            subject=self.query_one("#subject", TextArea).text,
            html=self.query_one("#html", TextArea).text,
            text=text if text.strip() else None,
            category=self.query_one("#category", Input).value.strip(),
            stage=self.query_one("#stage", Input).value.strip() or None,
        )

    def dirty(self) -> bool:
        return self.opened and self.draft() != self.saved

    def unsaved_changes(self) -> str:
        return f"template {self.original_name or self.draft().name or '(new)'}" if self.dirty() else ""

    def on_unmount(self) -> None:
        self.nurture.open_editors.discard(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("save", "test_send"):
            return self.write_state()
        if action == "versions":
            return True if self.original_name is not None else None
        return True

    # -- live check and preview (debounced, generation-tagged) --------------------------------------

    @on(TextArea.Changed)
    @on(Input.Changed, "#name, #category, #stage")
    def _edited(self) -> None:
        if self.opened:
            self._schedule_preview()

    def _schedule_preview(self) -> None:
        self.generation += 1
        self._previewer.request()

    def _start_preview(self) -> None:
        self._preview(self.generation, self.draft(), self.lead)

    @work(thread=True, exclusive=True, group="template_editor.preview", exit_on_error=False, description="Preview")
    def _preview(self, generation: int, draft: TemplateDraft, lead: LeadChoice | None) -> None:
        self.post_result(self.PreviewReady(generation, self.console.templates.preview_for(draft, lead)))

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        if message.generation != self.generation:
            return  # typed since: a newer preview is on its way
        self.shown_generation = message.generation
        self.query_one("#preview", DraftPreviewView).show(message.preview)
        self._show_problems(list(message.preview.problems))

    def _show_problems(self, problems: list[TemplateProblem]) -> None:
        self.problems = problems
        self.query_one("#problems", ProblemsPanel).show(problems)
        self._update_state()

    def _update_state(self) -> None:
        name = self.original_name or "new template"
        version = f" v{self.base_version}" if self.base_version else ""
        n = len(self.problems)
        check = Text(f"{n} problem{'s' if n != 1 else ''}", style="bold red") if n else Text("✓ no problems",
                                                                                          style="green")
        modified = Text(" · unsaved changes", style="yellow") if self.dirty() else Text(" · saved", style="dim")
        self.query_one("#state", Label).update(Text.assemble(f"{name}{version} · ", check, modified))

    def _set_state(self, text: str) -> None:
        self.query_one("#state", Label).update(text)

    # -- focus: where a merge field goes, which part label is lit ------------------------------------

    @on(events.DescendantFocus)
    def _focused(self, event: events.DescendantFocus) -> None:
        wid = event.widget.id
        if wid in PART_IDS:
            self.last_part = wid
        for part in PART_IDS:
            self.query_one(f"#{part}-label", Label).set_class(part == wid, "-active")

    @on(ProblemsPanel.ProblemChosen)
    def _go_to_problem(self, event: ProblemsPanel.ProblemChosen) -> None:
        p = event.problem
        target: Widget = self.query_one(f"#{p.part}")
        if isinstance(target, TextArea) and p.line:
            row = min(p.line - 1, target.document.line_count - 1)
            target.move_cursor((row, 0), center=True)
        target.focus()

    # -- actions ------------------------------------------------------------------------------------

    def action_save(self) -> None:
        self._save()

    @work(exclusive=True, group="template_editor.save", exit_on_error=False, description="Save template")
    async def _save(self) -> None:
        draft = self.draft()
        try:
            saved = await asyncio.to_thread(self.console.templates.save, draft, original=self.original_name,
                                            base_version=self.base_version)
        except TemplateProblems as exc:
            self.generation += 1  # a pending preview must not replace these with an older check
            self.shown_generation = self.generation
            self._show_problems(exc.problems)
            self.notify(f"not saved: {len(exc.problems)} problem{'s' if len(exc.problems) > 1 else ''} "
                        "(listed under the editor)", severity="error", timeout=6)
            return
        self.original_name, self.base_version, self.saved = saved.name, saved.version, draft
        self.query_one("#name", Input).disabled = True
        self._update_state()
        self.refresh_bindings()
        if saved.changed:
            self.notify(f"saved {saved.name} v{saved.version}")
            self.nurture.data_changed("templates")
        else:
            self.notify("nothing to save: no changes")

    def action_insert_field(self) -> None:
        self._insert_field()

    @work(exclusive=True, group="template_editor.field", exit_on_error=False, description="Merge field")
    async def _insert_field(self) -> None:
        snippet = await self.app.push_screen_wait(MergeFieldModal(self.fields))
        if not snippet:
            return
        area = self.query_one(f"#{self.last_part}", TextArea)
        area.replace(snippet, *area.selection)
        area.focus()

    def action_choose_lead(self) -> None:
        self.query_one("#lead", Input).focus()

    @on(Input.Submitted, "#lead")
    def _lead_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._choose_lead(event.value)

    @work(exclusive=True, group="template_editor.lead", exit_on_error=False, description="Preview lead")
    async def _choose_lead(self, ref: str) -> None:
        problem = self.query_one("#lead-problem", Label)
        if not ref.strip():
            self.lead = None
        else:
            try:
                self.lead = await asyncio.to_thread(self.console.templates.find_lead, ref)
            except NurtureError as exc:
                problem.update(Text(str(exc), style="red"))
                return
        problem.update("")
        self._schedule_preview()
        self.query_one(f"#{self.last_part}", TextArea).focus()

    def action_versions(self) -> None:
        self._versions()

    @work(exclusive=True, group="template_editor.versions", exit_on_error=False, description="Versions")
    async def _versions(self) -> None:
        name = self.original_name
        if name is None:
            return
        console = self.console.templates
        versions = await asyncio.to_thread(console.versions, name)
        number = await self.app.push_screen_wait(TemplateVersionsModal(name, versions, partial(console.diff, name)))
        if number is None:
            return
        draft = await asyncio.to_thread(console.version_source, name, number)
        self._fill(draft, parts_only=True)
        self.notify(f"v{number} loaded into the editor; ctrl+s saves it as a new version")

    def action_test_send(self) -> None:
        self._test_send()

    @work(exclusive=True, group="template_editor.test_send", exit_on_error=False, description="Test send")
    async def _test_send(self) -> None:
        draft = self.draft()
        who = self.lead.label if self.lead else "placeholder values"
        address = await self.app.push_screen_wait(PromptModal(
            f"Send a test of {draft.name or 'this draft'} (rendered for {who}) to:", "you@example.com",
            validate=addresses_problem, value=self.console.templates.seed_list()))
        if not address:
            return
        try:
            to = await asyncio.to_thread(self.console.templates.send_test, draft, address, self.lead)
        except TemplateProblems as exc:
            self._show_problems(exc.problems)
            self.notify("not sent: fix the problems first", severity="error")
            return
        self.notify(f"test sent to {to} (marked as a test; not counted)")

    def action_back(self) -> None:
        self._leave()

    @work(exclusive=True, group="template_editor.leave", exit_on_error=False, description="Leave the editor")
    async def _leave(self) -> None:
        if self.dirty():
            name = self.original_name or self.draft().name or "the new template"
            discard = await self.app.push_screen_wait(ConfirmModal(
                "Discard unsaved changes?", f"Your changes to {name} are not saved. ctrl+s saves them.",
                confirm_label="Discard", destructive=True))
            if not discard:
                return
        self.app.pop_screen()
