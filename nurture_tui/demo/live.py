"""The live demo: the real engine running on a fast virtual clock, sending real mail to a local sink,
with simulated recipients reacting to what they receive.

`DemoRuntime(ws, speed)`:
- swaps the workspace clock for a `VirtualClock` running `speed`× (default: a demo day per real minute);
- starts an aiosmtpd sink on a free loopback port and points the mail settings at it;
- starts an emulated Salesforce org holding the demo's people (`salesforce.demo.start_demo_org`) and
  points the sync at it, so the scheduler's sync job links leads and pushes scores, MQL tasks and
  campaign members every `DEMO_SYNC_SECONDS`;
- prepares the workspace once (`prepare`): every sample sequence in `sequences/` applied and published,
  default scoring rules installed; segment-entry sequences then enrol matching leads through the
  scheduler's own entry sweep;
- runs the engine's scheduler (tick, dispatch, entry, …) plus one more fixed job, the engagement
  simulator: it reads newly *sent* outbox rows and plans each recipient's reaction by persona (economic
  buyers open least, practitioners click most; a few scanner "opens" flagged as bots; rare unsubscribes),
  then records the events whose virtual time has come through `engine.events.record_events`, exactly
  like the tracking web app would.

The TUI starts the runtime after its first paint (`nurture demo`); tests and `--no-tui` use it headless.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from ..activity import ActivityEvent
from ..clock import Clock, VirtualClock
from ..sequences.library import sequences_dir
from ..store import meta
from ..store.engine import write_tx
from ..store.tables import lead, outbox
from ..workspace import Workspace
from . import data as D
from .mqls import MQL_JOB, MQL_SECONDS, MqlArrivals

if TYPE_CHECKING:
    from ..engine.scheduler import NurtureScheduler

log = logging.getLogger("nurture.demo")

#: A demo day per real minute.
DEFAULT_SPEED = 1440.0
SIMULATOR_JOB = "demo-engagement"
SIMULATOR_SECONDS = 1.0
PREPARED_KEY = "demo_prepared"

#: Per persona: (open rate, click rate given an open, unsubscribe rate per send).
REACTIONS = {
    "economic_buyer": (0.22, 0.12, 0.004),
    "technical_evaluator": (0.36, 0.26, 0.003),
    "practitioner": (0.46, 0.34, 0.002),
}
DEFAULT_REACTION = (0.30, 0.20, 0.003)
BOT_OPEN_RATE = 0.03


#: Saved segments the demo starts with (the ABM sample sequence enters from `named-accounts`).
DEMO_SEGMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "named-accounts": ("People at ABM named accounts", {"field": "account.named_account", "eq": True}),
    "hot-leads": ("Engaged and a good fit", {"all": [{"field": "score", "ge": 30}, {"field": "grade", "ge": "B-"}]}),
    "decision-makers": ("Economic buyers", {"field": "persona", "eq": "economic_buyer"}),
    "emea": ("Leads in EMEA countries", {"field": "country", "in": list(D.REGIONS["EMEA"])}),
    "engaged-this-week": ("Opened or clicked in the last 7 days", {"activity": ["open", "click"], "within": "7d"}),
}


@dataclass
class PrepareResult:
    sequences: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file → why it was not applied


def prepare(ws: Workspace, *, directory: Path | None = None) -> PrepareResult:
    """Save the demo segments, install the default scoring rules, apply and publish every sample
    sequence (idempotent: a sequence whose published version already matches its file is left alone)."""
    from ..errors import NurtureError
    from ..scoring import rules
    from ..segments import service as segments
    from ..sequences import service

    result = PrepareResult()
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        rules.ensure_default_rules(conn)
        for name, (description, rule) in DEMO_SEGMENTS.items():
            if segments.find_segment(conn, name) is None:
                segments.save_segment(conn, name, rule, user=ws.user, now=now, description=description)
    for path in sorted((directory or sequences_dir()).glob("*.yaml")):
        try:
            with write_tx(ws.engine) as conn:
                applied = service.apply_file(conn, path, user=ws.user, now=now)
                name = applied.name
                service.publish(conn, name, user=ws.user, now=now)
            result.sequences.append(name)
        except NurtureError as exc:  # a broken sample must not keep the demo from starting
            result.skipped[path.name] = str(exc).splitlines()[0]
            log.warning("demo: skipped %s: %s", path.name, exc)
    with write_tx(ws.engine) as conn:
        meta.put(conn, PREPARED_KEY, {"sequences": result.sequences, "at": now.isoformat()})
    return result


class EngagementSimulator:
    """Simulated recipients. `run(ws)` is a scheduler job: plan reactions to newly sent mail, then record
    every planned event whose (virtual) time has come. Deterministic for a given seed and send order."""

    def __init__(self, ws: Workspace, *, seed: int = 42) -> None:
        self.ws = ws
        self.rnd = random.Random(seed)
        self._pending: list[tuple[datetime, int, ActivityEvent]] = []
        self._seq = itertools.count()
        self._seen: set[int] = set()
        self._lock = threading.Lock()
        with ws.engine.connect() as conn:
            self._floor = int(conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one())
        self.recorded = 0
        self.planned = 0

    def run(self, _ws: Workspace | None = None) -> int:
        """Returns how many events were recorded."""
        with self._lock:
            now = self.ws.clock.now()
            with write_tx(self.ws.engine) as conn:
                self._plan(conn)
                due: list[ActivityEvent] = []
                while self._pending and self._pending[0][0] <= now:
                    due.append(heapq.heappop(self._pending)[2])
                if due:
                    self._record(conn, due, now)
            self.recorded += len(due)
            return len(due)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _plan(self, conn: Any) -> None:
        unfinished = conn.execute(select(func.min(outbox.c.id))
                                  .where(outbox.c.status.in_(("queued", "sending")))).scalar()
        rows = conn.execute(
            select(outbox.c.id, outbox.c.lead_id, outbox.c.template_id, outbox.c.sequence_id, outbox.c.node_id,
                   outbox.c.category, outbox.c.sent_at, lead.c.persona)
            .join(lead, lead.c.id == outbox.c.lead_id)
            .where(outbox.c.status == "sent", outbox.c.id > self._floor)
            .order_by(outbox.c.id).limit(5000)
        ).all()
        top = self._floor
        for row in rows:
            top = max(top, row.id)
            if row.id in self._seen:
                continue
            self._seen.add(row.id)
            for event in self.reactions(row):
                heapq.heappush(self._pending, (event.at or self.ws.clock.now(), next(self._seq), event))
                self.planned += 1
        # Every outbox row below the oldest unfinished one is final: nothing below it can still turn "sent".
        settled = top if unfinished is None else min(top, int(unfinished) - 1)
        if settled > self._floor:
            self._floor = settled
            self._seen = {i for i in self._seen if i > settled}

    def reactions(self, row: Any) -> list[ActivityEvent]:
        """What one recipient does with one email, as events with their (future) times."""
        rnd = self.rnd
        p_open, p_click, p_unsub = REACTIONS.get(row.persona or "", DEFAULT_REACTION)
        sent_at = row.sent_at or self.ws.clock.now()
        lead_id = int(row.lead_id)

        def of_mail(kind: str, at: datetime, **extra: Any) -> ActivityEvent:
            return ActivityEvent(lead_id, kind, at, sequence_id=row.sequence_id, node_id=row.node_id,
                                 template_id=row.template_id, outbox_id=int(row.id), **extra)

        out: list[ActivityEvent] = []
        if rnd.random() < BOT_OPEN_RATE:  # a mail scanner fetches the pixel within seconds
            out.append(of_mail("open", sent_at + timedelta(seconds=2 + rnd.random() * 8), bot=True,
                               meta={"ua": "link-scanner"}))
        if rnd.random() >= p_open:
            return out
        at = sent_at + timedelta(seconds=60 + rnd.expovariate(1 / 10800))
        out.append(of_mail("open", at))
        if rnd.random() < p_unsub:
            out.append(of_mail("unsubscribe", at + timedelta(seconds=30), meta={"category": row.category}))
            return out
        if rnd.random() >= p_click:
            return out
        at += timedelta(seconds=10 + rnd.expovariate(1 / 600))
        url = rnd.choices(D.URLS, weights=D.URL_WEIGHTS)[0]
        out.append(of_mail("click", at, url=url))
        out.append(ActivityEvent(lead_id, "page_view", at + timedelta(seconds=2), url=url))
        if rnd.random() < 0.25:
            out.append(ActivityEvent(lead_id, "page_view", at + timedelta(seconds=90),
                                     url="https://www.example.com/pricing"))
        if rnd.random() < 0.05:
            form = rnd.choices(D.FORMS, weights=D.FORM_WEIGHTS)[0]
            out.append(ActivityEvent(lead_id, "form", at + timedelta(seconds=240), meta={"form": form}))
        return out

    def _record(self, conn: Connection, events: list[ActivityEvent], now: datetime) -> None:
        from ..engine.events import record_events  # with the scheduler, after the TUI's first paint
        from ..mail import subscriptions

        for event in events:
            if event.kind == "unsubscribe":
                category = (event.meta or {}).get("category") or "marketing"
                subscriptions.set_category(conn, event.lead_id, category, False, now)
        record_events(conn, events, now, self.ws.settings)


DEMO_SYNC_SECONDS = 20.0  # the demo org syncs more often than a real one (Pardot's connector: 2 min)
DEMO_ORG_MAX_LEADS = 200_000  # every lead of a default-sized demo exists in the org, so every push lands


def _start_org(ws: Workspace) -> Any:
    """An emulated Salesforce org holding the demo's people, with the sync pointed at it; None (and a log
    line) if it cannot start — the demo then runs without Salesforce rather than not at all."""
    from ..salesforce.demo import start_demo_org

    try:
        org = start_demo_org(ws, max_leads=DEMO_ORG_MAX_LEADS)
    except Exception:
        log.exception("the emulated Salesforce org did not start; the demo runs without sync")
        return None
    ws.settings.salesforce.sync_interval_seconds = min(ws.settings.salesforce.sync_interval_seconds,
                                                       DEMO_SYNC_SECONDS)
    return org


class DemoRuntime:
    """Scheduler + engagement simulator + SMTP sink on a fast virtual clock (see the module doc)."""

    def __init__(self, ws: Workspace, speed: float = DEFAULT_SPEED, *, seed: int = 42,
                 start_at: datetime | None = None) -> None:
        self.ws = ws
        self.speed = speed
        self.seed = seed
        self.clock = VirtualClock(start_at or ws.clock.now(), speed=0.0)
        self._previous_clock: Clock = ws.clock
        self.sink: Any = None
        self.scheduler: NurtureScheduler | None = None
        self.org: Any = None  # the emulated Salesforce org the demo syncs with
        self.simulator: EngagementSimulator | None = None
        self.arrivals: MqlArrivals | None = None  # hot leads engaging until they qualify (a live MQL queue)
        self.prepared: PrepareResult | None = None
        self._started = False

    def start(self) -> None:
        """Prepare the workspace (first run only), start the sink, the scheduler and the simulator, then
        let the virtual clock run."""
        from ..engine.scheduler import Job
        from ..mail.sink import SmtpSink
        from ..wiring import build_scheduler  # the engine and its areas load when the runtime starts

        if self._started:
            return
        self.ws.clock = self.clock
        with self.ws.engine.connect() as conn:
            done = meta.get(conn, PREPARED_KEY)
        if not done:
            self.prepared = prepare(self.ws)
        self.sink = SmtpSink().start()
        self.ws.settings.mail.smtp_url = self.sink.url
        self.org = _start_org(self.ws)
        self.simulator = EngagementSimulator(self.ws, seed=self.seed)
        self.arrivals = MqlArrivals(self.ws, seed=self.seed)
        self.scheduler = build_scheduler(self.ws, Job(SIMULATOR_JOB, self.simulator.run, SIMULATOR_SECONDS),
                                         Job(MQL_JOB, self.arrivals.run, MQL_SECONDS))
        self.clock.set_speed(self.speed)
        self.scheduler.start()
        self._started = True

    def stop(self) -> None:
        from ..mail.dispatch import close_dispatcher

        if not self._started:
            return
        self._started = False
        try:
            if self.scheduler is not None:
                self.scheduler.stop()
        finally:
            close_dispatcher(self.ws)
            self.clock.set_speed(0.0)
            if self.sink is not None:
                self.sink.stop()
            if self.org is not None:
                self.org.stop()
                self.org = None
            self.ws.clock = self._previous_clock

    def state(self) -> dict[str, Any]:
        """For the TUI header: the scheduler's state plus the demo's own figures."""
        base = self.scheduler.state() if self.scheduler is not None else {"role": "stopped"}
        return {**base, "demo_speed": self.speed, "mail_received": self.sink.count if self.sink else 0,
                "events_recorded": self.simulator.recorded if self.simulator else 0}

    def __enter__(self) -> DemoRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
