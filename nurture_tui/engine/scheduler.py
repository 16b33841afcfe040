"""APScheduler wiring (docs/engine.md): a handful of fixed jobs, never one job per lead.

Jobs (BackgroundScheduler, MemoryJobStore, `max_instances=1, coalesce=True, misfire_grace_time=None`):
- `lease`  renew/take the leader lease (every lease_seconds / 3);
- `tick`   claim → execute → advance due enrollments until none is due (engine.tick_seconds, 1 s);
- `entry`  refresh hot segments, then the segment-entry sweep (engine.entry_sweep_seconds);
- `recheck` goal and exit rules of leads whose data changed (engine/recheck.py, every second);
- `webhooks`, `maintenance` (the engine's own);
- the jobs other areas provide, handed in as `SchedulerJobs` (outbox dispatch, Salesforce sync, score
  decay, and extras such as the demo's engagement simulator). The scheduler imports none of those areas:
  `nurture_tui.runtime` (the composition root) builds the list, and a scheduler cannot be made without
  each required job.

The durable schedule is the enrollment table, so the job store holds nothing worth persisting; after
downtime the first tick simply finds the overdue rows and runs them oldest first. "Now" for due
comparisons comes from the workspace clock (virtual in the demo and tests); job intervals are real seconds.

Roles: `leader` holds the DB lease and runs everything; `viewer` (another process leads) runs nothing and
just reports; `worker` (PostgreSQL scale-out) runs only `tick`, never the singleton jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import NurtureError
from ..segments.materialize import refresh_all
from ..store.engine import bulk_write_tx, write_tx
from ..workspace import Workspace
from . import lease
from .advance import BatchResult, run_due
from .claim import next_due
from .enroll import entry_sweep
from .events import apply_all_pending
from .maintenance import run_maintenance
from .recheck import RECHECK_SECONDS, ChangeWatcher
from .tuning import HotPathTuning
from .webhooks import deliver_due

log = logging.getLogger("nurture.engine")

MAINTENANCE_SECONDS = 3600.0
WEBHOOK_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    """A fixed job the leader runs every `interval_seconds` (real seconds): `fn(ws)`; its result is ignored."""

    name: str
    fn: Callable[[Workspace], object]
    interval_seconds: float


@dataclass(frozen=True)
class SchedulerJobs:
    """The jobs other areas provide. `dispatch`, `sync` and `decay` are required fields: leaving one out is
    a TypeError where the scheduler is built, not a part of the product that silently never runs."""

    dispatch: Job
    sync: Job
    decay: Job
    extra: tuple[Job, ...] = ()

    def all(self) -> list[Job]:
        jobs = [self.dispatch, self.sync, self.decay, *self.extra]
        names = [j.name for j in jobs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scheduler jobs: duplicate name(s) {', '.join(dupes)}")
        return jobs


class NurtureScheduler:
    def __init__(self, ws: Workspace, jobs: SchedulerJobs, *, worker: bool = False,
                 holder: str | None = None) -> None:
        if not isinstance(jobs, SchedulerJobs):
            raise TypeError("NurtureScheduler needs its SchedulerJobs (build it with nurture_tui.runtime)")
        if worker and ws.is_sqlite:
            raise NurtureError("--worker needs PostgreSQL: SQLite has a single writer, so extra claim workers "
                               "cannot add throughput (run one `nurture daemon` instead)")
        self.ws = ws
        self.jobs = jobs.all()
        self.worker = worker
        self.holder = holder or lease.make_holder("worker" if worker else "scheduler")
        self._role = "stopped"
        self._stopping = threading.Event()
        self._sched: Any = None
        self._next_due: datetime | None = None
        self._lock = threading.Lock()
        self.steps_total = 0
        #: seconds a tick first leaves pending tracking effects to the web writer process's applier (set by
        #: `run_daemon` when it serves the web app; 0: apply them at once)
        self.applier_grace = 0.0
        self.batches_total = 0
        self.last_batch_ms = 0.0
        self.on_batch: Callable[[BatchResult], None] | None = None
        self._tuning: HotPathTuning | None = None
        self.watcher = ChangeWatcher()  # data changes → goal/exit re-check (the leader's `recheck` job)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        if self._sched is not None:
            return
        # A tick that runs longer than its interval makes APScheduler log "skipped: maximum number of
        # running instances reached" every second; that is max_instances=1 doing its job, not news.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        self._stopping.clear()
        sched = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone=UTC,
        )
        settings = self.ws.settings.engine
        now = datetime.now(UTC)  # clock-ok: APScheduler runs on real time
        if self.worker:
            self._role = "worker"
        else:
            self._renew_lease()
            with self.ws.engine.connect() as conn:
                self.watcher.start_at_latest(conn, self.ws.clock)  # changes from now on re-check goals and exits
            sched.add_job(self._renew_lease, "interval", seconds=max(settings.lease_seconds / 3, 0.5), id="lease")
            sched.add_job(self._leader_only(self._entry), "interval", seconds=settings.entry_sweep_seconds,
                          id="entry", next_run_time=now)
            sched.add_job(self._leader_only(self._recheck), "interval", seconds=RECHECK_SECONDS, id="recheck")
            sched.add_job(self._leader_only(self._webhooks), "interval", seconds=WEBHOOK_SECONDS, id="webhooks")
            sched.add_job(self._leader_only(self._maintenance), "interval", seconds=MAINTENANCE_SECONDS,
                          id="maintenance")
            for job in self.jobs:
                sched.add_job(self._leader_only(self._guarded(job)), "interval", seconds=job.interval_seconds,
                              id=f"job:{job.name}")
        sched.add_job(self._tick, "interval", seconds=settings.tick_seconds, id="tick", next_run_time=now)
        self._sched = sched
        self._tuning = HotPathTuning(self.ws.engine)
        self._tuning.__enter__()
        sched.start()
        log.info("scheduler started", extra={"role": self._role, "holder": self.holder})

    def stop(self) -> None:
        """Finish the batch in progress, stop every job, release the lease."""
        self._stopping.set()
        sched, self._sched = self._sched, None
        try:
            if sched is not None:
                sched.shutdown(wait=True)
            if self._tuning is not None:
                tuning, self._tuning = self._tuning, None
                tuning.__exit__(None, None, None)
        finally:
            # Whatever the role last seen and whatever failed above: release deletes only this holder's
            # row, so a lease this scheduler holds does not outlive it (CI once found a quit TUI's lease
            # still held; the next console would have come up as a viewer until it expired).
            if not self.worker:
                try:
                    lease.release(self.ws.engine, self.holder)
                except Exception:  # the database may already be gone at shutdown
                    log.exception("could not release the lease")
            self._role = "stopped"
        log.info("scheduler stopped", extra={"holder": self.holder})

    def wake(self) -> None:
        """Run the tick now (e.g. right after an event made something due)."""
        sched = self._sched
        if sched is not None and self._role in ("leader", "worker"):
            sched.modify_job("tick", next_run_time=datetime.now(UTC))  # clock-ok: APScheduler real time

    def state(self) -> dict[str, Any]:
        """For the TUI header: role (leader/viewer/worker/stopped), next due step, lease holder."""
        holder = None
        try:
            info = lease.current(self.ws.engine)
            holder = info.holder if info else None
            with self.ws.engine.connect() as conn:
                self._next_due = next_due(conn)
        except Exception:
            log.debug("state query failed", exc_info=True)
        return {"role": self._role, "next_due": self._next_due, "holder": holder, "steps": self.steps_total,
                "batches": self.batches_total, "last_batch_ms": round(self.last_batch_ms, 1)}

    @property
    def role(self) -> str:
        return self._role

    # -- jobs ---------------------------------------------------------------------------------------

    def _renew_lease(self) -> None:
        if self._stopping.is_set():
            return
        try:
            held = lease.acquire(self.ws.engine, self.holder, self.ws.settings.engine.lease_seconds)
        except Exception:
            log.exception("lease renewal failed")
            held = False
        role = "leader" if held else "viewer"
        if role != self._role:
            log.info("scheduler role", extra={"role": role, "holder": self.holder})
        self._role = role

    def _leader_only(self, fn: Callable[[], Any]) -> Callable[[], None]:
        def job() -> None:
            if self._role == "leader" and not self._stopping.is_set():
                fn()

        job.__name__ = getattr(fn, "__name__", "job")
        return job

    def _tick(self) -> None:
        if self._role not in ("leader", "worker") or self._stopping.is_set():
            return
        try:
            # tracking hits answered before this tick have woken their `wait_for`s and met their goals by
            # the time the run claims (the web writer's applier does it within ms anyway; this makes it sure)
            apply_all_pending(self.ws.engine, self.ws.clock.now, self.ws.settings, grace=self.applier_grace)
            run_due(self.ws.engine, self.ws.clock.now, self.ws.settings, should_stop=self._stopping.is_set,
                    on_batch=self._batch_done)
        except Exception:
            log.exception("tick failed")

    def _batch_done(self, res: BatchResult) -> None:
        with self._lock:
            self.steps_total += res.steps
            self.batches_total += 1
            self.last_batch_ms = res.seconds * 1000
        log.debug("batch", extra={"claimed": res.claimed, "steps": res.steps, "sends": res.sends,
                                  "ms": round(res.seconds * 1000, 1)})
        if self.on_batch is not None:
            self.on_batch(res)

    def _entry(self) -> None:
        started = time.perf_counter()
        now = self.ws.clock.now()
        try:
            with write_tx(self.ws.engine) as conn:
                refresh_all(conn, now, half_life_days=self.ws.settings.scoring.half_life_days)
        except Exception:  # e.g. a hot segment whose reference was broken by hand: the sweep still runs
            log.exception("hot segment refresh failed")
        try:
            with bulk_write_tx(self.ws.engine) as (conn, commit):
                n = entry_sweep(conn, now, self.ws.settings, commit=commit)
            if n:
                log.info("entry sweep", extra={"enrolled": n, "ms": round((time.perf_counter() - started) * 1000)})
        except Exception:
            log.exception("entry sweep failed")

    def _recheck(self) -> None:
        try:
            self.watcher.run(self.ws)
        except Exception:
            log.exception("goal/exit re-check failed")

    def _webhooks(self) -> None:
        try:
            res = deliver_due(self.ws)
            if res.sent or res.failed or res.retried:
                log.info("webhooks", extra={"sent": res.sent, "retried": res.retried, "failed": res.failed})
        except Exception:
            log.exception("webhook delivery failed")

    def _maintenance(self) -> None:
        try:
            res = run_maintenance(self.ws)
            log.info("maintenance", extra={"pruned": res.pruned, "decisions_pruned": res.decisions_pruned,
                                             "checkpoint": res.checkpoint})
        except Exception:
            log.exception("maintenance failed")

    def _guarded(self, job: Job) -> Callable[[], None]:
        def run() -> None:
            try:
                job.fn(self.ws)
            except Exception:
                log.exception("job failed", extra={"job": job.name})

        run.__name__ = f"job_{job.name}"
        return run
