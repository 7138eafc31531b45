"""The scheduler: APScheduler 3's BackgroundScheduler (threads in this process) running
the jobs of `bot.scheduler.jobs`, each run gated by the leadership of
`bot.scheduler.leader` and recorded (`creditbot jobs`).

A job that raises is logged with its traceback, recorded, and runs again at its next
tick: nothing it had to do is lost, because each job works from what the database says
is still due.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from bot import metrics
from bot.context import AppContext
from bot.scheduler.jobs import JOBS, JobFailed, JobSpec
from bot.scheduler.leader import HEARTBEAT, LEADER_NAME, Leadership, make_leader, runner_id
from ledger import job_runs
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.tracing import new_request_id, request_scope

log = logging.getLogger("creditbot.scheduler")


class Scheduler:
    """APScheduler's BackgroundScheduler running JOBS, gated by a leader lock."""

    def __init__(
        self,
        context: AppContext,
        *,
        leader: Leadership | None = None,
        jobs: Iterable[JobSpec] = JOBS,
        runner: str | None = None,
        max_workers: int = 4,
    ) -> None:
        self.context = context
        self.leader = leader if leader is not None else make_leader(context.engine)
        self.jobs = {spec.name: spec for spec in jobs}
        self.runner = runner or runner_id()
        self.max_workers = max_workers
        self._aps: BackgroundScheduler | None = None
        self._triggers: dict[str, BaseTrigger] = {}
        self._was_leader = False
        self._last_heartbeat: datetime | None = None
        self._state_lock = threading.Lock()
        #: Started and not yet past its first leadership check.
        self._fresh = True

    # Running one job -------------------------------------------------------------------

    def run_if_leader(
        self, name: str, *, now: datetime | None = None
    ) -> job_runs.RunOutcome | None:
        """Run job `name` once, if this process leads; record and return what it did.

        The scheduler calls this at each tick. Returns None when another process leads.
        """
        if not self._lead():
            return None
        return self.run_now(name, now=now)

    def run_now(
        self, name: str, *, now: datetime | None = None, runner: str | None = None
    ) -> job_runs.RunOutcome:
        """Run job `name` once in this process whoever leads (jobs are idempotent)."""
        spec = self.jobs[name]
        started = now or utcnow()
        timer = metrics.Timer()
        # Each run has a request id of its own: what it writes and logs can be traced to it.
        with request_scope(new_request_id(f"job-{name}-")):
            try:
                result = spec.work(self.context, started)
                ok, error = True, None
            except Exception as exc:  # noqa: BLE001 - logged, recorded, retried next tick
                log.exception("job %s failed; it runs again at its next tick", name)
                result = exc.result if isinstance(exc, JobFailed) else None
                ok, error = False, "".join(traceback.format_exception(exc, limit=8))
            if result is not None and result.did_work:
                log.info("job %s: %s", name, result.summary)
        metrics.JOB_RUNS.labels(name, "ok" if ok else "error").inc()
        metrics.JOB_SECONDS.labels(name).observe(timer.seconds())
        finished = max(started, utcnow())
        outcome = job_runs.RunOutcome(
            job=name,
            started_at=started,
            finished_at=finished,
            ok=ok,
            result=result.summary if result else None,
            error=error,
            did_work=bool(result and result.did_work),
            next_run_at=self._next_run(name, finished),
            runner=runner or self.runner,
        )
        try:
            transaction(self.context.sessions, lambda s: job_runs.record_run(s, outcome))
        except Exception:  # noqa: BLE001 - the database may be down; the job still reruns
            log.exception("could not record the run of job %s", name)
        if ok:
            log.debug("job %s: %s", name, outcome.result)
        return outcome

    def _lead(self) -> bool:
        leading = self.leader.check()
        metrics.LEADER.set(1 if leading else 0)
        with self._state_lock:
            took_over = leading and not self._was_leader
            self._was_leader = leading
            # Just started, every job is due now anyway; a takeover later brings them forward.
            catch_up = took_over and not self._fresh
            self._fresh = False
            now = utcnow()
            beat = leading and (
                took_over or self._last_heartbeat is None or now - self._last_heartbeat >= HEARTBEAT
            )
            if beat:
                self._last_heartbeat = now
        if beat:
            try:
                transaction(
                    self.context.sessions,
                    lambda s: job_runs.note_leader(
                        s, LEADER_NAME, self.runner, now=now, acquired=took_over
                    ),
                )
            except Exception:  # noqa: BLE001 - only a display row
                log.exception("could not write the leader heartbeat")
        if catch_up:
            self._catch_up()
        return leading

    def _catch_up(self) -> None:
        """A new leader runs every job at once: renewals missed while nobody led catch up."""
        aps = self._aps
        if aps is None or not aps.running:
            return

        def bring_forward() -> None:
            # In a thread of its own: APScheduler's locks must not be taken from a job's
            # thread, which shutdown() waits for while holding them.
            now = datetime.now(UTC)
            with contextlib.suppress(Exception):
                for job in aps.get_jobs():
                    if job.next_run_time is not None and job.next_run_time > now + timedelta(
                        seconds=1
                    ):
                        aps.modify_job(job.id, next_run_time=now)

        threading.Thread(target=bring_forward, name="scheduler-catch-up", daemon=True).start()

    def _next_run(self, name: str, after: datetime) -> datetime | None:
        trigger = self._triggers.get(name)
        if trigger is None or not self.running:
            return None
        return trigger.get_next_fire_time(None, after)

    # The background scheduler ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._aps is not None and self._aps.running

    def start(self) -> None:
        """Schedule every job (each runs once right away, then at its interval)."""
        if self.running:
            return
        self._aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=self.max_workers)},
            job_defaults={
                # One run at a time per job; runs missed while busy collapse into one, and a
                # late run still happens however late it is.
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": None,
            },
        )
        self._fresh = True
        # APScheduler logs every run at INFO: with a job every 2 seconds that drowns the log.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        now = datetime.now(UTC)
        for spec in self.jobs.values():
            trigger = spec.trigger()
            self._triggers[spec.name] = trigger
            self._aps.add_job(
                self.run_if_leader,
                trigger,
                args=[spec.name],
                id=spec.name,
                name=spec.name,
                next_run_time=now,
                replace_existing=True,
            )
        self._aps.start()
        log.info(
            "scheduler started (%s) with jobs: %s",
            self.leader.describe(),
            ", ".join(f"{s.name} every {s.seconds}s" for s in self.jobs.values()),
        )

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling, let running jobs finish (if `wait`), and give up the lock."""
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=wait)
        self._aps = None
        self.leader.release()
        metrics.LEADER.set(0)
        with self._state_lock:
            self._was_leader = False
        log.info("scheduler stopped")
