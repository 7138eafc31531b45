"""The clock of creditbot: renewals, month rollover, auto-recharge, alert delivery and
Stripe reconciliation, on APScheduler 3 (a BackgroundScheduler in this process).

Exactly one scheduler runs jobs at a time:

- PostgreSQL: every replica schedules the jobs, but a run only goes ahead in the process
  that holds a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
  connection. The lock is re-checked before each run. When the leader dies its connection
  drops, PostgreSQL releases the lock, and the next tick of another replica takes it.
- SQLite: one process. An exclusive `flock` on a file beside the database makes a second
  scheduler on the same file wait as a follower instead of running jobs too.

Every job is idempotent anyway (renewals are keyed on account and cycle start, the month
rollover only moves agents whose month is behind, the outbox hands each message to one
deliverer), so an overlap of two leaders or a run cut halfway changes nothing twice.

A job that raises is logged with its traceback, recorded (`creditbot jobs`), and runs again
at its next tick: nothing it had to do is lost, because each job works from what the
database says is still due.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bot import stripe as stripe_gateway
from bot.context import AppContext
from bot.slack import alerts as slack_alerts
from ledger import jobs as job_records
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.renewals import accounts_due, renew_due
from ledger.rollover import accounts_to_roll, roll_account

log = logging.getLogger("creditbot.scheduler")

#: The advisory lock's key: "creditbt" in ASCII, one 64-bit number all replicas agree on.
LOCK_KEY = int.from_bytes(b"creditbt", "big")
#: The row of `scheduler_leaders` the leader writes.
LEADER_NAME = "scheduler"
#: How often the leader writes its heartbeat row (the lock itself needs no heartbeat).
HEARTBEAT = timedelta(seconds=30)
#: How long the history of runs is kept.
KEEP_RUNS = timedelta(days=14)


def runner_id() -> str:
    """This process, as people see it in `creditbot jobs`: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- Leadership ------------------------------------------------------------------------


class Leadership(Protocol):
    """Decides whether this process may run jobs now."""

    def check(self) -> bool:
        """True if this process leads: confirm a held lock, or try to take a free one."""
        ...

    def release(self) -> None:
        """Give the lock up (on shutdown)."""
        ...

    def describe(self) -> str: ...


_HELD_SQL = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND objsubid = 1"
    " AND ((classid::bigint << 32) | objid::bigint) = :key"
)


class PostgresLeader:
    """A session-level advisory lock held on a connection of its own (not from the pool,
    never in a transaction). Whoever holds the lock leads; the lock lives as long as the
    connection, so a leader that dies (process killed, host gone, connection cut) frees it
    for another replica without waiting for any lease to run out."""

    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        url = engine.url
        connect_args: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            # Notice a half-open connection to a vanished server within about half a minute.
            connect_args = {
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "application_name": "creditbot-scheduler",
            }
        self._engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        self._key = key
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.is_leader = False
        self.backend_pid: int | None = None

    def check(self) -> bool:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    self.backend_pid = self._conn.execute(text("SELECT pg_backend_pid()")).scalar()
                if self.is_leader:
                    if self._conn.execute(_HELD_SQL, {"key": self._key}).scalar():
                        return True
                    log.warning("scheduler lost its leader lock")
                    self.is_leader = False
                got = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar()
                if got:
                    log.info("scheduler took the leader lock (backend %s)", self.backend_pid)
                self.is_leader = bool(got)
            except DBAPIError as exc:
                if self.is_leader:
                    log.warning("scheduler lost its leader connection: %s", exc)
                self._drop()
            return self.is_leader

    def _drop(self) -> None:
        self.is_leader = False
        self.backend_pid = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None and self.is_leader:
                with contextlib.suppress(Exception):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            self._conn = None
            self.is_leader = False
        self._engine.dispose()

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self._key}"


