"""The sample programs built in the sequence editor from nothing, by keys alone — what the Pilot tests check
(the stored definition equals the sample file after a canonical dump) and what `nurture bench
sequence-editor` counts and times.

Every key goes through a `KeyLog`, which tells two kinds apart: **free text** — the characters a sample
spells out and an admin would type whatever the tool (ids, names, labels, subjects, template names,
descriptions, and the values of text fields: durations, times, numbers, URLs, filters) — and **keys**:
navigation, the kind's letter, option choices, picker searches and completions, `enter` between fields,
`f2` and the builder's keys, confirmations, saves. `keys_per_node` counts keys only; `all_keys_per_node`
counts both.

A build starts in a fresh `SequenceEditorScreen(None)` (the blank program) and ends with the draft built,
not saved."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from textual.pilot import Pilot

from .screens.dialogs.condition_form import ConditionForm
from .screens.dialogs.node_form import ACTION_LETTERS, ActionTypeList, KindModal, NodeForm
from .screens.dialogs.prompt import ChoiceModal
from .screens.dialogs.sequence_settings import InlineTemplatesForm, SettingsForm
from .screens.rule_builder import RuleBuilderScreen
from .screens.sequence_editor import SequenceEditorScreen
from .widgets.segments.pick_list import PickList, shortest_search


@dataclass
class KeyLog:
    pilot: Pilot[Any]
    #: free text arrives as a terminal's bracketed paste, one event per field (the suite's speed), instead
    #: of a key per character (the benchmark's keystroke timing); it is counted the same either way
    paste_text: bool = False
    keys: int = 0  # navigation, choices, searches, confirmations
    free: int = 0  # the sample's own text
    #: key → the screen settled, in ms (for every key sent through `press`)
    latencies: list[float] = field(default_factory=list)
    #: keys spent per part of the build ("settings", "steps")
    parts: dict[str, int] = field(default_factory=dict)

    def count(self, part: str, keys: int) -> None:
        self.parts[part] = self.parts.get(part, 0) + keys

    async def press(self, *keys: str) -> None:
        for key in keys:
            self.keys += 1
            await self._one(key)

    async def text(self, text: str) -> None:
        if self.paste_text and text:
            await self.paste(text)
            return
        for ch in text:
            self.free += 1
            await self._one(ch)

    async def paste(self, text: str) -> None:
        """A terminal's bracketed paste (one event; counted as the characters it carries)."""
        from textual import events

        self.free += len(text)
        self.pilot.app.post_message(events.Paste(text))  # as the driver does: the app hands it to the focus
        await self.pilot.pause()

    async def _one(self, key: str) -> None:
        start = time.perf_counter()
        await self.pilot.press(key)
        self.latencies.append((time.perf_counter() - start) * 1000)


async def wait_for(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            screen = pilot.app.screen
            problems = [str(w.render()) for w in screen.query("#problem")]
            problems += [f"{k}={getattr(screen, k)}" for k in ("subject", "op") if hasattr(screen, k)]
            problems += [f"focus={screen.focused!r}"]
            raise AssertionError(f"condition not met in time (screen {type(screen).__name__}: {problems})")
        await pilot.pause(0.02)


async def until_screen(pilot: Pilot[Any], cls: type) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, cls))


def editor(log: KeyLog) -> SequenceEditorScreen:
    for screen in reversed(log.pilot.app.screen_stack):
        if isinstance(screen, SequenceEditorScreen):
            return screen
    raise AssertionError("no sequence editor open")


# ---------------------------------------------------------------------------------------------------
# Steps


async def add(log: KeyLog, how: str, kind: str, *fields: str, arm: str | None = None) -> None:
    """`a` (or `A`, then the arm's first letter when the step has several), the kind's letter, then each
    field in form order — id, the kind's fields, label, the kind's rarer fields, goto — each left with
    `enter` (an empty string skips a field; the action type's letter moves on by itself); `ctrl+s` saves
    the step from its last field (a picker's search included: `ctrl+s` takes the match `enter` would)."""
    pilot = log.pilot
    ed = editor(log)
    revision = ed.draft.revision if ed.draft else -1
    await log.press(how)
    if arm is not None:
        await until_screen(pilot, ChoiceModal)
        await log.press(arm)
    await until_screen(pilot, KindModal)
    await log.press(kind)
    await until_screen(pilot, NodeForm)
    form = pilot.app.screen
    assert isinstance(form, NodeForm)
    await wait_for(pilot, lambda: form.pickers_loaded)
    last = max((i for i, text in enumerate(fields) if text), default=-1)
    for i, text in enumerate(fields[:last + 1]):
        await type_field(log, text, last=i == last)
    if pilot.app.screen is form:
        await log.press("ctrl+s")
    await until_screen(pilot, SequenceEditorScreen)
    await wait_for(pilot, lambda: ed.draft is not None and ed.draft.revision > revision)


