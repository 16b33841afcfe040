"""MQL queue: new MQLs (a rep sees their own), why each qualified, accept / reject-with-reason by
keyboard through the scoring area's MQL service (which audits and hands off to Salesforce)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from ...store.engine import write_tx
from ..keymap import bind
from ..messages import DataChanged
from .base import FilterableScreen, NotLanded, feature_available
from .dialogs.prompt import PromptModal

COLUMNS = (("age", "Age", 6), ("lead", "Lead", 30), ("company", "Company", 20), ("score", "Score", 6),
           ("grade", "Gr", 3), ("rep", "Rep", 14), ("queue", "Queue", 12))


def _why(e: Any) -> str:
    parts = [e.summary] if getattr(e, "summary", "") else []
    why = e.why or {}
    if why.get("rule"):
        parts.append(f"rule: {why['rule']}")
    if "score" in why:
        parts.append(f"score at qualification {float(why['score']):.0f}, grade {why.get('grade') or '—'}")
    if why.get("assigned"):
        parts.append(f"assigned: {why['assigned']}")
    return "\n".join(parts) or "—"


class MqlQueueScreen(FilterableScreen):
    CSS_PATH = "mql_queue.tcss"
    TITLE = "MQL queue"
    AREA = "mql"
    HELP = ("New marketing-qualified leads, oldest first; the panel shows why each qualified. `a` accepts, "
            "`x` rejects with a reason (the lead is recycled into nurture), `enter` opens the lead.")
    POLL_GROUP = "mql.load"
    POLL_SECONDS = 2.0
    RESULTS: ClassVar[dict[str, str]] = {"mql.load": "show"}
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("a", "accept", "Accept", "mql.accept"),
        bind("x", "reject", "Reject", "mql.reject"),
        bind("enter", "open", "Open lead", "mql.open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.available = feature_available("nurture_tui.scoring.mql")
        self.entries: dict[str, Any] = {}
        self.last_entries: list[Any] = []

    def compose_body(self) -> ComposeResult:
        if not self.available:
            yield NotLanded("The MQL queue", "It arrives with the scoring area (nurture_tui.scoring.mql).")
            return
        yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
        yield Static("", id="why")

    def on_mount(self) -> None:
        if not self.available:
            return
        table = self.query_one("#queue", DataTable)
        for key, title, width in COLUMNS:
            table.add_column(title, key=key, width=width)
        table.focus()
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("accept", "reject"):
            return self.write_state() if self.available else False
        return True

    def load(self) -> None:
        if self.available:
            self._load()

    @work(thread=True, exclusive=True, group="mql.load", exit_on_error=False, description="MQL queue")
    def _load(self) -> list[Any]:
        from ...scoring.mql import list_queue

        ctx = self.ctx
        rep = ctx.operator.username if ctx.operator.is_rep else None
        with ctx.read() as conn:
            return list_queue(conn, ctx.now(), ctx.ws.settings, rep=rep, limit=500)

    def show(self, entries: list[Any]) -> None:
        self.last_entries = entries
        table = self.query_one("#queue", DataTable)
        wanted = {str(e.id): e for e in entries
                  if self.keep(e.name, e.email, e.company, e.rep, e.queue, e.grade, e.summary)}
        self.entries = wanted
        with self.app.batch_update():
            for gone in [k for k in table.rows if k.value not in wanted]:
                table.remove_row(gone)
            for key, e in wanted.items():
                age = Text(f"{e.age_hours:.0f}h", style="bold red" if e.overdue else "")
                values = (age, e.name or e.email, e.company or "", f"{e.score:.0f}", e.grade or "", e.rep or "",
                          e.queue or "")
                if key not in table.rows:
                    table.add_row(*values, key=key)
                else:
                    for (col, _t, _w), v in zip(COLUMNS, values, strict=True):
                        if str(table.get_cell(key, col)) != str(v):
                            table.update_cell(key, col, v)
        self._show_why()

    def refilter(self) -> None:
        if self.available:
            self.show(self.last_entries)

    def current(self) -> Any:
        table = self.query_one("#queue", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.entries.get(key or "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_why()

    def _show_why(self) -> None:
        e = self.current()
        why = self.query_one("#why", Static)
        if e is None:
            why.update("The queue is empty." if not self.entries else "")
            return
        why.update(Text.assemble((f"{e.name} <{e.email}>\n", "bold"), ("Why: ", "dim"), _why(e)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        e = self.current()
        if e is not None:
            from .lead_detail import LeadDetailScreen

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
        user = self.ctx.operator.username
        if accept:
            await asyncio.to_thread(self._run, "accept", e.id, user, None)
            self.notify(f"accepted {e.email}")
        else:
            reason = await self.app.push_screen_wait(PromptModal(
                f"Reject {e.email}: why?", "reason (e.g. no budget, student, competitor)"))
            if not reason:
                return
            status = await asyncio.to_thread(self._run, "reject", e.id, user, reason)
            self.notify(f"{status} {e.email}: {reason}")
        self.post_message(DataChanged("mql"))
        self.load()

    def _run(self, what: str, mql_id: int, user: str, reason: str | None) -> Any:
        from ...scoring import mql

        ws = self.ctx.ws
        with write_tx(ws.engine) as conn:
            if what == "accept":
                return mql.accept(conn, mql_id, user, ws.clock.now(), ws.settings)
            return mql.reject(conn, mql_id, reason or "", user, ws.clock.now(), ws.settings)