class FileLeader:
    """An exclusive, non-blocking `flock` on a file beside the SQLite database. The kernel
    frees it when the process dies. It only guards processes of one machine, which is where
    a SQLite file lives."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    def check(self) -> bool:
        with self._lock:
            if self._fd is not None:
                return True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{runner_id()}\n".encode())
            self._fd = fd
            log.info("scheduler took the lock file %s", self.path)
            return True

    def release(self) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def describe(self) -> str:
        return f"lock file {self.path}"


class SoloLeader:
    """Always the leader: an in-memory SQLite database belongs to this process alone."""

    is_leader = True

    def check(self) -> bool:
        return True

    def release(self) -> None:
        return None

    def describe(self) -> str:
        return "single process"


def make_leader(engine: Engine) -> Leadership:
    """The leadership that fits the database: advisory lock, lock file, or none needed."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresLeader(engine)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return FileLeader(f"{url.database}.scheduler.lock")
    return SoloLeader()


# --- Jobs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobResult:
    summary: str
    #: Whether the run changed anything (idle runs are not kept in the run history).
    did_work: bool = False


class JobFailed(Exception):
    """Some of a job's work failed; `result` says what the rest did."""

    def __init__(self, message: str, result: JobResult) -> None:
        super().__init__(message)
        self.result = result


JobFunc = Callable[[AppContext, datetime], JobResult]


@dataclass(frozen=True)
class JobSpec:
    name: str
    seconds: int
    run: JobFunc
    help: str
    #: Run at second 0 of each minute rather than every `seconds` from start: a renewal due
    #: at local midnight then happens within a second or so of it, not up to a minute late.
    on_the_minute: bool = False

    def trigger(self) -> BaseTrigger:
        if self.on_the_minute:
            return CronTrigger(second=0, timezone=UTC)
        return IntervalTrigger(seconds=self.seconds, timezone=UTC)


def _per_account(
    context: AppContext,
    ids: Iterable[int],
    work: Callable[[Session, int], int],
    what: str,
) -> tuple[int, int, list[str]]:
    """Run `work(session, account_id)` for each account in its own transaction. One
    account's failure is logged and reported without stopping the others."""
    done = accounts = 0
    failed: list[str] = []
    for account_id in ids:
        try:
            done += transaction(context.sessions, lambda s, a=account_id: work(s, a))
            accounts += 1
        except Exception as exc:  # noqa: BLE001 - reported, retried next run
            log.exception("%s failed for account %s", what, account_id)
            failed.append(f"account {account_id}: {type(exc).__name__}: {exc}")
    return done, accounts, failed


def run_renewals(context: AppContext, now: datetime) -> JobResult:
    """Renew every account whose cycle ended by `now`: each missed cycle once, in order."""
    due = transaction(context.sessions, lambda s: accounts_due(s, now=now))
    renewed, accounts, failed = _per_account(
        context, due, lambda s, a: len(renew_due(s, a, now=now)), "renewal"
    )
    result = JobResult(f"{renewed} cycle(s) renewed in {accounts} account(s)", renewed > 0)
    if failed:
        raise JobFailed(f"{result.summary}; failed: " + "; ".join(failed), result)
    return result


def run_month_rollover(context: AppContext, now: datetime) -> JobResult:
    """Start the new calendar month for agents whose month ended (account time zone)."""
    ids = transaction(context.sessions, lambda s: accounts_to_roll(s, now=now))
    resumed = 0

    def roll(session: Session, account_id: int) -> int:
        nonlocal resumed
        rollover = roll_account(session, account_id, now=now)
        resumed += len(rollover.resumed)
        return len(rollover.rolled)

    rolled, accounts, failed = _per_account(context, ids, roll, "month rollover")
    result = JobResult(
        f"{rolled} agent(s) in {accounts} account(s) started a new month, {resumed} resumed",
        rolled > 0,
    )
    if failed:
        raise JobFailed(f"{result.summary}; failed: " + "; ".join(failed), result)
    return result


def _count(value: object) -> int:
    if value is None or isinstance(value, bool):
        return int(bool(value))
    if isinstance(value, int):
        return value
    if isinstance(value, Sized):
        return len(value)
    return 1