async def type_field(log: KeyLog, text: str, *, last: bool = False) -> None:
    """The action type: its letter (the form moves on). A picker (template, field, campaign, owner): the
    shortest search that puts the choice on top (keys), none when it is on top already; a name it does not
    list yet, and every other field: the text (free text). Then `enter` to the next field, unless it is the
    last (`ctrl+s` follows)."""
    focused = log.pilot.app.focused
    if isinstance(focused, ActionTypeList):
        await log.press(next(letter for letter, kind in ACTION_LETTERS if kind == text))
        return
    picker = focused.parent if focused is not None else None
    if isinstance(picker, PickList) and any(c.key == text for c in picker.choices):
        if picker.input.value or picker.highlighted_key() != text:  # else on top: `enter` takes the first
            await log.press(*shortest_search(picker.choices, text))
    elif text:
        await log.text(text)
    if not last:
        await log.press("enter")


async def up(log: KeyLog, levels: int = 1) -> None:
    """To the step `levels` arms up (`o`: out of the arm, to its step)."""
    await log.press(*(["o"] * levels))


# ---------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Condition:
    """One condition typed into the builder's form: the subject and the operator (their keys: the shortest
    search that finds each is typed), the value (free text)."""

    subject: str
    op: str
    value: str = ""
    #: the last condition of a rule, into a NONE group: `esc` after it ends the run, `!` negates it
    negate: bool = False


async def build_rule(log: KeyLog, conditions: list[Condition], group: int | None = None) -> None:
    """`f2` on the focused condition field: the segment builder; the top group's operator when it is not
    already the one wanted (`e`, then `group` rows down: 0 ALL, 1 ANY, 2 NONE); `a` and the conditions, one
    form after another (subject, operator, value; `enter` adds it and opens the next form, `ctrl+s` on the
    last adds it and hands the rule back, the settings form moving on to its next field)."""
    pilot = log.pilot
    field = pilot.app.focused
    await log.press("f2")
    await until_screen(pilot, RuleBuilderScreen)
    builder = pilot.app.screen
    assert isinstance(builder, RuleBuilderScreen)
    await wait_for(pilot, lambda: builder.subjects is not None)
    if group is not None and builder.draft.root.op != ("all", "any", "none")[group]:
        await log.press("e")
        await until_screen(pilot, ChoiceModal)
        await log.press(*(["down"] * group), "enter")
        await until_screen(pilot, RuleBuilderScreen)
    await log.press("a")
    form: Any = None
    for i, cond in enumerate(conditions):
        await wait_for(pilot, lambda old=form: isinstance(pilot.app.screen, ConditionForm)  # type: ignore[misc]
                       and pilot.app.screen is not old)
        form = pilot.app.screen
        for name, key in (("#subject", cond.subject), ("#op", cond.op)):
            if name == "#op" and getattr(form, "op", None) == key:
                continue  # the subject has this one operator: the form skipped it
            picker = form.query_one(name, PickList)
            await wait_for(pilot, lambda p=picker: bool(p.choices))  # type: ignore[misc]
            on_top = picker.shown[:1] == [c for c in picker.choices if c.key == key][:1]
            if not (on_top and not picker.input.value):  # "enter for the first": no search needed
                await log.press(*shortest_search(picker.choices, key))
            await log.press("enter")
        last = i == len(conditions) - 1
        if cond.value:  # the operator takes one
            await log.text(cond.value)
            await log.press("ctrl+s" if last and not cond.negate else "enter")
        if not last or not (cond.negate or not cond.value):
            continue
        # added by the operator's `enter` (or the value's, before a negation): the next form is open
        await wait_for(pilot, lambda old=form: isinstance(pilot.app.screen, ConditionForm)  # type: ignore[misc]
                       and pilot.app.screen is not old)
        if not cond.negate:
            await log.press("ctrl+s")
            continue
        await log.press("escape")
        await until_screen(pilot, RuleBuilderScreen)
        await wait_for(pilot, lambda n=len(builder.draft.root.items) - 1:  # type: ignore[misc]
                       builder.rule_tree.cursor_path == (n,))
        await log.press("exclamation_mark", "ctrl+s")
    await until_screen(pilot, SettingsForm)
    await wait_for(pilot, lambda: pilot.app.focused not in (None, field))  # on to the next field


