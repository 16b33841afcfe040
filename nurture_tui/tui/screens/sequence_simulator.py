"""Test a program before it goes live, on screen: the simulator and the forecast on the *saved* draft.

Simulate: pick a lead (type an email, last name or company prefix; `enter` takes the first match, `↓`
reaches the list), and the timeline shows the lead's path — each step, when (in the lead's time zone) and
what happens and why. On a decision (`wait_for`, `branch`, `split`) `y` / `n` pick its outcome, `o` the next
one (a split's arms in turn), `x` lets the simulator decide again; the timeline re-runs from the start with
every picked outcome (`console.simulate(name, email, "id=yes,split=b")`), so everything after the decision
follows the new path. Forecast (`f`): pick a segment; reach per node for a sample of its members.

`SequenceSimulatorScreen(name, arms)`: `arms` is the split arms by step id (what `o` cycles through)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ContentSwitcher, DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from ...console.leads import LeadHit
from ...console.sequence_editing import LeadSimulation, SegmentSimulation, SequenceEditing, TimelineEvent
from ..keymap import bind
from .base import NurtureScreen

DECISIONS = ("wait_for", "branch", "split")
KIND_STYLES = {"send": "blue", "wait": "yellow", "wait_for": "magenta", "branch": "cyan", "split": "cyan",
               "action": "green", "exit": "red", "exit_rule": "red", "goal": "bold green", "done": "bold",
               "stopped": "bold red", "start": "dim"}


def outcome_spec(outcomes: dict[str, str]) -> str:
    """The simulator's outcomes argument: `engaged=yes,ab=b`."""
    return ",".join(f"{node}={value}" for node, value in outcomes.items())


def next_outcome(kind: str, current: str | None, arms: list[str]) -> str:
    """`o`: the outcome after `current` (yes → no → yes; a split: its arms in turn)."""
    choices = arms if kind == "split" else ["yes", "no"]
    if current not in choices:
        return choices[0]
    return choices[(choices.index(current) + 1) % len(choices)]


