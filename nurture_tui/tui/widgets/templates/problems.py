"""The editor's problems panel: every problem of the draft as `part:line  message`, one per row; `enter`
on a row asks the editor to put the cursor there (ProblemChosen)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ....console.templates import TemplateProblem


def problem_label(p: TemplateProblem) -> Text:
    where = f"{p.part}:{p.line}" if p.line else p.part
    return Text.assemble((f"{where:<7}", "bold"), " ", p.message)


class ProblemsPanel(OptionList):
    DEFAULT_CSS = """
    ProblemsPanel { height: auto; max-height: 5; border: none; padding: 0; color: $text-error;
                    text-wrap: nowrap; text-overflow: ellipsis; }
    ProblemsPanel.-empty { display: none; }
    """

    @dataclass
    class ProblemChosen(Message):
        problem: TemplateProblem

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-empty")
        self.problems: list[TemplateProblem] = []

    def show(self, problems: Sequence[TemplateProblem]) -> None:
        if list(problems) == self.problems:
            return
        self.problems = list(problems)
        self.clear_options()
        self.add_options([Option(problem_label(p)) for p in self.problems])
        if self.problems:
            self.highlighted = 0
        self.set_class(not self.problems, "-empty")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.ProblemChosen(self.problems[event.option_index]))
