"""Publishing a sequence: the stored draft against the published version — the structural summary (steps
added, removed and changed, settings changed), the line diff of their canonical YAML (unified; `s` shows it
side by side), the leads in flight per node and what migration does to each (moves, or stays pinned and
why), and the problems that block publishing. `p` publishes with the leads pinned to their version, `m`
publishes and migrates the waiting ones, `esc` cancels."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ....console.sequence_editing import PublishPreview
from ...keymap import bind
from ...widgets.sequences.yaml_diff import YamlDiffView


def preview_renderable(name: str, version: int | None, preview: PublishPreview) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    diff = preview.diff
    base = f"v{version}" if version else "nothing published yet"
    grid.add_row("against", base + ("  (the draft equals it: nothing new to publish)" if preview.unchanged else ""))
    for label, items, style in (("added", diff.added, "green"), ("removed", diff.removed, "red"),
                                ("changed", diff.changed, "yellow"), ("settings", diff.settings, "cyan")):
        if items:
            grid.add_row(label, Text(", ".join(items), style=style))
    if diff.empty and version:
        grid.add_row("", "no changes")
    added, removed = preview.lines.counts()
    if added or removed:
        grid.add_row("lines", Text.assemble((f"+{added}", "green"), " ", (f"-{removed}", "red"),
                                            ("  (the YAML diff is below)", "dim")))
    if preview.in_flight:
        flights = Table("node", "waiting", "running", "with migration", box=None, padding=(0, 1),
                        header_style="bold")
        for f in preview.in_flight:
            if f.moves:
                what = Text(f"{f.waiting} move" + (f", {f.active} running stay" if f.active else ""),
                            style="green" if f.waiting else "dim")
            else:
                what = Text(f"all stay ({f.why})", style="yellow")
            flights.add_row(f.node_id, str(f.waiting), str(f.active), what)
        grid.add_row("in flight", flights)
    else:
        grid.add_row("in flight", "no leads in this sequence")
    for problem in preview.problems[:6]:
        grid.add_row(Text("✗", style="bold red"), Text(problem, style="red"))
    return grid


class PublishModal(ModalScreen[str | None]):
    """Returns "pin" (publish; leads stay on their version), "migrate" (publish and move the waiting leads
    whose node still exists with the same kind) or None."""

    CSS_PATH = "sequence_publish.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("p", "choose('pin')", "Publish", "sequence_publish.pin"),
        bind("m", "choose('migrate')", "Publish + migrate", "sequence_publish.migrate"),
        bind("s", "toggle_side_by_side", "Side by side", "sequence_publish.side_by_side"),
        bind("escape,n", "cancel", "Cancel", "sequence_publish.cancel"),
    ]

    def __init__(self, name: str, version: int | None, preview: PublishPreview) -> None:
        super().__init__()
        self.seq_name = name
        self.version = version
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="publish"):
            yield Label(f"Publish {self.seq_name}", id="title")
            with VerticalScroll(id="body", classes="publish"):
                yield Static(preview_renderable(self.seq_name, self.version, self.preview), id="summary")
                yield Label(self._diff_heading(False), id="diff-heading", classes="step")
                yield YamlDiffView(self.preview.lines, id="diff")
            blocked = bool(self.preview.problems)
            yield Label("fix the problems first · s: side by side · esc: back" if blocked else
                        "p: publish (leads stay on their version) · m: publish + migrate waiting · "
                        "s: side by side · esc: cancel", id="hint")

    def on_mount(self) -> None:
        self.query_one("#body", VerticalScroll).focus()

    def _diff_heading(self, side_by_side: bool) -> str:
        base = f"v{self.version}" if self.version else "nothing"
        return f"YAML: {base} → draft ({'side by side' if side_by_side else 'unified'}; s switches)"

    def action_toggle_side_by_side(self) -> None:
        view = self.query_one("#diff", YamlDiffView)
        view.side_by_side = not view.side_by_side
        self.query_one("#diff-heading", Label).update(self._diff_heading(view.side_by_side))

    def action_choose(self, choice: str) -> None:
        if self.preview.problems:
            self.notify("the draft has problems: it cannot be published", severity="warning")
            return
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