@dataclass(frozen=True)
class Settings:
    """The settings form's fields in order; a string is typed (free text), a tuple is keys (a choice: the
    letters its completion needs, `enter` taking it), a list of conditions is built with `f2` (the entry: a
    rule, whatever it held; the form moves on by itself); None keeps the default. `templates`: the inline
    templates YAML, pasted into `f3`'s text area."""

    name: str
    description: str = ""
    stage: tuple[str, ...] | None = None
    entry: list[Condition] | None = None
    reentry: tuple[str, ...] | None = None
    goal: tuple[int | None, list[Condition]] | None = None
    exit_when: tuple[int | None, list[Condition]] | None = None
    send_window: str | None = None
    timezone: str | None = None
    holidays: str | None = None
    caps: str | None = None
    templates: str | None = None


async def settings(log: KeyLog, s: Settings) -> None:
    before = log.keys
    await _settings(log, s)
    log.count("settings", log.keys - before)


async def _settings(log: KeyLog, s: Settings) -> None:
    pilot = log.pilot
    ed = editor(log)
    revision = ed.draft.revision if ed.draft else -1
    await log.press("s")
    await until_screen(pilot, SettingsForm)
    form = pilot.app.screen
    if s.templates:
        await log.press("f3")
        await until_screen(pilot, InlineTemplatesForm)
        await log.paste(s.templates)
        await log.press("ctrl+s")
        await until_screen(pilot, SettingsForm)
    await log.text(s.name)
    await log.press("enter")
    await log.text(s.description)
    await log.press("enter")
    if s.stage:
        await log.press(*s.stage)
    await log.press("enter")
    if s.entry:
        await build_rule(log, s.entry)
    else:
        await log.press("enter")
    if s.reentry:
        await log.press(*s.reentry)
    await log.press("enter")
    for rule in (s.goal, s.exit_when):
        if rule:
            await build_rule(log, rule[1], rule[0])
        else:
            await log.press("enter")
    for text in (s.send_window, s.timezone, s.holidays):
        if text:
            await log.text(text)
        await log.press("enter")
    if s.caps:
        await log.text(s.caps)
    await log.press("ctrl+s")  # the rest (suppressed, category, outside the window) keep their defaults
    await wait_for(pilot, lambda: pilot.app.screen is not form)
    await wait_for(pilot, lambda: ed.draft is not None and ed.draft.revision > revision)


# ---------------------------------------------------------------------------------------------------
# The samples


