"""Sync & audit: Salesforce sync health (watermarks per object, push outbox, open errors) and the audit
log of every change, newest first (`n` pages to older entries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from ...console.sync import AuditRow, SyncOverview
from ..keymap import bind
from ..widgets.common.keyed_table import KeyedTable
from .base import NurtureScreen

PAGE = 200


def _when(dt: Any) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "—"


class SyncAuditScreen(NurtureScreen):
    CSS_PATH = "sync_audit.tcss"
    TITLE = "Sync & audit"
    AREA = "sync"
    HELP = ("Salesforce sync state per object, pending pushes and open errors; below, the audit log of every "
            "change with who made it. `n` loads older audit entries, `R` refreshes.")
    POLL_GROUP = "sync.load"
    POLL_SECONDS = 3.0
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("n", "older", "Older audit", "sync.older"),
        bind("tab", "app.focus_next", "Switch pane", "sync.switch_pane", show=False),
    ]

    @dataclass
    class Loaded(Message, bubble=False):
        overview: SyncOverview
        audit: list[AuditRow]

    @dataclass
    class OlderLoaded(Message, bubble=False):
        audit: list[AuditRow]

    def __init__(self) -> None:
        super().__init__()
        self.oldest_id: int | None = None
        self.newest_id: int | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="sync"):
            with Vertical(id="objects-box"):
                yield Static("", id="health")
                yield KeyedTable(id="objects", cursor_type="row")
            yield KeyedTable(id="errors", cursor_type="row")
        yield Label("Audit log", classes="section-title")
        yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        objects = self.query_one("#objects", DataTable)
        for title, width in (("Object", 16), ("Status", 8), ("Watermark", 19), ("Last run", 19)):
            objects.add_column(title, width=width)
        errors = self.query_one("#errors", DataTable)
        for title, width in (("When", 19), ("Object", 12), ("Error", 60)):
            errors.add_column(title, width=width)
        audit = self.query_one("#audit", DataTable)
        for key, title, width in (("at", "When", 19), ("user", "User", 14), ("action", "Action", 22),
                                  ("entity", "Entity", 10), ("id", "Id", 14)):
            audit.add_column(title, key=key, width=width)
        audit.focus()
        self.load()

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="sync.load", exit_on_error=False, description="Sync & audit")
    def _load(self) -> None:
        sync = self.console.sync
        self.post_result(self.Loaded(sync.overview(), sync.audit(limit=PAGE)))

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        ov, rows = message.overview, message.audit
        h = ov.health
        outbox = ", ".join(f"{n:,} {s}" for s, n in sorted(ov.outbox.items())) or "empty"
        self.query_one("#health", Static).update(
            f"Salesforce: {h.label} · last run {_when(h.last_run_at)}\npush outbox: {outbox}")
        self.query_one("#objects", KeyedTable).apply(
            {o.sobject: (o.sobject, o.status, _when(o.watermark), _when(o.last_run_at)) for o in ov.objects})
        self.query_one("#errors", KeyedTable).apply(
            {f"{i}": (_when(at), sobject, text[:80]) for i, (at, sobject, text) in enumerate(ov.errors)})
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

    def action_older(self) -> None:
        if self.oldest_id is not None:
            self._older(self.oldest_id)

    @work(thread=True, exclusive=True, group="sync.older", exit_on_error=False, description="Audit log")
    def _older(self, before_id: int) -> None:
        self.post_result(self.OlderLoaded(self.console.sync.audit(limit=PAGE, before_id=before_id)))

    @on(OlderLoaded)
    def append_audit(self, message: OlderLoaded) -> None:
        rows = message.audit
        if not rows:
            self.notify("no older audit entries")
            return
        table = self.query_one("#audit", DataTable)
        for r in rows:
            table.add_row(_when(r.at), r.user, r.action, r.entity, r.entity_id, key=str(r.id))
        self.oldest_id = min(r.id for r in rows)
