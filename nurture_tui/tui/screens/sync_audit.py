"""Sync & audit: Salesforce sync health (last pull and push per object, pending pushes, the org's API usage
against its daily limit), the open sync errors with Salesforce's message and a retry (`t`, audited), and
the audit log of every change, newest first, filtered by user, entity and date (`/`); `n` pages back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from ...console.sync import ApiUsage, AuditFilter, AuditRow, SyncErrorRow, SyncOverview
from ..keymap import bind
from ..widgets.charts.draw import bar
from ..widgets.common.keyed_table import KeyedTable
from .base import NurtureScreen

PAGE = 200
GAUGE = 12  # cells of the API usage gauge


def _when(dt: Any) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "—"


def _short(dt: Any) -> str:
    return dt.strftime("%m-%d %H:%M") if dt else "never"


def _record(error: SyncErrorRow) -> str:
    """The Salesforce id, else the local lead a push was for, else `—` (a whole-sync failure)."""
    return error.record_id or (f"lead {error.lead_id}" if error.lead_id is not None else "—")


def api_line(api: ApiUsage | None) -> Text:
    """`API 1,234/15,000 today (8 %) █▌·········· push budget 12,000 · 03-02 08:58` (or why there is none)."""
    if api is None:
        return Text("API usage: not known yet (read at the start of each sync)", style="dim")
    style = "red" if api.used >= api.allowed else ("yellow" if api.share >= 0.5 else "green")
    gauge = bar(api.used, api.limit, GAUGE)
    return Text.assemble(f"API {api.used:,}/{api.limit:,} today ({100 * api.share:.0f} %) ",
                         (gauge, style), ("·" * (GAUGE - len(gauge)), "dim"),
                         f" push budget {api.allowed:,}", (f" · {_short(api.at)}", "dim"))


class SyncAuditScreen(NurtureScreen):
    CSS_PATH = "sync_audit.tcss"
    TITLE = "Sync & audit"
    AREA = "sync"
    HELP = ("Salesforce sync state per object (last pull watermark, last accepted push, pending pushes, open "
            "errors), the org's API usage against its daily limit, and the open sync errors with Salesforce's "
            "message: `t` retries the highlighted one (a push is queued again for the next sync; audited). "
            "Below, the audit log of every change with who made it: `/` filters by user, entity and date, `c` "
            "clears the filter, `n` loads older entries, `tab` moves between the tables, `R` refreshes.")
    POLL_GROUP = "sync.load"
    POLL_SECONDS = 3.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("t", "retry", "Retry error", "sync.retry"),
        bind("slash", "filter_audit", "Filter audit", "sync.audit_filter", key_display="/"),
        bind("c", "clear_audit_filter", "Clear filter", "sync.audit_clear", show=False),
        bind("n", "older", "Older audit", "sync.older"),
        bind("tab", "app.focus_next", "Switch pane", "sync.switch_pane", show=False),
    ]

    @dataclass
    class Loaded(Message, bubble=False):
        overview: SyncOverview
        audit: list[AuditRow]
        where: AuditFilter

    @dataclass
    class OlderLoaded(Message, bubble=False):
        audit: list[AuditRow]

    def __init__(self) -> None:
        super().__init__()
        self.oldest_id: int | None = None
        self.newest_id: int | None = None
        self.where = AuditFilter()
        self._audit_for: AuditFilter | None = None  # the filter the audit table shows
        self.errors: dict[str, SyncErrorRow] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="health")
        yield KeyedTable(id="objects", cursor_type="row")
        yield Label("Open sync errors", id="errors-title", classes="section-title")
        yield KeyedTable(id="errors", cursor_type="row")
        yield Static("", id="error-detail")
        yield Label("Audit log", id="audit-title", classes="section-title")
        yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        objects = self.query_one("#objects", DataTable)
        for title, width in (("Object", 10), ("Last pull", 16), ("Last push", 16), ("Pending", 7),
                             ("Errors", 6), ("State", 7)):
            objects.add_column(title, width=width)
        errors = self.query_one("#errors", DataTable)
        for title, width in (("When", 16), ("Object", 8), ("Dir", 4), ("Record", 18), ("Salesforce says", 80)):
            errors.add_column(title, width=width)
        audit = self.query_one("#audit", DataTable)
        for key, title, width in (("at", "When", 16), ("user", "User", 10), ("action", "Action", 20),
                                  ("entity", "Entity", 10), ("id", "Id", 12)):
            audit.add_column(title, key=key, width=width)
        audit.focus()
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.write_state()
        return True

    # -- loading ----------------------------------------------------------------------------------------

    def load(self) -> None:
        self._load(self.where)

    @work(thread=True, exclusive=True, group="sync.load", exit_on_error=False, description="Sync & audit")
    def _load(self, where: AuditFilter) -> None:
        sync = self.console.sync
        self.post_result(self.Loaded(sync.overview(), sync.audit(limit=PAGE, where=where), where))

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        ov = message.overview
        h = ov.health
        outbox = ", ".join(f"{n:,} {s}" for s, n in sorted(ov.outbox.items())) or "empty"
        self.query_one("#health", Static).update(Text.assemble(
            ("Salesforce ", "bold"), f"{h.label} · last run {_short(h.last_run_at)} · outbox {outbox}\n",
            api_line(ov.api)))
        self.query_one("#objects", KeyedTable).apply(
            {o.sobject: (o.sobject, _when(o.last_pull), _when(o.last_push), f"{o.pending:,}", f"{o.errors:,}",
                         o.status) for o in ov.objects})
        self.errors = {str(e.id): e for e in ov.errors}
        self.query_one("#errors", KeyedTable).apply(
            {key: (_when(e.at), e.sobject, e.direction, _record(e),
                   ("⟳ " if e.queued else "") + f"{e.code}: {e.message}") for key, e in self.errors.items()})
        self.query_one("#errors-title", Label).update(
            f"Open sync errors ({len(ov.errors):,})" + (" — t retries the highlighted one" if ov.errors else ""))
        self._show_error_detail()
        self._show_audit(message.audit, message.where)

    def _show_audit(self, rows: list[AuditRow], where: AuditFilter) -> None:
        table = self.query_one("#audit", DataTable)
        if where != self._audit_for:
            table.clear()
            self.newest_id = self.oldest_id = None
            self._audit_for = where
            self.query_one("#audit-title", Label).update(
                f"Audit log — {where.describe()}" + (" (c clears)" if where.active else " (/ filters)"))
        self._merge_new_audit(rows)

    def _merge_new_audit(self, rows: list[AuditRow]) -> None:
        """Add entries newer than what is shown at the top (keyed by id; the cursor stays put)."""
        table = self.query_one("#audit", DataTable)
        fresh = [r for r in rows if self.newest_id is None or r.id > self.newest_id]
        if not fresh:
            return
        first_fill = self.newest_id is None
        self.newest_id = max(r.id for r in fresh)
        for r in reversed(fresh) if not first_fill else fresh:
            table.add_row(_when(r.at), r.user, r.action, r.entity, r.entity_id, key=str(r.id))
        if first_fill:
            self.oldest_id = min(r.id for r in fresh)
        else:
            table.sort("at", reverse=True)

    @on(DataTable.RowHighlighted, "#errors")
    def _show_error_detail(self) -> None:
        table = self.query_one("#errors", KeyedTable)
        error = self.errors.get(table.cursor_key() or "")
        detail = self.query_one("#error-detail", Static)
        if error is None:
            detail.update("")
            return
        state = "queued again for the next sync" if error.queued else f"{error.attempts} attempt(s)"
        detail.update(Text(f"{error.code}: {error.message} ({state})"))

    # -- retry ------------------------------------------------------------------------------------------

    @work(exclusive=True, group="sync.retry", exit_on_error=False, description="Retry sync error")
    async def action_retry(self) -> None:
        key = self.query_one("#errors", KeyedTable).cursor_key()
        if key is None or key not in self.errors:
            self.notify("no sync error to retry")
            return
        error = self.errors[key]
        outcome = await asyncio.to_thread(self.console.sync.retry, error.id)
        self.notify(f"{error.sobject} {_record(error)}: {outcome}", title="Retry")
        self.nurture.data_changed("sync")
        self.load()

    # -- the audit log ----------------------------------------------------------------------------------

    @work(exclusive=True, group="sync.dialog", exit_on_error=False, description="Audit filter")
    async def action_filter_audit(self) -> None:
        from .dialogs.audit_filter import AuditFilterModal

        users, entities = await asyncio.to_thread(self.console.sync.audit_choices)
        where = await self.app.push_screen_wait(AuditFilterModal(self.where, users, entities))
        if where is not None:
            self.where = where
            self.load()

    def action_clear_audit_filter(self) -> None:
        self.where = AuditFilter()
        self.load()

    def action_older(self) -> None:
        if self.oldest_id is not None:
            self._older(self.oldest_id, self.where)

    @work(thread=True, exclusive=True, group="sync.older", exit_on_error=False, description="Audit log")
    def _older(self, before_id: int, where: AuditFilter) -> None:
        self.post_result(self.OlderLoaded(self.console.sync.audit(limit=PAGE, before_id=before_id, where=where)))

    @on(OlderLoaded)
    def append_audit(self, message: OlderLoaded) -> None:
        rows = message.audit
        if not rows:
            self.notify("no older audit entries")
            return
        table = self.query_one("#audit", DataTable)
        for r in rows:
            if str(r.id) not in table.rows:
                table.add_row(_when(r.at), r.user, r.action, r.entity, r.entity_id, key=str(r.id))
        self.oldest_id = min(r.id for r in rows)
