"""MQL queue: new MQLs (a rep sees their own), why each qualified, accept / reject-with-reason by
keyboard through the console's MQL model (the scoring area's service audits and hands off to Salesforce)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from ...console.mql import MqlEntry
from ..keymap import bind
from .base import LIST_LOAD, Column, ListScreen
from .dialogs.prompt import PromptModal
from .lead_detail import LeadDetailScreen


def _why(e: MqlEntry) -> str:
    parts = [e.summary] if e.summary else []
    why = e.why or {}
    if why.get("rule"):
        parts.append(f"rule: {why['rule']}")
    if "score" in why:
        parts.append(f"score at qualification {float(why['score']):.0f}, grade {why.get('grade') or '—'}")
    if why.get("assigned"):
        parts.append(f"assigned: {why['assigned']}")
    return "\n".join(parts) or "—"


class MqlQueueScreen(ListScreen[MqlEntry]):
    CSS_PATH = "mql_queue.tcss"
    TITLE = "MQL queue"
    AREA = "mql"
    HELP = ("New marketing-qualified leads, oldest first; the panel shows why each qualified. `a` accepts, "
            "`x` rejects with a reason (the lead is recycled into nurture), `enter` opens the lead.")
    COLUMNS = (Column("age", "Age", 6), Column("lead", "Lead", 30), Column("company", "Company", 20),
               Column("score", "Score", 6), Column("grade", "Gr", 3), Column("rep", "Rep", 14),
               Column("queue", "Queue", 12))
    TABLE_ID = "queue"
    EMPTY = "The queue is empty."
    POLL_GROUP = LIST_LOAD
    POLL_SECONDS = 2.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("a", "accept", "Accept", "mql.accept"),
        bind("x", "reject", "Reject", "mql.reject"),
        bind("enter", "open", "Open lead", "mql.open"),
    ]

    def compose_body(self) -> ComposeResult:
        yield from self.compose_list()
        yield Static("", id="why")

    @property
    def entries(self) -> dict[str, MqlEntry]:
        """The MQLs shown (after the filter), by id."""
        return self.shown

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("accept", "reject"):
            return self.write_state()
        return True

    def fetch(self) -> list[MqlEntry]:
        return self.console.mql.queue(500)

    def row_key(self, row: MqlEntry) -> str:
        return str(row.id)

    def cells(self, e: MqlEntry) -> tuple[RenderableType, ...]:
        age = Text(f"{e.age_hours:.0f}h", style="bold red" if e.overdue else "")
        return (age, e.name or e.email, e.company or "", f"{e.score:.0f}", e.grade or "", e.rep or "", e.queue or "")

    def search_text(self, e: MqlEntry) -> tuple[object, ...]:
        return (e.name, e.email, e.company, e.rep, e.queue, e.grade, e.summary)

    def rows_shown(self) -> None:
        e = self.current()
        why = self.query_one("#why", Static)
        if e is None:
            why.update("")
            return
        why.update(Text.assemble((f"{e.name} <{e.email}>\n", "bold"), ("Why: ", "dim"), _why(e)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        e = self.current()
        if e is not None:
            self.app.push_screen(LeadDetailScreen(e.lead_id))

    def action_accept(self) -> None:
        self._decide(accept=True)

    def action_reject(self) -> None:
        self._decide(accept=False)

    @work(exclusive=True, group="mql.decide", exit_on_error=False, description="MQL decision")
    async def _decide(self, accept: bool) -> None:
        e = self.current()
        if e is None:
            return
        mql = self.console.mql
        if accept:
            await asyncio.to_thread(mql.accept, e.id)
            self.notify(f"accepted {e.email}")
        else:
            reason = await self.app.push_screen_wait(PromptModal(
                f"Reject {e.email}: why?", "reason (e.g. no budget, student, competitor)"))
            if not reason:
                return
            status = await asyncio.to_thread(mql.reject, e.id, reason)
            self.notify(f"{status} {e.email}: {reason}")
        self.nurture.data_changed("mql")
        self.load()