async def cold_lead_reengagement(log: KeyLog, templates: str) -> None:
    await settings(log, Settings(
        name="cold-lead-reengagement",
        description="Wakes up leads with no engagement for 90 days; an A/B test on the opener, a break-up email, "
                    "then dormant.",
        stage=("c",),
        entry=([Condition("last_activity_at", "older_than", "90d"),
                Condition("stage", "in", "awareness, consideration"),
                Condition("opted_out", "eq", "false"),
                Condition("bounced", "eq", "false"),
                Condition("tags", "not_contains", "dormant"),
                Condition("activity:entered", "never", "180d sequence:cold-lead-reengagement")]),
        reentry=("a", "f"),
        goal=(1, [Condition("activity:click", "within", "7d also:form,reply")]),
        send_window="tue,wed,thu 10:00-15:00", timezone="lead Europe/London", holidays="GB", caps="1/week",
        templates=templates))
    await add(log, "a", "x", "opener-test", "curiosity 50, value 50", "A/B: curiosity vs. straight value")
    await add(log, "A", "s", "opener-a", "cold-opener-curiosity", arm="c")
    await up(log)
    await add(log, "A", "s", "opener-b", "cold-opener-value", arm="v")
    await up(log)
    await add(log, "a", "f", "woke-up", "click, reply", "7d", "Clicked anything in the opener?")
    await add(log, "A", "a", "reactivated-points", "adjust_score", "10", arm="y")
    await add(log, "a", "a", "reactivated-tag", "add_tag", "reactivated")
    await add(log, "a", "a", "status-working", "update_field", "status", "Working - Reactivated")
    await add(log, "a", "a", "back-to-nurture", "enroll", "consideration-nurture")
    await add(log, "a", "e", "reactivated", "reactivated")
    await up(log)
    await add(log, "a", "w", "breathe", "5d")
    await add(log, "a", "s", "break-up", "cold-breakup", "The break-up email")
    await add(log, "a", "f", "last-chance", "click, reply", "10d")
    await add(log, "A", "a", "last-chance-tag", "add_tag", "reactivated", arm="y")
    await add(log, "a", "a", "last-chance-enroll", "enroll", "consideration-nurture")
    await up(log)
    await add(log, "A", "a", "mark-dormant", "update_field", "custom.nurture_status", "dormant", arm="n")
    await add(log, "a", "a", "dormant-tag", "add_tag", "dormant")
    await add(log, "a", "a", "dormant-campaign", "add_to_campaign", "Dormant Leads 2026", "Dormant")


async def consideration_nurture(log: KeyLog, templates: str = "") -> None:
    await settings(log, Settings(
        name="consideration-nurture",
        description="Six emails over five weeks for leads evaluating the category. A high-intent click (pricing, "
                    "demo) fast-tracks the lead to a tailored email and the rep; no opens at all switches to a "
                    "re-engagement path.",
        stage=("c",),
        entry=([Condition("stage", "eq", "consideration"),
                Condition("opted_out", "eq", "false"),
                Condition("tags", "not_contains", "nurture-unengaged"),
                Condition("activity:entered", "never", "90d sequence:consideration-nurture")]),
        reentry=("a", "f"),
        goal=(1, [Condition("mql_status", "is", "any"), Condition("activity:meeting", "within", "60d")]),
        exit_when=(None, [Condition("stage", "in", "customer")]),
        send_window="tue,wed,thu 08:30-16:30", timezone="lead America/Chicago", holidays="US",
        caps="1/day 2/week"))
    await add(log, "a", "s", "email-1", "cn-1-problem", "Week 0: the problem, named")
    await add(log, "a", "f", "opened-1", "open node=email-1, click node=email-1", "5d", "Any sign of life?")
    await add(log, "A", "s", "reengage", "cn-reengage", "Re-engagement, different angle and subject", arm="n")
    await add(log, "a", "f", "reengaged", "open node=reengage", "6d")
    await add(log, "A", "a", "tag-unengaged", "add_tag", "nurture-unengaged", arm="n")
    await add(log, "a", "a", "to-cold", "enroll", "cold-lead-reengagement")
    await add(log, "a", "e", "stop-unengaged", "no opens in consideration nurture")
    await up(log, 2)
    await add(log, "a", "w", "gap-1", "6d")
    await add(log, "a", "s", "email-2", "cn-2-guide", "Week 1: buyer's guide")
    await add(log, "a", "f", "intent-1", "click url=*/pricing*, click url=*/demo*", "7d",
              "High-intent click on pricing or demo?")
    await add(log, "A", "a", "flag-intent-1", "add_tag", "high-intent", "", "fast-track", arm="y")
    await up(log)
    await add(log, "a", "s", "email-3", "cn-3-story", "Week 2: how a peer did it")
    await add(log, "a", "w", "gap-3", "7d")
    await add(log, "a", "s", "email-4", "cn-4-webinar", "Week 3: live demo invite")
    await add(log, "a", "f", "intent-2", "click url=*/demo*, form form=webinar-registration, "
              "page_view url=*/pricing*", "7d")
    await add(log, "A", "a", "flag-intent-2", "add_tag", "high-intent", "", "fast-track", arm="y")
    await up(log)
    await add(log, "a", "s", "email-5", "cn-5-compare", "Week 4: comparison guide")
    await add(log, "a", "w", "gap-5", "7d")
    await add(log, "a", "s", "email-6", "cn-6-next-step", "Week 5: the next step")
    await add(log, "a", "e", "completed", "completed consideration nurture")
    await add(log, "a", "s", "fast-track", "cn-fast-track", "Fast track: tailored email, score, rep")
    await add(log, "a", "a", "intent-points", "adjust_score", "25")
    await add(log, "a", "a", "to-decision", "set_stage", "decision")
    await add(log, "a", "a", "tell-rep", "notify_rep",
              "High-intent click in the consideration nurture: follow up today")
    await add(log, "a", "e", "fast-tracked", "fast-tracked to sales")


