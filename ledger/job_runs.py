"""Records of the scheduler's work: each job's last run, result or error and next run
(`creditbot jobs`), a history of runs that did something or failed, and who leads.

Written by the scheduler after every run, in its own short transaction, so a job that
raises is still recorded (its own transaction rolled back, this one commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger.models.scheduler import JobRun, SchedulerJob, SchedulerLeader

#: Longest error or result text kept (a traceback's last lines fit).
MAX_TEXT = 4000


@dataclass(frozen=True)
class RunOutcome:
    """What one run of a job did."""

    job: str
    started_at: datetime
    finished_at: datetime
    ok: bool
    result: str | None = None
    error: str | None = None
    #: Whether the run changed anything; idle runs update only the job's row.
    did_work: bool = False
    next_run_at: datetime | None = None
    runner: str | None = None


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT // 2] + "\n...\n" + text[-MAX_TEXT // 2 :]


def record_run(session: Session, outcome: RunOutcome) -> SchedulerJob:
    """Store `outcome` as the job's last run (and in the history if it did work or failed)."""
    job = session.execute(
        select(SchedulerJob).where(SchedulerJob.name == outcome.job).with_for_update()
    ).scalar_one_or_none()
    if job is None:
        job = SchedulerJob(name=outcome.job, runs=0, failures=0, consecutive_failures=0)
        session.add(job)
    job.last_started_at = outcome.started_at
    job.last_finished_at = outcome.finished_at
    job.last_status = "ok" if outcome.ok else "error"
    job.last_result = _clip(outcome.result)
    job.last_error = None if outcome.ok else _clip(outcome.error)
    if outcome.next_run_at is not None:  # a manual run leaves the schedule's time alone
        job.next_run_at = outcome.next_run_at
    job.runner = outcome.runner
    job.runs = (job.runs or 0) + 1
    if outcome.ok:
        job.last_success_at = outcome.finished_at
        job.consecutive_failures = 0
    else:
        job.failures = (job.failures or 0) + 1
        job.consecutive_failures = (job.consecutive_failures or 0) + 1
    if outcome.did_work or not outcome.ok:
        session.add(
            JobRun(
                job=outcome.job,
                started_at=outcome.started_at,
                finished_at=outcome.finished_at,
                status="ok" if outcome.ok else "error",
                result=_clip(outcome.result),
                error=None if outcome.ok else _clip(outcome.error),
                runner=outcome.runner,
            )
        )
    session.flush()
    return job


def set_next_run(session: Session, job_name: str, next_run_at: datetime | None) -> None:
    """Note when a job runs next (when the scheduler starts, before its first run)."""
    job = session.get(SchedulerJob, job_name)
    if job is None:
        session.add(
            SchedulerJob(
                name=job_name, runs=0, failures=0, consecutive_failures=0, next_run_at=next_run_at
            )
        )
    else:
        job.next_run_at = next_run_at
    session.flush()


def job_statuses(session: Session) -> dict[str, SchedulerJob]:
    """Every job the scheduler has recorded, by name."""
    return {job.name: job for job in session.execute(select(SchedulerJob)).scalars()}


def recent_runs(session: Session, job: str | None = None, *, limit: int = 20) -> list[JobRun]:
    """The newest recorded runs, newest first (of one job, or of all)."""
    stmt = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if job is not None:
        stmt = stmt.where(JobRun.job == job)
    return list(session.execute(stmt).scalars())


def prune_runs(session: Session, *, before: datetime) -> int:
    """Forget history rows that started before `before`; returns how many."""
    result = session.execute(delete(JobRun).where(JobRun.started_at < before))
    return int(result.rowcount or 0)


def note_leader(
    session: Session, name: str, holder: str, *, now: datetime, acquired: bool = False
) -> None:
    """Say that `holder` leads (a heartbeat; `acquired` when it has just taken the lock)."""
    row = session.get(SchedulerLeader, name, with_for_update=True)
    if row is None:
        session.add(SchedulerLeader(name=name, holder=holder, acquired_at=now, heartbeat_at=now))
    else:
        if acquired or row.holder != holder:
            row.holder = holder
            row.acquired_at = now
        row.heartbeat_at = now
    session.flush()


def current_leader(session: Session, name: str) -> SchedulerLeader | None:
    """The last process that said it leads (check `heartbeat_at` for how recently)."""
    return session.get(SchedulerLeader, name)
