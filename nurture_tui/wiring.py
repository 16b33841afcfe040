"""The composition root: where the engine meets the areas around it. Every shell that runs the engine
(`nurture daemon`, the console's in-process scheduler, `nurture demo`) builds its scheduler here.

Two kinds of wiring, both explicit and visible to import-linter:

- Inside a transaction the engine calls its collaborators as plain functions imported directly — segments
  (`parse_rule`, `matching_ids`, `where_clause`, `members`, `refresh_for_leads`), scoring
  (`apply_activities`, `adjust_score`, `regrade`), mail (`suppressed_ids`, `compose_outbox_rows`) and
  Salesforce (`salesforce.outbox`). Each is an import at the top of the engine module that uses it, so a
  renamed or missing function is an ImportError when the engine loads, never a step skipped in silence.
- Periodic work other areas own — outbox dispatch, Salesforce sync, score decay, plus extras such as the
  demo's engagement simulator — reaches the scheduler as `SchedulerJobs`, built here. The scheduler
  imports none of those areas; it cannot be constructed without each required job.

Activities flow the other way: tracking, the events API, dispatch, unsubscribes, the Salesforce pull,
bulk lead actions and the simulator hand `ActivityEvent`s to `engine.events.record_events`, which sits on
top of the engine's entry and lifecycle modules and of scoring and segments.
"""

from __future__ import annotations

from functools import partial

from .config import Settings
from .engine.scheduler import Job, NurtureScheduler, SchedulerJobs
from .mail.dispatch import dispatch_due
from .salesforce.sync import scheduler_hook as sync_job
from .salesforce.sync import sync_tick
from .scoring.service import decay_job
from .workspace import Workspace

DISPATCH_SECONDS = 2.0
DISPATCH_LIMIT = 1000  # messages per dispatch run (one run stays short; the next comes 2 s later)
DECAY_SECONDS = 3600.0


def scheduler_jobs(settings: Settings, *extra: Job) -> SchedulerJobs:
    """The fixed jobs of a leader: dispatch, sync (at the configured interval), decay, then `extra`."""
    return SchedulerJobs(
        dispatch=Job("dispatch", partial(dispatch_due, limit=DISPATCH_LIMIT), DISPATCH_SECONDS),
        sync=Job("sync", sync_job, sync_tick(settings)),  # full sync each interval, pushes when due
        decay=Job("decay", decay_job, DECAY_SECONDS),
        extra=extra,
    )


def build_scheduler(ws: Workspace, *extra: Job, worker: bool = False) -> NurtureScheduler:
    """The scheduler for `ws` with every fixed job wired in (a `worker` only claims due steps)."""
    return NurtureScheduler(ws, scheduler_jobs(ws.settings, *extra), worker=worker)
