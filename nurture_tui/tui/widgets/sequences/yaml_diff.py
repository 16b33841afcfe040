"""`YamlDiffView`: the line diff of the published version's canonical YAML against the draft's
(`console.sequence_diff.YamlDiff`), coloured — unified (`-` red, `+` green, hunk headers dim) or side by
side (published left, draft right, changed lines coloured on their side). `side_by_side` switches."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ....console.sequence_diff import YamlDiff

STYLES = {"-": "red", "+": "green", "@": "dim cyan", " ": ""}
OLD_STYLE = {"replace": "red", "delete": "red", "insert": "", "equal": "", "hunk": "dim cyan"}
NEW_STYLE = {"replace": "green", "insert": "green", "delete": "", "equal": "", "hunk": "dim cyan"}


def unified_text(diff: YamlDiff) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(diff.unified()):
        if i:
            text.append("\n")
        text.append(line.text if line.tag == "@" else f"{line.tag} {line.text}", style=STYLES[line.tag])
    return text


def side_by_side_table(diff: YamlDiff) -> Table:
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold", expand=True)
    table.add_column("published", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("│", width=1, style="dim")
    table.add_column("draft", ratio=1, no_wrap=True, overflow="ellipsis")
    for row in diff.side_by_side():
        old = Text(row.old if row.old is not None else "", style=OLD_STYLE[row.tag])
        new = Text(row.new if row.new is not None else "", style=NEW_STYLE[row.tag])
        marker = {"replace": "~", "delete": "<", "insert": ">"}.get(row.tag, "│")
        table.add_row(old, Text(marker, style="yellow" if marker != "│" else "dim"), new)
    return table


class YamlDiffView(Static):
    DEFAULT_CSS = """
    YamlDiffView { height: auto; }
    """

    side_by_side: reactive[bool] = reactive(False)

    def __init__(self, diff: YamlDiff, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff = diff

    def on_mount(self) -> None:
        self.update(self.renderable_now())

    def watch_side_by_side(self) -> None:
        if self.is_mounted:
            self.update(self.renderable_now())

    def renderable_now(self) -> RenderableType:
        if self.diff.same:
            return Text("the YAML is the same", style="dim")
        return side_by_side_table(self.diff) if self.side_by_side else unified_text(self.diff)
