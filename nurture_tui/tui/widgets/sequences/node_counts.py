"""One node's live counters as the tail of its tree row: `[3 here · 10 in · 4 yes 6 no · 1 exited · 2 goal]`
— here and entered always, yes/no on the nodes that decide (wait_for, branch), exited and goal when
non-zero; `[no leads yet]` for a node nobody has reached (or that is new in the draft)."""

from __future__ import annotations

from rich.text import Text

from ....console.sequence_live import NodeCounts

DECIDING = ("wait_for", "branch")


def counts_text(counts: NodeCounts | None, kind: str) -> Text:
    if counts is None or not (counts.entered or counts.waiting):
        return Text("  [no leads yet]", style="dim")
    text = Text("  [", style="dim")
    text.append(f"{counts.waiting} here", style="bold cyan" if counts.waiting else "dim")
    text.append(f" · {counts.entered} in", style="dim")
    if kind in DECIDING or counts.yes or counts.no:
        text.append(" · ")
        text.append(f"{counts.yes} yes", style="green")
        text.append(" ")
        text.append(f"{counts.no} no", style="yellow")
    if counts.exited:
        text.append(f" · {counts.exited} exited", style="red")
    if counts.goal:
        text.append(f" · {counts.goal} goal", style="bold green")
    text.append("]", style="dim")
    return text