async def decision_stage(log: KeyLog, templates: str) -> None:
    await settings(log, Settings(
        name="decision-stage",
        description="Case study and ROI for leads in the decision stage, ending in the MQL hand-off to sales.",
        stage=("d",),
        entry=([Condition("stage", "eq", "decision"), Condition("grade", "ge", "C"),
                Condition("mql_status", "is", "any", negate=True)]),
        goal=(1, [Condition("activity:meeting", "within", "30d also:opportunity")]),
        exit_when=(1, [Condition("opted_out", "eq", "true"), Condition("stage", "eq", "customer")]),
        send_window="mon-fri 08:00-18:00", timezone="lead America/New_York", holidays="US",
        caps="1/day 3/week", templates=templates))
    await add(log, "a", "s", "case-study", "ds-case-study", "Peer case study (same industry)")
    await add(log, "a", "f", "read-case", "click node=case-study", "4d")
    await add(log, "A", "a", "case-points", "adjust_score", "10", arm="y")
    await up(log)
    await add(log, "a", "s", "roi", "ds-roi", "ROI calculator")
    await add(log, "a", "f", "used-roi", "click node=roi url=*/roi*, form form=roi-calculator", "5d",
              "Used the ROI calculator?")
    await add(log, "A", "a", "roi-points", "adjust_score", "15", arm="y")
    await up(log)
    await add(log, "A", "s", "expert-call", "ds-expert", "Offer a call with an expert instead", arm="n")
    await add(log, "a", "w", "expert-wait", "3d")
    await up(log)
    await add(log, "a", "b", "sales-ready", "score>=60 grade>=B-", "Score and grade good enough for sales?")
    await add(log, "A", "a", "not-yet", "add_tag", "decision-not-ready", arm="n")
    await add(log, "a", "w", "check-in-later", "tue 10:00")
    await add(log, "a", "s", "last-nudge", "ds-last-nudge")
    await add(log, "a", "w", "nudge-window", "4d")
    await add(log, "a", "b", "ready-now", "score>=60 grade>=B-", "Sales-ready after the nudge?")
    await add(log, "A", "a", "back-to-consideration", "set_stage", "consideration", arm="n")
    await add(log, "a", "a", "recycle-status", "update_field", "status", "Recycled")
    await add(log, "a", "e", "not-ready", "not sales-ready after the decision nurture")
    await up(log, 2)
    await add(log, "a", "a", "mql-points", "adjust_score", "40", "MQL hand-off: score, stage, campaign, task, rep")
    await add(log, "a", "a", "mql-stage", "set_stage", "decision")
    await add(log, "a", "a", "mql-campaign", "add_to_campaign", "Decision Stage Nurture", "Responded")
    await add(log, "a", "a", "mql-task", "create_task", "MQL from decision-stage nurture: call within 24h",
              "Read the case study and used the ROI calculator; see the engagement summary in nurture.")
    await add(log, "a", "a", "mql-notify", "notify_rep", "New MQL from the decision-stage nurture")
    await add(log, "a", "e", "handed-off", "MQL hand-off")


def templates_of(sample_text: str) -> str:
    """The inline templates of a sample file as the `f3` text area takes them."""
    from ..console.sequence_settings import templates_text
    from ..sequences.codec import parse_text

    defn = parse_text(sample_text).definition
    return templates_text(defn.templates) if defn is not None else ""


Build = Callable[[KeyLog, str], Awaitable[None]]
#: sample name → its build (called with the sample's inline templates as YAML)
BUILDS: dict[str, Build] = {
    "cold-lead-reengagement": cold_lead_reengagement,
    "consideration-nurture": consideration_nurture,
    "decision-stage": decision_stage,
}
