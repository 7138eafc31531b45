"""`creditbot scheduler` (run the jobs in a process of their own) and `creditbot jobs`
(each job's last run, result and next run; run one now; recent history)."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from sqlalchemy.orm import Session

from bot.cli.environment import console, context
from bot.cli.output import emit_json, json_option
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models.scheduler import SchedulerJob

if TYPE_CHECKING:  # the jobs import Slack and Stripe: only `creditbot jobs` loads them
    from bot.scheduler.jobs import JobSpec


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(scheduler_cmd)
    cli.add_command(jobs)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run every job once now and exit (for cron).")
def scheduler_cmd(once: bool) -> None:
    """Run the scheduler alone (set RUN_SCHEDULER=false on the servers then).

    With several replicas on PostgreSQL only the one holding the leader lock runs jobs;
    the others wait and take over when it dies. METRICS_PORT serves its /metrics.
    """
    from bot.logs import configure_logging
    from bot.metrics import serve_metrics
    from bot.scheduler.runner import Scheduler

    settings = context().settings
    configure_logging(settings.log_format, settings.log_level)
    sched = Scheduler(context())
    if once:
        failed = 0
        try:
            for name in sched.jobs:
                outcome = sched.run_if_leader(name)
                if outcome is None:
                    raise click.ClickException(
                        "Another scheduler holds the leader lock: it runs the jobs."
                    )
                failed += not outcome.ok
                console.print(f"{name}: {'ok' if outcome.ok else 'error'} {outcome.result or ''}")
        finally:
            sched.shutdown()
        if failed:
            raise SystemExit(1)
        return

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.metrics_port:  # its counters live in this process: it serves them itself
        serve_metrics(context(), settings.metrics_port)
        console.print(f"/metrics on port {settings.metrics_port} (METRICS_TOKEN)")
    sched.start()
    console.print(f"scheduler running ({sched.leader.describe()}); Ctrl-C stops it")
    try:
        while not stop.wait(1):
            pass
    finally:
        sched.shutdown()


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = int((value - now).total_seconds())
    ago = seconds <= 0
    seconds = abs(seconds)
    if seconds < 120:
        span = f"{seconds}s"
    elif seconds < 7200:
        span = f"{seconds // 60}m"
    elif seconds < 172800:
        span = f"{seconds // 3600}h"
    else:
        span = f"{seconds // 86400}d"
    stamp = value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp} ({span} ago)" if ago else f"{stamp} (in {span})"


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip()[:120] if lines else ""


def job_json(spec: JobSpec, row: SchedulerJob | None) -> dict[str, Any]:
    """A job for scripts: its schedule and its whole last result or error."""
    return {
        "name": spec.name,
        "every_seconds": spec.seconds,
        "on_the_minute": spec.on_the_minute,
        "last_started_at": row.last_started_at if row else None,
        "last_finished_at": row.last_finished_at if row else None,
        "last_status": row.last_status if row else None,
        "last_result": row.last_result if row else None,
        "last_error": row.last_error if row else None,
        "consecutive_failures": row.consecutive_failures if row else 0,
        "runs": row.runs if row else 0,
        "failures": row.failures if row else 0,
        "next_run_at": row.next_run_at if row else None,
        "runner": row.runner if row else None,
    }


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def jobs(ctx: click.Context, as_json: bool) -> None:
    """Each scheduler job's last run, its result or error, and its next run (UTC)."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.scheduler.jobs import JOBS
    from bot.scheduler.leader import LEADER_NAME
    from ledger import job_runs

    def read(session: Session) -> tuple[dict, object]:
        return job_runs.job_statuses(session), job_runs.current_leader(session, LEADER_NAME)

    statuses, leader = transaction(context().sessions, read)
    if as_json:
        emit_json(
            {
                "jobs": [job_json(spec, statuses.get(spec.name)) for spec in JOBS],
                "leader": None
                if leader is None
                else {"holder": leader.holder, "acquired_at": leader.acquired_at,
                      "heartbeat_at": leader.heartbeat_at},
            }
        )  # fmt: skip
        return
    now = utcnow()
    table = Table(title="Scheduler jobs (UTC)")
    for column in ("job", "every", "last run", "took", "result", "fails", "next run"):
        table.add_column(column)
    for spec in JOBS:
        every = "1m at :00" if spec.on_the_minute else f"{spec.seconds}s"
        row = statuses.get(spec.name)
        if row is None or row.last_started_at is None:
            table.add_row(spec.name, every, "never", "", "", "", _when(
                row.next_run_at if row else None, now))  # fmt: skip
            continue
        took = (row.last_finished_at - row.last_started_at).total_seconds()
        if row.last_status == "ok":
            result = f"[green]ok[/green] {row.last_result or ''}"
        else:
            result = f"[red]error[/red] {_last_line(row.last_error)}"
        table.add_row(
            spec.name,
            every,
            _when(row.last_started_at, now),
            f"{took:.2f}s",
            result,
            str(row.consecutive_failures or ""),
            _when(row.next_run_at, now),
        )
    console.print(table)
    if leader is None:
        console.print("leader: none has run yet")
    else:
        console.print(
            f"leader: {leader.holder} since {leader.acquired_at:%Y-%m-%d %H:%M:%S}, "
            f"last heartbeat {_when(leader.heartbeat_at, now)}"
        )


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Run job NAME once now, in this process (jobs are idempotent; it is recorded)."""
    from bot.scheduler.jobs import JOBS
    from bot.scheduler.leader import SoloLeader, runner_id
    from bot.scheduler.runner import Scheduler

    names = [spec.name for spec in JOBS]
    if name not in names:
        raise click.ClickException(f"No job {name!r}: choose one of {', '.join(names)}.")
    sched = Scheduler(context(), leader=SoloLeader())
    outcome = sched.run_now(name, runner=f"{runner_id()} (manual)")
    if outcome.ok:
        console.print(f"{name}: ok {outcome.result or ''}")
    else:
        console.print(f"{name}: [red]error[/red] {outcome.result or ''}\n{outcome.error}")
        raise SystemExit(1)


@jobs.command("history")
@click.option("--job", "job_name", default=None, help="Only this job.")
@click.option("--limit", type=int, default=20, show_default=True)
@json_option
def jobs_history(job_name: str | None, limit: int, as_json: bool) -> None:
    """Recent runs that did something or failed, newest first."""
    from ledger import job_runs

    runs = transaction(context().sessions, lambda s: job_runs.recent_runs(s, job_name, limit=limit))
    if as_json:
        emit_json(
            [
                {"id": r.id, "job": r.job, "started_at": r.started_at, "finished_at": r.finished_at,
                 "status": r.status, "result": r.result, "error": r.error, "runner": r.runner}
                for r in runs
            ]
        )  # fmt: skip
        return
    table = Table(title="Job runs (UTC)")
    for column in ("started", "job", "status", "result or error", "runner"):
        table.add_column(column)
    for run in runs:
        detail = run.result or "" if run.status == "ok" else _last_line(run.error)
        table.add_row(
            f"{run.started_at:%Y-%m-%d %H:%M:%S}", run.job, run.status, detail, run.runner or ""
        )
    console.print(table)