def _port_job(call: Callable[[AppContext], object], what: str) -> JobFunc:
    def job(context: AppContext, now: datetime) -> JobResult:
        n = _count(call(context))
        return JobResult(f"{n} {what}", n > 0)

    return job


def run_recharge_requests(context: AppContext, now: datetime) -> JobResult:
    """Act on recharge requests written by charges (so a recharge follows within seconds)."""
    # Looked up at call time: the payments part provides the implementation.
    return _port_job(lambda c: stripe_gateway.process_recharge_requests(c), "request(s)")(
        context, now
    )


def run_auto_recharge_sweep(context: AppContext, now: datetime) -> JobResult:
    """Start a recharge for wallets under their threshold that no charge asked for."""
    return _port_job(lambda c: stripe_gateway.sweep_auto_recharge(c), "recharge(s) started")(
        context, now
    )


def run_alert_delivery(context: AppContext, now: datetime) -> JobResult:
    """Post due alerts from the outbox to Slack (failed posts come back after a backoff)."""
    return _port_job(lambda c: slack_alerts.deliver_due_alerts(c), "alert(s) delivered")(
        context, now
    )


def run_stripe_reconcile(context: AppContext, now: datetime) -> JobResult:
    """Credit Stripe payments whose webhook never came."""
    return _port_job(lambda c: stripe_gateway.reconcile_payments(c), "payment(s) reconciled")(
        context, now
    )


def run_prune(context: AppContext, now: datetime) -> JobResult:
    """Forget the run history older than two weeks."""
    n = transaction(context.sessions, lambda s: job_records.prune_runs(s, before=now - KEEP_RUNS))
    return JobResult(f"{n} old run(s) forgotten", n > 0)


JOBS: tuple[JobSpec, ...] = (
    JobSpec("renewals", 60, run_renewals, "renew plan credits of accounts whose cycle ended", True),
    JobSpec(
        "month_rollover", 60, run_month_rollover, "new month: resume limit-stopped agents", True
    ),
    JobSpec("recharge_requests", 2, run_recharge_requests, "recharges asked for by charges"),
    JobSpec("auto_recharge_sweep", 60, run_auto_recharge_sweep, "wallets under the threshold"),
    JobSpec("alert_delivery", 5, run_alert_delivery, "post due alerts to Slack, with retries"),
    JobSpec("stripe_reconcile", 600, run_stripe_reconcile, "payments whose webhook never came"),
    JobSpec("prune_job_runs", 3600, run_prune, "forget run history older than 14 days"),
)


# --- The scheduler ---------------------------------------------------------------------


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

    def run_job(self, name: str, *, now: datetime | None = None) -> job_records.RunOutcome | None:
        """Run job `name` once, if this process leads; record and return what it did.

        The scheduler calls this at each tick. Returns None when another process leads.
        """
        if not self._lead():
            return None
        return self.run_now(name, now=now)

    def run_now(
        self, name: str, *, now: datetime | None = None, runner: str | None = None
    ) -> job_records.RunOutcome:
        """Run job `name` once in this process whoever leads (jobs are idempotent)."""
        spec = self.jobs[name]
        started = now or utcnow()
        try:
            result = spec.run(self.context, started)
            ok, error = True, None
        except Exception as exc:  # noqa: BLE001 - logged, recorded, retried next tick
            log.exception("job %s failed; it runs again at its next tick", name)
            result = exc.result if isinstance(exc, JobFailed) else None
            ok, error = False, "".join(traceback.format_exception(exc, limit=8))
        finished = max(started, utcnow())
        outcome = job_records.RunOutcome(
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
            transaction(self.context.sessions, lambda s: job_records.record_run(s, outcome))
        except Exception:  # noqa: BLE001 - the database may be down; the job still reruns
            log.exception("could not record the run of job %s", name)
        if ok:
            log.debug("job %s: %s", name, outcome.result)
        return outcome

    def _lead(self) -> bool:
        leading = self.leader.check()
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
                    lambda s: job_records.note_leader(
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
                self.run_job,
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
        with self._state_lock:
            self._was_leader = False
        log.info("scheduler stopped")
