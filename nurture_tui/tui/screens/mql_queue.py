"""MQL triage: the open MQLs (a rep: their own; an operator: every queue, `m` their own), sorted by age,
score or grade, the age in red past the SLA, and beside it the hand-off summary of the entry under the cursor
with a score-history sparkline. Every decision goes through the console's MQL model (the scoring area's
service audits it and queues the push to Salesforce); `space` tags entries for a bulk action."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Label, Sparkline, Static

from ...console.mql import REJECT_REASONS, SORTS, HandoffPanel, MqlEntry, Scope, arrivals
from ..keymap import bind
from .base import LIST_LOAD, Column, ListScreen
from .dialogs.prompt import ChoiceModal, PromptModal
from .lead_detail import LeadDetailScreen

OTHER = "\x00other"  # the reason picker's "type a reason" choice
TAG = "●"


def age_cell(e: MqlEntry) -> Text:
    hours = e.age_hours
    text = f"{hours:.0f}h" if hours < 48 else f"{hours / 24:.0f}d"
    return Text(text, style="bold red" if e.overdue else "")


class MqlQueueScreen(ListScreen[MqlEntry]):
    CSS_PATH = "mql_queue.tcss"
    TITLE = "MQL queue"
    AREA = "mql"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    HELP = ("Open MQLs (a rep: their own; an operator: every queue, `m` only yours), oldest first (`s` sorts by "
            "score, grade, age); the age is red once past the SLA (`scoring.mql_sla_hours`). The panel shows "
            "the hand-off summary and the score history. `a` accepts, `x` rejects with a reason (the lead is "
            "recycled into nurture), `r` reassigns to a user or a queue, `z` snoozes, `o` shows and copies the "
            "Salesforce URL, `space` tags entries so `a` `x` `r` `z` act on all of them; `enter` opens the lead.")
    COLUMNS = (Column("tag", " ", 1), Column("age", "Age", 4), Column("lead", "Lead", 22),
               Column("score", "Score", 5), Column("grade", "Gr", 2), Column("rep", "Rep", 10),
               Column("queue", "Queue", 12), Column("company", "Company", 16))
    TABLE_ID = "queue"
    EMPTY = "The queue is empty."
    POLL_GROUP = LIST_LOAD
    POLL_SECONDS = 2.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("a", "accept", "Accept", "mql.accept"),
        bind("x", "reject", "Reject", "mql.reject"),
        bind("r", "reassign", "Reassign", "mql.reassign"),
        bind("z", "snooze", "Snooze", "mql.snooze"),
        bind("space", "tag", "Tag", "mql.tag"),
        bind("c", "clear_tags", "Clear tags", "mql.clear_tags", show=False),
        bind("o", "salesforce", "SF URL", "mql.salesforce"),
        bind("s", "sort", "Sort", "mql.sort"),
        bind("m", "scope", "Mine/all", "mql.scope"),
        bind("enter", "open", "Open lead", "mql.open"),
    ]

    @dataclass
    class PanelLoaded(Message, bubble=False):
        panel: HandoffPanel

    def __init__(self) -> None:
        super().__init__()
        self.tagged: set[int] = set()
        self.sort = SORTS[0]
        self.scope: Scope | None = None
        self.panel: HandoffPanel | None = None
        self._seen: set[int] | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="triage"):
            with Vertical(id="queue-pane"):
                yield from self.compose_list()
                yield Label("", id="status")
            with Vertical(id="handoff"):
                yield Static("", id="why")
                yield Label("", id="spark-label")
                yield Sparkline([], id="spark")
                with VerticalScroll(id="summary-scroll"):
                    yield Static("", id="summary")

    def on_mount(self) -> None:
        if self.scope is None:
            self.scope = self.console.mql.default_scope

    @property
    def entries(self) -> dict[str, MqlEntry]:
        """The MQLs shown (after the filter), by id."""
        return self.shown

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("accept", "reject", "reassign", "snooze"):
            return self.write_state()
        if action == "scope":
            return True if self.console.mql.may_see_all else None
        return True

    def fetch(self) -> list[MqlEntry]:
        return self.console.mql.queue(500, scope=self.scope, sort=self.sort)

    def row_key(self, row: MqlEntry) -> str:
        return str(row.id)

    def cells(self, e: MqlEntry) -> tuple[RenderableType, ...]:
        tag = Text(TAG, style="bold yellow") if e.id in self.tagged else ""
        return (tag, age_cell(e), e.name or e.email, f"{e.score:.0f}", e.grade or "", e.rep or "", e.queue or "",
                e.company or "")

    def search_text(self, e: MqlEntry) -> tuple[object, ...]:
        return (e.name, e.email, e.company, e.rep, e.queue, e.grade, e.summary)

    def refresh_rows(self) -> None:
        super().refresh_rows()
        ids = {e.id for e in self.rows}
        for e in arrivals(self._seen, self.rows, self.session.operator.username):
            self.notify(f"new MQL for you: {e.name} ({e.company or e.email}), score {e.score:.0f}",
                        title="MQL arrived")
        self._seen = ids
        self.tagged &= ids
        scope = "my queue" if self.scope == "mine" or not self.console.mql.may_see_all else "all queues"
        overdue = sum(1 for e in self.rows if e.overdue)
        parts = [f"{len(self.rows)} open · {scope} · by {self.sort}",
                 f"{overdue} past the {self.console.mql.sla_hours:g} h SLA" if overdue else "",
                 f"{len(self.tagged)} tagged" if self.tagged else ""]
        self.query_one("#status", Label).update(" · ".join(p for p in parts if p))

    # -- the side panel -----------------------------------------------------------------------------

    def rows_shown(self) -> None:
        e = self.current()
        if e is None:
            self.panel = None
            self._show_panel(None)
            return
        self._show_why(e)
        if self.panel is None or self.panel.mql_id != e.id:
            self.run_worker(lambda: self.post_result(self.PanelLoaded(self.console.mql.panel(e.id))), thread=True,
                            exclusive=True, group="mql.panel", exit_on_error=False, description="hand-off summary")

    def _show_why(self, e: MqlEntry) -> None:
        why = e.why or {}
        sla = Text(" past the SLA", style="bold red") if e.overdue else Text("")
        self.query_one("#why", Static).update(Text.assemble(
            (f"{e.name} <{e.email}>", "bold"), "\n", ("age ", "dim"), age_cell(e), sla,
            ("  score ", "dim"), f"{e.score:.0f}", ("  grade ", "dim"), e.grade or "—",
            "\n", ("why: ", "dim"), str(why.get("rule") or "—"),
            ("  assigned: ", "dim"), str(why.get("assigned") or "—")))

    @on(PanelLoaded)
    def _panel_loaded(self, message: PanelLoaded) -> None:
        current = self.current()
        if current is not None and current.id == message.panel.mql_id:
            self.panel = message.panel
            self._show_panel(message.panel)

    def _show_panel(self, panel: HandoffPanel | None) -> None:
        curve = panel.curve if panel else []
        spark = self.query_one("#spark", Sparkline)
        spark.data = curve if len(curve) > 1 else []
        spark.display = len(curve) > 1
        self.query_one("#spark-label", Label).update(
            f"score history: {curve[0]:.0f} → {curve[-1]:.0f} over {len(curve) - 1} changes" if len(curve) > 1
            else "score history: no changes recorded" if panel else "")
        self.query_one("#summary", Static).update(panel.summary if panel else "")
        if panel is None:
            self.query_one("#why", Static).update("")

    # -- keys -----------------------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        e = self.current()
        if e is not None:
            self.app.push_screen(LeadDetailScreen(e.lead_id))

    def action_tag(self) -> None:
        e = self.current()
        if e is None:
            return
        self.tagged ^= {e.id}
        self.table.update_cell(str(e.id), "tag", self.cells(e)[0])
        self.refresh_rows()
        table = self.table
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)

    def action_clear_tags(self) -> None:
        self.tagged.clear()
        self.refresh_rows()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.notify(f"sorted by {self.sort}")
        self.load()

    def action_scope(self) -> None:
        self.scope = "all" if self.scope == "mine" else "mine"
        self._seen = None
        self.notify("all queues" if self.scope == "all" else "my queue")
        self.load()

    def action_salesforce(self) -> None:
        e, panel = self.current(), self.panel
        if e is None or panel is None or panel.mql_id != e.id:
            return
        url = self.console.leads.salesforce_url(panel.sf_id) if panel.sf_id else None
        if url is None:
            why = "not linked to Salesforce yet" if not panel.sf_id else "no Salesforce instance configured"
            self.notify(f"{e.email}: {why}", severity="warning")
            return
        self.app.copy_to_clipboard(url)
        self.notify(url, title="Salesforce URL copied")

    def _targets(self) -> list[MqlEntry]:
        """The tagged entries, or the one under the cursor."""
        if self.tagged:
            return [e for e in self.rows if e.id in self.tagged]
        e = self.current()
        return [e] if e is not None else []

    def _who(self, targets: Sequence[MqlEntry]) -> str:
        return targets[0].email if len(targets) == 1 else f"{len(targets)} MQLs"

    def action_accept(self) -> None:
        self._decide("accept")

    def action_reject(self) -> None:
        self._decide("reject")

    def action_reassign(self) -> None:
        self._decide("reassign")

    def action_snooze(self) -> None:
        self._decide("snooze")

    @work(exclusive=True, group="mql.decide", exit_on_error=False, description="MQL decision")
    async def _decide(self, what: str) -> None:
        targets = self._targets()
        if not targets:
            return
        ids, who, mql = [e.id for e in targets], self._who(targets), self.console.mql
        if what == "accept":
            await asyncio.to_thread(mql.accept_many, ids)
            self.notify(f"accepted {who}")
        elif what == "reject":
            reason = await self._reason(who)
            if not reason:
                return
            await asyncio.to_thread(mql.reject_many, ids, reason)
            self.notify(f"rejected {who} ({reason}): recycled into nurture")
        elif what == "reassign":
            target = await self.app.push_screen_wait(ChoiceModal(
                f"Reassign {who} to", await asyncio.to_thread(mql.reassign_targets)))
            if not target:
                return
            await asyncio.to_thread(mql.reassign_many, ids, target)
            self.notify(f"reassigned {who} to {target.partition(':')[2]}")
        else:
            until = await self.app.push_screen_wait(ChoiceModal(f"Snooze {who} until", mql.snooze_choices()))
            if not until:
                return
            await asyncio.to_thread(mql.snooze_many, ids, datetime.fromisoformat(until))
            self.notify(f"snoozed {who} until {datetime.fromisoformat(until):%a %d %b %H:%M} UTC")
        self.tagged -= set(ids)
        self.nurture.data_changed("mql")
        self.load()

    async def _reason(self, who: str) -> str | None:
        picked = await self.app.push_screen_wait(ChoiceModal(
            f"Reject {who}: why?", [*((r, r) for r in REJECT_REASONS), (OTHER, "other: type a reason…")]))
        if picked != OTHER:
            return picked
        return await self.app.push_screen_wait(PromptModal(f"Reject {who}: why?", "the reason, in a few words"))
