"""The editor's preview: for the chosen lead (or placeholder values), the subject, the HTML part as
readable text with its links listed, and the text part."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ....console.templates import DraftPreview


def preview_text(p: DraftPreview) -> Text:
    who = p.lead.label if p.lead else "placeholder values (ctrl+l chooses a lead)"
    out = Text.assemble(("For: ", "dim"), (who, "bold"), "\n")
    if p.error:
        out.append("\n" + p.error + "\n", style="italic")
        if p.problems:
            out.append("\nProblems\n", style="bold")
            for problem in p.problems:
                out.append(f"{problem.part}:{problem.line}" if problem.line else problem.part, style="bold red")
                out.append(f"  {problem.message}\n")
        return out
    out.append_text(Text.assemble(("Subject: ", "dim"), (p.subject, "bold"), "\n\n"))
    out.append("── HTML, as text ──\n", style="bold")
    out.append(p.html_text.rstrip() + "\n")
    if p.links:
        out.append("\nLinks\n", style="bold")
        for n, (label, url) in enumerate(p.links, 1):
            out.append(f"[{n}] ", style="dim")
            out.append(f"{label} ", style="")
            out.append(f"{url}\n", style="underline")
    title = "── Text part (derived from the HTML) ──" if p.text_derived else "── Text part ──"
    out.append(f"\n{title}\n", style="bold")
    out.append(p.text.rstrip() + "\n")
    return out


class DraftPreviewView(Static):
    DEFAULT_CSS = "DraftPreviewView { width: 1fr; height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.preview: DraftPreview | None = None  # what is shown

    def show(self, preview: DraftPreview) -> None:
        self.preview = preview
        self.update(preview_text(preview))
