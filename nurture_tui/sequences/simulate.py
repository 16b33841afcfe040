"""Dry runs of a sequence: one lead through a version on a VirtualClock (a timeline), or a sample of a
segment through the graph (predicted reach per node). Both only read the store; nothing is written.

One lead (`simulate_lead`): the same rules the engine applies — the lead's time zone by the fallback
chain, send windows and holidays, frequency caps (counting the lead's real sends of the last week),
suppression, deterministic split arms — with each decision explained: a branch rule evaluated on the
lead's real data by the segment compiler at the simulated time, or the outcome given with `outcomes`.
`wait_for` steps take the given outcome, else "no" (nothing is known about the future).

A segment (`simulate_segment`): per-node expected reach for a sample of members. Data branches use
the members' real data (evaluated now); `wait_for` steps use engagement rates observed in the activity
table (opens / clicks / … per email sent, per template where the event names a send step), and fall
back to stated industry-typical rates when nothing has been sent yet.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, func, select

from ..clock import VirtualClock
from ..config import Settings
from ..errors import NotFoundError, ValidationError
from ..store.tables import account, activity, lead, outbox, template
from . import timing
from .adaptive import decide, describe, settings_of
from .adaptive_store import evidence, sto_histograms
from .model import CompiledSequence, Node, choose_arm, compile_definition, format_duration, parse_duration
from .send_time import best_time, describe_histogram
from .service import draft_definition, get_row, load_version

MAX_STEPS = 500
MAX_HORIZON = timedelta(days=3 * 365)
#: Used for wait_for predictions when the store has no sends to measure from (typical B2B rates).
DEFAULT_RATES = {"open": 0.25, "click": 0.035, "form": 0.01, "page_view": 0.04, "reply": 0.005,
                 "campaign_response": 0.01, "unsubscribe": 0.003}


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime  # UTC
    local: str  # `at` in the lead's time zone, formatted
    node_id: str | None
    kind: str  # node kind, or start / goal / exit_rule / done / stopped
    text: str
    why: str = ""

    def line(self) -> str:
        head = f"{self.local}  {self.node_id or '':<20} {self.text}"
        return f"{head}  — {self.why}" if self.why else head


@dataclass
class LeadSimulation:
    sequence: str
    version: str  # "v3" or "draft"
    email: str
    timezone: str
    country: str | None
    events: list[TimelineEvent] = field(default_factory=list)
    outcome: str = "done"  # done / exited / goal / stopped
    sends: int = 0

    def lines(self) -> list[str]:
        head = (f"{self.sequence} ({self.version}) for {self.email} — times in {self.timezone}"
                f"{', holidays: ' + self.country if self.country else ''}")
        return [head, *(e.line() for e in self.events)]


class Outcomes:
    """Outcomes for decisions: `id=value` targets a step, bare values are used in order.

    Values: yes / no for wait_for and branch, an arm name for split, `auto` (or `-`) to decide as
    the simulator would without one."""

    def __init__(self, spec: str | Iterable[str] | None) -> None:
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec or []) if s.strip()]
        self.targeted: dict[str, str] = {}
        self.ordered: deque[str] = deque()
        for item in items:
            if "=" in item:
                node, value = item.split("=", 1)
                self.targeted[node.strip()] = value.strip().lower()
            else:
                self.ordered.append(item.lower())

    def take(self, node: Node) -> str | None:
        value = self.targeted.get(node.id)
        if value is None and self.ordered:
            value = self.ordered.popleft()
        if value in (None, "auto", "-"):
            return None
        if node.kind in ("wait_for", "branch") and value not in ("yes", "no"):
            raise ValidationError(f"--outcomes ({node.id})", f"expected yes or no for a {node.kind}, got {value!r}")
        if node.kind == "split" and value not in {name for name, _w, _f in node.arms}:
            arms = ", ".join(name for name, _w, _f in node.arms)
            raise ValidationError(f"--outcomes ({node.id})", f"no arm {value!r} (arms: {arms})")
        return value


def _compiled(conn: Connection, name: str, draft: bool) -> tuple[CompiledSequence, str, int]:
    row = get_row(conn, name)
    if draft:
        return compile_definition(draft_definition(conn, name)), "draft", int(row["id"])
    if row["current_version_id"] is None:
        raise NotFoundError(f"sequence {name!r} is not published yet; use --draft or publish it first")
    compiled = load_version(conn, row["current_version_id"])
    from ..store.tables import sequence_version

    number = conn.execute(select(sequence_version.c.number)
                          .where(sequence_version.c.id == row["current_version_id"])).scalar_one()
    return compiled, f"v{number}", int(row["id"])


def _fmt(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")


def _rule_of(node: Node) -> Any:
    spec = node.step.branch
    assert spec is not None
    return spec.rule if spec.rule is not None else {"in_segment": spec.segment}


def _render_rule(rule: Any) -> str:
    from ..segments.rules import parse_rule, render

    try:
        return render(parse_rule(rule))
    except Exception:
        return str(rule)


def simulate_lead(
    conn: Connection, name: str, email: str, *, settings: Settings, start: datetime,
    outcomes: str | Iterable[str] | None = None, draft: bool = False,
) -> LeadSimulation:
    """Run one lead through the sequence from `start` (naive = the lead's local time)."""
    compiled, version, sequence_id = _compiled(conn, name, draft)
    defn = compiled.definition
    lead_row = conn.execute(select(lead).where(lead.c.email == email.strip().lower())).mappings().first()
    if lead_row is None:
        raise NotFoundError(f"--lead {email}: no lead with that email")
    lead_id = int(lead_row["id"])
    acct = None
    if lead_row["account_id"] is not None:
        acct = conn.execute(select(account).where(account.c.id == lead_row["account_id"])).mappings().first()
    window = defn.send_window
    tz = timing.lead_timezone(lead_row, acct, window)
    country = timing.lead_country(lead_row, acct, window)
    code = timing.country_code(country) if (window and window.holidays) else None
    if start.tzinfo is None:  # a wall-clock start is read in the lead's time zone
        start = start.replace(tzinfo=tz)
    sim = LeadSimulation(name, version, lead_row["email"], str(tz), code)
    run = _LeadRun(conn, settings, compiled, sequence_id, lead_id, sim, VirtualClock(start), tz, country,
                   Outcomes(outcomes))
    run.sent = list(conn.execute(select(outbox.c.created_at).where(
        outbox.c.lead_id == lead_id, outbox.c.created_at > start - timedelta(days=7))).scalars())
    run.add(None, "start", f"enters {name} ({version})")
    node_id = compiled.start
    for _ in range(MAX_STEPS):
        if node_id is None:
            run.add(None, "done", "reaches the end of the sequence")
            return sim
        if run.clock.now() - start > MAX_HORIZON or run.leaves():
            break
        node_id = run.step(compiled.nodes[node_id])
        if sim.outcome != "done":
            return sim
    if sim.outcome == "done":
        run.add(None, "stopped", f"stopped after {MAX_STEPS} steps or {MAX_HORIZON.days} days (a loop?)")
        sim.outcome = "stopped"
    return sim


@dataclass
class _LeadRun:
    """One lead's simulated run: the state the steps share."""

    conn: Connection
    settings: Settings
    compiled: CompiledSequence
    sequence_id: int
    lead_id: int
    sim: LeadSimulation
    clock: VirtualClock
    tz: ZoneInfo
    country: str | None
    given: Outcomes
    sent: list[datetime] = field(default_factory=list)  # send times, for the caps

    def add(self, node_id: str | None, kind: str, text: str, why: str = "") -> None:
        now = self.clock.now()
        self.sim.events.append(TimelineEvent(now, _fmt(now, self.tz), node_id, kind, text, why))

    def check(self, rule: Any) -> bool:
        from ..segments.compiler import matches

        return matches(self.conn, rule, self.lead_id, self.clock.now(),
                       half_life_days=self.settings.scoring.half_life_days)

    def leaves(self) -> bool:
        """Goal and exit rules, checked on the lead's data before every step (sets the outcome)."""
        defn = self.compiled.definition
        if defn.goal is not None and self.check(defn.goal):
            self.add(None, "goal", "meets the goal: leaves the sequence as a conversion", _render_rule(defn.goal))
            self.sim.outcome = "goal"
            return True
        for rule in defn.exit_when:
            if self.check(rule):
                self.add(None, "exit_rule", "matches an exit rule: leaves the sequence", _render_rule(rule))
                self.sim.outcome = "exited"
                return True
        return False

    def step(self, node: Node) -> str | None:
        """Run one node; returns the next node id (sim.outcome changes when the run ends here)."""
        step = node.step
        if step.send is not None:
            return self.send(node)
        if step.wait is not None:
            until = timing.wait_until(step.wait, self.tz, self.clock.now())
            what = step.wait.duration or (str(step.wait.until) if step.wait.until else
                                          f"next {step.wait.weekday} {step.wait.time or '09:00'}")
            self.add(node.id, "wait", f"waits {what}", f"until {_fmt(until, self.tz)}")
            self.clock.set(until)
            return node.next
        if step.wait_for is not None:
            return self.wait_for(node)
        if step.branch is not None:
            outcome = self.given.take(node)
            why = "given outcome"
            if outcome is None:
                rule = _rule_of(node)
                outcome = "yes" if self.check(rule) else "no"
                why = f"rule on the lead's data: {_render_rule(rule)}"
            self.add(node.id, "branch", f"branch: {outcome}", why)
            return node.yes if outcome == "yes" else node.no
        if step.split is not None:
            arm = self.given.take(node)
            why = "given outcome"
            if arm is None and step.split.adaptive:
                arm, why = self.adaptive_arm(node)
            elif arm is None:
                arm = choose_arm(node, self.lead_id)
                why = "deterministic per lead (" + "/".join(f"{n} {w}%" for n, w, _f in node.arms) + ")"
            self.add(node.id, "split", f"split: arm {arm}", why)
            return self.compiled.successor(node.id, arm)
        if step.action is not None:
            self.add(node.id, "action", _describe_action(step.action), "not executed in a simulation")
            return node.next
        assert step.exit is not None
        self.add(node.id, "exit", f"exits: {step.exit.reason}")
        self.sim.outcome = "exited"
        return None

    def adaptive_arm(self, node: Node) -> tuple[str, str]:
        """The arm the engine would pick for this lead at the simulated time, from the data stored now,
        explained by the posteriors it was picked on."""
        assert node.step.split is not None
        settings = settings_of(node.step.split)
        names = [name for name, _w, _f in node.arms]
        audience, allocs = evidence(self.conn, self.sequence_id, node.id, names, settings, [self.lead_id],
                                    self.clock.now())
        alloc = allocs[audience[self.lead_id]]
        arm, how = decide(alloc, settings.seed, node.id, self.lead_id)
        return arm, f"adaptive ({settings.metric} within {format_duration(settings.window)}): " + \
            describe({**alloc.to_json(), "how": how})

    def optimal_time(self, node: Node, plain: datetime) -> tuple[datetime, str]:
        """Send-time optimisation as the engine does it, with the histogram it used."""
        defn = self.compiled.definition
        entry_segment = defn.entry.segment if defn.entry.type == "segment" else None
        hist = sto_histograms(self.conn, [self.lead_id], lambda _lid: self.tz, defn.send_window, entry_segment,
                              plain, {})[self.lead_id]
        at = best_time(hist, plain, self.tz, defn.send_window, defn.caps, self.country, self.sent)
        how = "at once" if at == plain else f"moved from {_fmt(plain, self.tz)}"
        return at, f"optimal send time {how}: {describe_histogram(hist.to_json())}"

    def send(self, node: Node) -> str | None:
        from ..mail.suppression import suppressed_ids

        spec = node.step.send
        assert spec is not None
        defn = self.compiled.definition
        category = spec.category or defn.category or self.conn.execute(
            select(template.c.category).where(template.c.name == spec.template)).scalar() or "marketing"
        if self.lead_id in suppressed_ids(self.conn, [self.lead_id], category, self.settings.compliance.required()):
            if defn.suppressed == "exit":
                self.add(node.id, "send", f"suppressed for {category!r}: exits", "sequence setting suppressed: exit")
                self.sim.outcome = "exited"
                return None
            self.add(node.id, "send", f"skips {spec.template} (suppressed for {category!r})",
                     "opted out, bounced, unsubscribed or suppressed; carries on")
            return node.next
        now = self.clock.now()
        slot = timing.next_allowed_send(defn.send_window, defn.caps, self.tz, self.country, now, self.sent)
        if slot is None:
            self.add(node.id, "send", f"skips {spec.template}", "outside the send window and the policy is skip")
            return node.next
        why = _deferral(defn, self.tz, self.country, now, slot, self.sent)
        if spec.send_time == "optimal":
            slot, sto_why = self.optimal_time(node, slot)
            why = "; ".join(w for w in (why, sto_why) if w)
        self.clock.set(slot)
        self.sent.append(slot)
        self.sim.sends += 1
        subject = _subject(self.conn, self.settings, self.lead_id, spec.template, category, self.sequence_id,
                           node.id, slot)
        self.add(node.id, "send", f"sends {spec.template}: {subject}", why)
        return node.next

    def wait_for(self, node: Node) -> str | None:
        spec = node.step.wait_for
        assert spec is not None
        window = parse_duration(spec.window) if spec.window else timedelta(0)
        events = ", ".join(e.kind + (f" of {e.node}" if e.node else "") + (f" {e.url}" if e.url else "")
                           for e in spec.events)
        outcome = self.given.take(node)
        if outcome == "yes":
            if spec.mode == "exactly":
                self.clock.set(self.clock.now() + window)
                why = "given outcome (held to the end of the window: mode exactly)"
            else:
                why = "given outcome (moves on at once: mode up_to)"
            self.add(node.id, "wait_for", f"waits for {events}: yes", why)
            return node.yes
        reason = "given outcome" if outcome == "no" else "no outcome given: assumes no engagement"
        self.clock.set(self.clock.now() + window)
        self.add(node.id, "wait_for", f"waits {spec.window} for {events}: no", reason)
        return node.no


def _deferral(defn: Any, tz: ZoneInfo, country: str | None, now: datetime, slot: datetime,
              sent: list[datetime]) -> str:
    if slot == now:
        return ""
    reasons = []
    window = defn.send_window
    if window is not None:
        local_day = now.astimezone(tz).date()
        if window.holidays and timing.is_holiday(country, local_day):
            reasons.append(f"{local_day} is a holiday in {timing.country_code(country)}")
        elif timing.next_send_time(window, tz, country, now) != now:
            reasons.append(f"outside the send window ({'/'.join(window.days)} {window.start}–{window.end})")
    if timing.cap_release(defn.caps, sent, now) != now:
        reasons.append("frequency cap reached")
    return "deferred: " + ("; ".join(reasons) or "next window") + f" (was {_fmt(now, tz)})"


def _subject(conn: Connection, settings: Settings, lead_id: int, template_name: str, category: str,
             sequence_id: int, node_id: str, now: datetime) -> str:
    """The subject exactly as the composer would render it for this lead."""
    from ..mail.compose import SendRequest, compose_outbox_rows

    rows = compose_outbox_rows(conn, [SendRequest(lead_id, template_name, category, None, sequence_id, node_id,
                                                  f"simulate:{lead_id}:{node_id}")], settings, now)
    if not rows:
        return "(lead not found)"
    row = rows[0]
    if row["status"] == "failed":
        return f"(not renderable: {row['last_error']})"
    return f"“{row['subject']}”"


def _describe_action(a: Any) -> str:
    t = a.type
    if t == "update_field":
        return f"sets {a.field} = {a.value!r}"
    if t == "set_stage":
        return f"sets stage to {a.value}"
    if t == "adjust_score":
        return f"adjusts score by {a.points:+g}"
    if t == "add_to_campaign":
        return f"adds to campaign {a.campaign!r}" + (f" as {a.status!r}" if a.status else "")
    if t == "assign_owner":
        return f"assigns owner {a.owner}"
    if t == "create_task":
        return f"creates a task: {a.subject}"
    if t == "notify_rep":
        return "notifies the owner" + (f": {a.subject}" if a.subject else "")
    if t in ("add_tag", "remove_tag"):
        return f"{'adds' if t == 'add_tag' else 'removes'} tag {a.tag!r}"
    if t == "enroll":
        return f"enrolls in {a.sequence}"
    return f"calls webhook {a.url}"


# ---------------------------------------------------------------------------------------------------
# A segment sample: predicted reach per node


@dataclass(frozen=True)
class NodeReach:
    node_id: str
    kind: str
    label: str
    reach: float  # expected number of sampled leads reaching the node
    share: float  # reach / sample size (leads leaving at entry included in the denominator)
    basis: str = ""  # how the node's outcome was predicted


@dataclass
class SegmentSimulation:
    sequence: str
    version: str
    segment: str
    sample: int
    members: int
    nodes: list[NodeReach] = field(default_factory=list)
    finished: float = 0.0  # expected leads reaching the end (or an exit)
    left_at_entry: int = 0  # sampled leads that already meet the goal or an exit rule

    def lines(self) -> list[str]:
        out = [f"{self.sequence} ({self.version}) — sample of {self.sample} of {self.members} leads in "
               f"segment {self.segment!r}",
               f"{self.left_at_entry} already meet the goal or an exit rule and leave at once",
               f"{'node':<24} {'kind':<9} {'reach':>9} {'share':>7}  basis"]
        for n in self.nodes:
            out.append(f"{n.node_id:<24} {n.kind:<9} {n.reach:>9.1f} {n.share:>6.1%}  {n.basis}".rstrip())
        return out


def event_rate(conn: Connection, kind: str, *, template_id: int | None = None,
               url: str | None = None) -> tuple[float, bool]:
    """Observed `kind` events per email sent (of one template, matching a URL glob): (rate, measured?).

    With no sends recorded the rate is DEFAULT_RATES[kind] and measured is False."""
    from ..segments.compiler import url_like

    scope: list[ColumnElement[bool]] = [activity.c.bot.is_(False)]
    if template_id is not None:
        scope.append(activity.c.template_id == template_id)
    sent = int(conn.execute(select(func.count()).where(activity.c.kind == "sent", *scope)).scalar_one())
    if sent == 0:
        return DEFAULT_RATES.get(kind, 0.0), False
    conds: list[ColumnElement[bool]] = [activity.c.kind == kind, *scope]
    if url:
        conds.append(activity.c.url.like(url_like(url), escape="\\"))
    hits = int(conn.execute(select(func.count()).where(and_(*conds))).scalar_one())
    return min(1.0, hits / sent), True


def simulate_segment(
    conn: Connection, name: str, segment_name: str, *, settings: Settings, now: datetime, n: int = 1000,
    draft: bool = False,
) -> SegmentSimulation:
    from ..segments.compiler import count, matching_ids, members

    if n < 1:
        raise ValidationError("--n", "must be ≥ 1")
    compiled, version, sequence_id = _compiled(conn, name, draft)
    half_life = settings.scoring.half_life_days
    rule = {"in_segment": segment_name}
    total = count(conn, rule, now, half_life_days=half_life)
    ids = _spread(list(members(conn, rule, now, half_life_days=half_life)), n)
    sim = SegmentSimulation(name, version, segment_name, len(ids), total)
    # leads who already meet the goal or an exit rule leave at once (as the engine's checks would)
    leaving: set[int] = set()
    defn = compiled.definition
    for rule_data in ([defn.goal] if defn.goal is not None else []) + list(defn.exit_when):
        leaving |= matching_ids(conn, rule_data, ids, now, half_life_days=half_life)
    sim.left_at_entry = len(leaving)
    ids = [i for i in ids if i not in leaving]
    if not ids:
        return sim
    reach: dict[str, float] = defaultdict(float)
    basis: dict[str, str] = {}
    visits: dict[str, int] = defaultdict(int)
    template_ids = {r.name: r.id for r in conn.execute(select(template.c.id, template.c.name))}
    rates: dict[str, tuple[float, str]] = {}
    queue: deque[tuple[str | None, dict[int, float]]] = deque([(compiled.start, dict.fromkeys(ids, 1.0))])
    while queue:
        node_id, mass = queue.popleft()
        mass = {k: v for k, v in mass.items() if v > 1e-9}
        if not mass:
            continue
        if node_id is None:
            sim.finished += sum(mass.values())
            continue
        visits[node_id] += 1
        if visits[node_id] > 5:  # a loop: stop propagating after a few rounds
            continue
        node = compiled.nodes[node_id]
        reach[node_id] += sum(mass.values())
        if node.kind == "exit":
            sim.finished += sum(mass.values())
        elif node.kind == "branch":
            hits = matching_ids(conn, _rule_of(node), list(mass), now, half_life_days=half_life)
            basis[node_id] = "lead data now"
            queue.append((node.yes, {k: v for k, v in mass.items() if k in hits}))
            queue.append((node.no, {k: v for k, v in mass.items() if k not in hits}))
        elif node.kind == "wait_for":
            if node_id not in rates:
                rates[node_id] = _wait_for_rate(conn, compiled, node, template_ids)
            p, how = rates[node_id]
            basis[node_id] = how
            queue.append((node.yes, {k: v * p for k, v in mass.items()}))
            queue.append((node.no, {k: v * (1 - p) for k, v in mass.items()}))
        elif node.kind == "split" and node.step.split is not None and node.step.split.adaptive:
            arms: dict[str, dict[int, float]] = defaultdict(dict)
            split_settings = settings_of(node.step.split)
            names = [name for name, _w, _f in node.arms]
            audience, allocs = evidence(conn, sequence_id, node.id, names, split_settings, sorted(mass), now)
            for lid, w in mass.items():  # each lead's mass by its audience's expected traffic shares
                for view in allocs[audience[lid]].arms:
                    arms[view.name][lid] = w * view.share
            basis[node_id] = "adaptive: current allocation per audience (" + "; ".join(
                f"{a}: " + "/".join(f"{v.name} {v.share:.0%}" for v in alloc.arms) for a, alloc in allocs.items()) + ")"
            for arm_name, _w, first in node.arms:
                queue.append((first, arms.get(arm_name, {})))
        elif node.kind == "split":
            arms = defaultdict(dict)  # (the adaptive branch above declares it)
            for lid, w in mass.items():
                arms[choose_arm(node, lid)][lid] = w
            basis[node_id] = "deterministic per lead"
            for arm_name, _w, first in node.arms:
                queue.append((first, arms.get(arm_name, {})))
        else:
            queue.append((node.next, mass))
    for nid, node in compiled.nodes.items():
        r = reach.get(nid, 0.0)
        sim.nodes.append(NodeReach(nid, node.kind, node.step.label or "", r, r / len(ids), basis.get(nid, "")))
    return sim


def _wait_for_rate(conn: Connection, compiled: CompiledSequence, node: Node,
                   template_ids: dict[str, int]) -> tuple[float, str]:
    """P(at least one of the node's events happens in the window), from observed rates."""
    spec = node.step.wait_for
    assert spec is not None
    miss = 1.0
    parts = []
    for ev in spec.events:
        tid = None
        if ev.node and ev.node in compiled.nodes:
            send = compiled.nodes[ev.node].step.send
            tid = template_ids.get(send.template) if send else None
        elif ev.template:
            tid = template_ids.get(ev.template)
        p, measured = event_rate(conn, ev.kind, template_id=tid, url=ev.url)
        if not measured and tid is not None:  # nothing sent with this template yet: use all emails
            p, measured = event_rate(conn, ev.kind, url=ev.url)
        miss *= 1 - p
        parts.append(f"{ev.kind}{' ' + ev.url if ev.url else ''} {p:.1%} {'observed' if measured else 'assumed'}")
    return 1 - miss, "; ".join(parts)


def _spread(ids: list[int], n: int) -> list[int]:
    """Up to n ids spread evenly over the whole (id-ordered) membership."""
    if len(ids) <= n:
        return ids
    step = len(ids) / n
    return [ids[int(i * step)] for i in range(n)]
