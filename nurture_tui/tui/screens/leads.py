"""Leads: the virtual list over every lead, `/` filter (text or segment quick syntax), tagging and bulk
actions through one confirm modal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import Input, Label

from ...console.leads import LeadQuery
from ...leads.bulk import BulkResult
from ..keymap import bind
from ..widgets.leads.lead_list import LeadList
from .base import NurtureScreen
from .dialogs.confirm import ConfirmModal
from .dialogs.prompt import ChoiceModal, PromptModal

SCOPE_PREVIEW = 5


class LeadsScreen(NurtureScreen):
    CSS_PATH = "leads.tcss"
    TITLE = "Leads"
    AREA = "leads"
    HELP = """\
Every lead in the workspace, paged from the database as you scroll (it opens instantly over millions).

* `/` filters in the segment quick syntax: plain words search email, name and company; terms such as
  `stage:decision score>=50 country=DE #vip opened<14d seg:"EMEA"` narrow it. `enter` keeps the filter,
  `esc` clears it.
* `space` tags a lead; `e`, `u` and `a` act on the tagged leads (or the lead under the cursor) after one
  confirmation that states the scope. Every change is audited with your user name.
* `<` / `>` change the sort column, `i` inverts it.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("slash", "filter", "Filter", "leads.filter", key_display="/"),
        bind("escape", "clear_filter", "Clear filter", "leads.clear_filter", show=False),
        bind("e", "enroll", "Enrol", "leads.enroll"),
        bind("u", "unsubscribe", "Unsubscribe", "leads.unsubscribe"),
        bind("a", "adjust_score", "Adjust score", "leads.adjust_score"),
        bind("c", "clear_tags", "Clear tags", "leads.clear_tags", show=False),
    ]

    def __init__(self, query_text: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_text = query_text
        self.drill_down = bool(query_text)  # opened from another screen (Segments): esc goes back

    def compose_body(self) -> ComposeResult:
        yield Input(self.query_text, placeholder="filter: words, or a rule like stage:decision score>=50",
                    id="filter", classes="" if self.query_text else "hidden")
        leads = self.console.leads
        yield LeadList(leads, leads.base_query(), id="leads")
        yield Label("", id="status")

    @property
    def lead_list(self) -> LeadList:
        return self.query_one(LeadList)

    def on_mount(self) -> None:
        self.lead_list.focus()
        if self.query_text or self.session.owner_scope is not None:
            self.apply_filter(self.query_text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("enroll", "unsubscribe", "adjust_score"):
            return self.write_state()
        return True

    # -- filter ------------------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if self.drill_down or (not box.value and len(self.app.screen_stack) > 1):  # opened from another screen
            self.app.pop_screen()
            return
        box.value = ""
        box.add_class("hidden")
        self.apply_filter("")
        self.lead_list.focus()

    @on(Input.Submitted, "#filter")
    def _submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        if not event.value.strip():
            event.input.add_class("hidden")
        self.lead_list.focus()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            self.action_clear_filter()

    @work(thread=True, exclusive=True, group="leads.filter", exit_on_error=False, description="Filter")
    def apply_filter(self, text: str) -> None:
        spec = self.lead_list.query_spec
        self.post_result(self.FilterReady(self.console.leads.filtered(text, sort=spec.sort,
                                                                      descending=spec.descending)))

    @dataclass
    class FilterReady(Message, bubble=False):
        query: LeadQuery

    @on(FilterReady)
    def _filter_ready(self, event: FilterReady) -> None:
        self.lead_list.set_query(event.query)

    # -- status ------------------------------------------------------------------------------------

    def on_lead_list_changed(self, event: LeadList.Changed) -> None:
        lst = self.lead_list
        total = "counting…" if event.total is None else f"{event.total:,} leads"
        parts = [f"{event.cursor + 1:,} / {total}" if event.total else total]
        if lst.query_spec.label:
            parts.append(lst.query_spec.label)
        parts.append(f"sort {lst.query_spec.sort} {'↓' if lst.query_spec.descending else '↑'}")
        if event.tagged:
            parts.append(f"{event.tagged} tagged")
        self.query_one("#status", Label).update("  ·  ".join(parts))

    def on_lead_list_opened(self, event: LeadList.Opened) -> None:
        from .lead_detail import LeadDetailScreen

        self.app.push_screen(LeadDetailScreen(event.lead_id))

    def action_clear_tags(self) -> None:
        self.lead_list.clear_tags()

    def data_changed(self, what: str) -> None:
        self.lead_list.reload(keep_cursor=True)

    def action_reload(self) -> None:
        self.lead_list.reload(keep_cursor=True)

    # -- bulk actions ------------------------------------------------------------------------------

    def selection(self) -> dict[int, str]:
        """Tagged leads, or the lead under the cursor when nothing is tagged."""
        lst = self.lead_list
        if lst.tagged:
            return dict(lst.tagged)
        row = lst.current()
        return {row.id: row.email} if row else {}

    @staticmethod
    def scope_text(selection: dict[int, str]) -> str:
        emails = list(selection.values())
        shown = ", ".join(emails[:SCOPE_PREVIEW])
        more = f" and {len(emails) - SCOPE_PREVIEW} more" if len(emails) > SCOPE_PREVIEW else ""
        noun = "lead" if len(emails) == 1 else "leads"
        return f"{len(emails)} {noun}: {shown}{more}"

    def _done(self, result: BulkResult) -> None:
        self.notify(result.summary(), title="Done")
        self.nurture.data_changed("leads")
        self.lead_list.clear_tags()
        self.lead_list.reload(keep_cursor=True)

    def action_enroll(self) -> None:
        self._enroll()

    @work(exclusive=True, group="leads.bulk", exit_on_error=False, description="Enrol leads")
    async def _enroll(self) -> None:
        selection = self.selection()
        if not selection:
            return
        leads = self.console.leads
        names = await asyncio.to_thread(leads.enrollable_sequences)
        if not names:
            self.notify("no published sequence to enrol in", severity="warning")
            return
        name = await self.app.push_screen_wait(ChoiceModal("Enrol in which sequence?", names))
        if not name:
            return
        ok = await self.app.push_screen_wait(ConfirmModal(
            f"Enrol in “{name}”?",
            f"{self.scope_text(selection)}\n\nLeads already in it (or suppressed) are skipped by the sequence's "
            f"re-entry rules. Audited as {self.session.operator.username}.", confirm_label="Enrol"))
        if ok:
            self._done(await asyncio.to_thread(leads.enroll, list(selection), name))

    def action_unsubscribe(self) -> None:
        self._unsubscribe()

    @work(exclusive=True, group="leads.bulk", exit_on_error=False, description="Unsubscribe leads")
    async def _unsubscribe(self) -> None:
        selection = self.selection()
        if not selection:
            return
        ok = await self.app.push_screen_wait(ConfirmModal(
            "Unsubscribe from all marketing mail?",
            f"{self.scope_text(selection)}\n\nThey stop receiving marketing email at once and leave sequences "
            f"whose exit rules watch unsubscribes. Audited as {self.session.operator.username}.",
            confirm_label="Unsubscribe", destructive=True))
        if ok:
            self._done(await asyncio.to_thread(self.console.leads.unsubscribe, list(selection)))

    def action_adjust_score(self) -> None:
        self._adjust()

    @work(exclusive=True, group="leads.bulk", exit_on_error=False, description="Adjust score")
    async def _adjust(self) -> None:
        selection = self.selection()
        if not selection:
            return

        leads = self.console.leads

        def check_points(text: str) -> str | None:
            try:
                leads.parse_points(text)
            except Exception as exc:
                return str(exc)
            return None

        points_text = await self.app.push_screen_wait(
            PromptModal("Adjust score by how many points? (e.g. 10 or -5)", "points", validate=check_points))
        if points_text is None:
            return
        reason = await self.app.push_screen_wait(PromptModal("Reason (kept in the score history)", "reason"))
        if reason is None:
            return
        points = leads.parse_points(points_text)
        ok = await self.app.push_screen_wait(ConfirmModal(
            f"Adjust score by {points:+g}?",
            f"{self.scope_text(selection)}\n\nReason: {reason}\nMQL qualification is re-checked. "
            f"Audited as {self.session.operator.username}.", confirm_label="Adjust"))
        if ok:
            self._done(await asyncio.to_thread(leads.adjust_score, list(selection), points, reason))