class SequenceSimulatorScreen(NurtureScreen):
    CSS_PATH = "sequence_simulator.tcss"
    TITLE = "Test a sequence"
    AREA = "sequences"
    HELP = """\
Simulate one lead through the saved draft: type an email (or last name, company) and `enter` — `↓` reaches
the matches. On the timeline, at a decision (◆ wait_for, branch, split) `y` / `n` pick its outcome, `o` the
next one (a split's arms in turn), `x` lets the simulator decide again; the timeline re-runs with your picks.
`l` picks another lead. `f` switches to the forecast (from the search box, `tab` out of it first): pick a
segment (`enter`) to see the expected reach per node for a sample of its members. `esc` goes back.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("y", "outcome('yes')", "Yes", "sequence_simulator.yes"),
        bind("n", "outcome('no')", "No", "sequence_simulator.no"),
        bind("o", "outcome('')", "Next outcome", "sequence_simulator.next_outcome"),
        bind("x", "outcome('auto')", "Auto", "sequence_simulator.auto", show=False),
        bind("l", "pick_lead", "Lead", "sequence_simulator.lead"),
        bind("f", "toggle_forecast", "Forecast", "sequence_simulator.forecast"),
        bind("escape", "back", "Back", "sequence_simulator.back"),
    ]

    @dataclass
    class LeadsFound(Message, bubble=False):
        text: str
        hits: list[LeadHit]

    @dataclass
    class Simulated(Message, bubble=False):
        generation: int
        result: LeadSimulation

    @dataclass
    class SegmentsLoaded(Message, bubble=False):
        names: list[str]

    @dataclass
    class Forecasted(Message, bubble=False):
        result: SegmentSimulation

    def __init__(self, name: str, arms: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self.seq_name = name
        self.arms = arms or {}
        self.hits: list[LeadHit] = []
        self.email: str | None = None
        self.outcomes: dict[str, str] = {}
        self.timeline: LeadSimulation | None = None
        self.forecast: SegmentSimulation | None = None
        self.generation = 0  # of the simulation asked for last (older results are dropped)
        self.simulated = -1  # the generation shown

    @property
    def editing(self) -> SequenceEditing:
        return SequenceEditing(self.session)

    def compose_body(self) -> ComposeResult:
        yield Static(self._heading(), id="sim-title")
        with ContentSwitcher(initial="simulate", id="panes"):
            with Vertical(id="simulate"):
                yield Input(placeholder="lead: email, last name or company — enter picks the first match",
                            id="lead-search")
                yield OptionList(id="lead-hits")
                yield OptionList(id="timeline")
            with Vertical(id="forecast"):
                yield OptionList(id="segments")
                yield Static("", id="forecast-summary")
                yield DataTable(id="reach", cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        self.query_one("#lead-hits", OptionList).display = False
        self.query_one("#lead-search", Input).focus()
        reach = self.query_one("#reach", DataTable)
        reach.add_column("node", key="node")
        reach.add_column("kind", key="kind")
        reach.add_column("reach", key="reach")
        reach.add_column("share", key="share")
        reach.add_column("", key="bar")
        reach.add_column("basis", key="basis")
        self._load_segments()

    def _heading(self) -> Text:
        forecast = self.is_mounted and self.query_one("#panes", ContentSwitcher).current == "forecast"
        text = Text.assemble((self.seq_name, "bold"), ("  saved draft", "dim"), "  ")
        if forecast:
            text.append("forecast" + (f" on {self.forecast.segment!r}" if self.forecast else ": pick a segment"))
            return text
        text.append(self.email or "simulate: pick a lead")
        if self.timeline is not None and self.simulated == self.generation:
            text.append(f"  → {self.timeline.outcome}, {self.timeline.sends} send(s)", style="bold")
        elif self.email and self.simulated != self.generation:
            text.append("  simulating…", style="dim")
        elif self.email:
            text.append("  could not be simulated (see the message)", style="red")
        if self.outcomes:
            text.append("  picked " + ", ".join(f"{k}={v}" for k, v in self.outcomes.items()), style="yellow")
        return text

    def _retitle(self) -> None:
        self.query_one("#sim-title", Static).update(self._heading())

    # -- picking the lead ---------------------------------------------------------------------------

    def action_pick_lead(self) -> None:
        self.query_one("#panes", ContentSwitcher).current = "simulate"
        self.query_one("#lead-search", Input).focus()
        self._retitle()

    @on(Input.Changed, "#lead-search")
    def _typed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        if len(text) >= 2:
            self._search(text)
        else:
            self._show_hits([])

    @work(thread=True, exclusive=True, group="sequence_simulator.search", exit_on_error=False,
          description="Find leads")
    def _search(self, text: str) -> None:
        self.post_result(self.LeadsFound(text, self.console.leads.search(text, limit=8)))

    @on(LeadsFound)
    def _found(self, message: LeadsFound) -> None:
        if message.text == self.query_one("#lead-search", Input).value.strip():
            self._show_hits(message.hits)

    def _show_hits(self, hits: list[LeadHit]) -> None:
        self.hits = hits
        panel = self.query_one("#lead-hits", OptionList)
        panel.clear_options()
        panel.add_options([Option(Text.assemble((h.email, "bold"), ("  " + h.who, "dim")), id=str(i))
                           for i, h in enumerate(hits)])
        panel.display = bool(hits)

    @on(Input.Submitted, "#lead-search")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self.hits:
            self._choose(self.hits[0].email)
        elif "@" in text:
            self._choose(text)
        else:
            self.notify("no lead matches: type an email, last name or company", severity="warning")

    @on(OptionList.OptionSelected, "#lead-hits")
    def _hit_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(self.hits[int(event.option.id or 0)].email)

    def _choose(self, email: str) -> None:
        self.email = email
        self.outcomes = {}
        self._show_hits([])
        self.query_one("#lead-search", Input).value = ""
        self.query_one("#timeline", OptionList).focus()
        self._simulate()

    def on_key(self, event: events.Key) -> None:
        """`↓` in the search box goes to the matches."""
        if event.key == "down" and self.focused is self.query_one("#lead-search"):
            hits = self.query_one("#lead-hits", OptionList)
            if hits.display:
                hits.focus()
                hits.highlighted = 0
                event.stop()

    # -- the timeline -------------------------------------------------------------------------------

    def _simulate(self) -> None:
        if self.email is None:
            return
        self.generation += 1
        self._retitle()
        self._run(self.email, outcome_spec(self.outcomes), self.generation)

    @work(thread=True, exclusive=True, group="sequence_simulator.run", exit_on_error=False,
          description="Simulate the lead")
    def _run(self, email: str, outcomes: str, generation: int) -> None:
        self.post_result(self.Simulated(generation, self.editing.simulate(self.seq_name, email, outcomes)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed run (a lead without that email, an outcome the draft no longer has): the toast says why
        (the base screen routes it); the title stops saying "simulating…"."""
        if event.worker.group == "sequence_simulator.run" and event.state == WorkerState.ERROR:
            self.simulated = self.generation
            self.timeline = None
            self.query_one("#timeline", OptionList).clear_options()
            self._retitle()

    @on(Simulated)
    def _simulated(self, message: Simulated) -> None:
        if message.generation != self.generation:
            return
        self.timeline = message.result
        self.simulated = message.generation
        panel = self.query_one("#timeline", OptionList)
        keep = panel.highlighted
        panel.clear_options()
        panel.add_options([Option(self._event_line(e), id=str(i))
                           for i, e in enumerate(message.result.events)])
        if panel.option_count:
            panel.highlighted = min(keep, panel.option_count - 1) if keep is not None else 0
        self._retitle()

    def _event_line(self, event: TimelineEvent) -> Text:
        """`◆ Mon 2026-03-09 09:00 UTC  engaged  waits 5d for click: no`, and the why on a dim second line."""
        decision = event.kind in DECISIONS
        picked = event.node_id in self.outcomes and decision
        text = Text()
        text.append("◆ " if decision else "  ", style="bold magenta" if decision else "")
        text.append(event.local, style="dim")
        text.append("  ")
        text.append(f"{event.node_id or '':<16}", style=KIND_STYLES.get(event.kind, ""))
        text.append(" ")
        text.append(event.text, style="bold" if decision else "")
        if picked:
            text.append("  (your pick)", style="yellow")
        elif event.why:
            text.append(f"\n    {event.why}", style="dim")
        return text

    def _decision(self) -> tuple[str, str] | None:
        """(node id, kind) of the decision under the timeline cursor."""
        panel = self.query_one("#timeline", OptionList)
        if self.timeline is None or panel.highlighted is None:
            return None
        event = self.timeline.events[panel.highlighted]
        if event.kind not in DECISIONS or event.node_id is None:
            return None
        return event.node_id, event.kind

    def action_outcome(self, value: str) -> None:
        if self.query_one("#panes", ContentSwitcher).current != "simulate":
            return
        decision = self._decision()
        if decision is None:
            self.notify("put the cursor on a decision (◆ wait_for, branch or split) first")
            return
        node, kind = decision
        arms = self.arms.get(node, [])
        if value == "auto":
            self.outcomes.pop(node, None)
        elif value == "":
            current = self.outcomes.get(node) or self._shown_outcome(kind)
            self.outcomes[node] = next_outcome(kind, current, arms)
        elif kind == "split":
            self.notify(f"{node} is a split: `o` picks its arms in turn ({', '.join(arms)})")
            return
        else:
            self.outcomes[node] = value
        self._simulate()

    def _shown_outcome(self, kind: str) -> str | None:
        """The outcome the timeline shows at the cursor (what `o` moves on from)."""
        panel = self.query_one("#timeline", OptionList)
        assert self.timeline is not None and panel.highlighted is not None
        text = self.timeline.events[panel.highlighted].text
        if kind == "split":
            return text.rsplit("arm ", 1)[-1]
        return "yes" if text.endswith("yes") else "no"

    # -- the forecast -------------------------------------------------------------------------------

    def action_toggle_forecast(self) -> None:
        switcher = self.query_one("#panes", ContentSwitcher)
        switcher.current = "simulate" if switcher.current == "forecast" else "forecast"
        if switcher.current == "forecast":
            self.query_one("#segments", OptionList).focus()
        else:
            self.query_one("#timeline" if self.email else "#lead-search").focus()
        self._retitle()

    @work(thread=True, exclusive=True, group="sequence_simulator.segments", exit_on_error=False,
          description="Load segments")
    def _load_segments(self) -> None:
        self.post_result(self.SegmentsLoaded(self.editing.names()["segments"]))

    @on(SegmentsLoaded)
    def _segments_loaded(self, message: SegmentsLoaded) -> None:
        panel = self.query_one("#segments", OptionList)
        panel.clear_options()
        panel.add_options([Option(name, id=name) for name in message.names])
        if not message.names:
            self.query_one("#forecast-summary", Static).update(
                "No saved segments: save one on the Segments screen (3) to forecast on it.")

    @on(OptionList.OptionSelected, "#segments")
    def _segment_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#forecast-summary", Static).update(Text(f"forecasting on {event.option.id!r}…", "dim"))
        self._run_forecast(str(event.option.id))

    @work(thread=True, exclusive=True, group="sequence_simulator.forecast", exit_on_error=False,
          description="Forecast on a segment")
    def _run_forecast(self, segment: str) -> None:
        self.post_result(self.Forecasted(self.editing.forecast(self.seq_name, segment)))

    @on(Forecasted)
    def _forecasted(self, message: Forecasted) -> None:
        result = self.forecast = message.result
        self.query_one("#forecast-summary", Static).update(Text.assemble(
            (f"sample of {result.sample} of {result.members} leads in {result.segment!r}", "bold"),
            f" · {result.left_at_entry} leave at entry (goal or exit rule)",
            f" · {result.finished:.1f} expected to finish"))
        table = self.query_one("#reach", DataTable)
        table.clear()
        for n in result.nodes:
            bar = "█" * round(n.share * 20)
            table.add_row(n.node_id, Text(n.kind, style=KIND_STYLES.get(n.kind, "")), f"{n.reach:.1f}",
                          f"{n.share:.1%}", Text(bar, style="cyan"), Text(n.basis, style="dim"), key=n.node_id)
        self._retitle()

    def action_back(self) -> None:
        self.dismiss()
