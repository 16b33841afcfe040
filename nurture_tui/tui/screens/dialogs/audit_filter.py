"""The audit log's filter form: user and entity (completed from the names in the log) and a period of whole
days. Empty fields match everything; `enter` applies, `esc` cancels; a bad date is said in the form."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from ....console.audit_log import AuditFilter
from ...keymap import bind


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


class AuditFilterModal(ModalScreen[AuditFilter | None]):
    CSS_PATH = "filter_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [bind("escape", "cancel", "Cancel", "audit_filter.cancel")]

    def __init__(self, current: AuditFilter, users: list[str], entities: list[str]) -> None:
        super().__init__()
        self.current = current
        self.users = users
        self.entities = entities

    def compose(self) -> ComposeResult:
        c = self.current
        with Vertical(id="dialog"):
            yield Label("Audit log filter — enter applies, esc cancels, tab moves", id="title")
            with Grid(id="fields"):
                yield Label("User")
                yield Input(c.user, placeholder=", ".join(self.users[:4]) or "a user name", id="audit-user",
                            suggester=SuggestFromList(self.users, case_sensitive=False))
                yield Label("Entity")
                yield Input(c.entity, placeholder=", ".join(self.entities[:4]) or "an entity", id="audit-entity",
                            suggester=SuggestFromList(self.entities, case_sensitive=False))
                yield Label("Since")
                yield Input(str(c.since or ""), placeholder="YYYY-MM-DD", id="audit-since")
                yield Label("Until")
                yield Input(str(c.until or ""), placeholder="YYYY-MM-DD", id="audit-until")
            yield Label("", id="problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()

        def value(name: str) -> str:
            return self.query_one(f"#audit-{name}", Input).value.strip()

        try:
            since, until = _day(value("since")), _day(value("until"))
        except ValueError:
            self.query_one("#problem", Label).update("since and until are dates: YYYY-MM-DD")
            return
        if since and until and since > until:
            self.query_one("#problem", Label).update("since is after until")
            return
        self.dismiss(AuditFilter(value("user"), value("entity"), since, until))

    def action_cancel(self) -> None:
        self.dismiss(None)
