"""Exactly one scheduler runs jobs: two schedulers on one PostgreSQL (advisory lock), a
leader that dies and another that takes over; two on one SQLite file (lock file); and the
server's lifespan hook."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from bot.config import Settings
from bot.context import AppContext
from bot.scheduler.jobs import JobResult, JobSpec
from bot.scheduler.leader import (
    LEADER_NAME,
    LOCK_KEY,
    FileLeader,
    PostgresLeader,
    SoloLeader,
    make_leader,
)
from bot.scheduler.runner import Scheduler
from ledger import job_runs as records
from ledger.db import make_engine, transaction


def _context(url: str) -> AppContext:
    return AppContext(
        settings=Settings(database_url=url, run_scheduler=False), engine=make_engine(url)
    )


def _wait(predicate, timeout=30.0):  # generous: only a failing test waits it out
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _counting_job(ran: list[str], runner: str) -> JobSpec:
    def job(context, now):
        ran.append(runner)
        return JobResult("ticked", True)

    return JobSpec("tick", 1, job, "test")


def _terminate(url: str, pid: int) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_two_schedulers_on_one_postgres_only_the_leader_runs_and_another_takes_over(pg_url):
    ran: list[str] = []
    one, two = _context(pg_url), _context(pg_url)
    first = Scheduler(one, jobs=[_counting_job(ran, "first")], runner="first")
    second = Scheduler(two, jobs=[_counting_job(ran, "second")], runner="second")
    assert isinstance(first.leader, PostgresLeader)
    try:
        assert first.run_if_leader("tick") is not None
        assert second.run_if_leader("tick") is None  # a follower runs nothing
        assert first.run_if_leader("tick") is not None  # re-checked: still the leader
        assert ran == ["first", "first"]
        leader = transaction(one.sessions, lambda s: records.current_leader(s, LEADER_NAME))
        assert leader.holder == "first"

        # The leader dies: its connection drops and PostgreSQL releases the lock.
        _terminate(pg_url, first.leader.backend_pid)
        assert _wait(lambda: second.run_if_leader("tick") is not None)
        assert first.run_if_leader("tick") is None  # it noticed, and the lock is taken now
        assert ran == ["first", "first", "second"]
        leader = transaction(one.sessions, lambda s: records.current_leader(s, LEADER_NAME))
        assert leader.holder == "second"
    finally:
        first.shutdown()
        second.shutdown()
        one.engine.dispose()
        two.engine.dispose()


def test_running_schedulers_on_postgres_run_each_tick_once_and_fail_over(pg_url):
    ran: list[str] = []
    hourly: list[str] = []

    def hourly_job(context, now):
        hourly.append("second")
        return JobResult("caught up", True)

    one, two = _context(pg_url), _context(pg_url)
    first = Scheduler(one, jobs=[_counting_job(ran, "first")], runner="first")
    second = Scheduler(
        two,
        jobs=[_counting_job(ran, "second"), JobSpec("hourly", 3600, hourly_job, "test")],
        runner="second",
    )
    first.start()
    assert _wait(lambda: "first" in ran)
    second.start()
    try:
        time.sleep(2.2)
        assert set(ran) == {"first"}
        assert hourly == []  # scheduled at start, skipped: it does not lead
        before = len(ran)
        first.shutdown()  # a leader that stops gives the lock up
        assert _wait(lambda: "second" in ran)
        assert set(ran[before:]) == {"second"}
        # Its hourly job ran when it took over, not an hour later (catch-up on takeover).
        assert _wait(lambda: hourly == ["second"])
    finally:
        first.shutdown()
        second.shutdown()
        one.engine.dispose()
        two.engine.dispose()


def test_a_killed_leader_process_frees_the_lock(pg_url, tmp_path):
    """A real process holds the lock and is killed with SIGKILL: no clean-up code runs,
    yet the lock comes free as soon as PostgreSQL sees its connection close."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from ledger.db import make_engine
        from bot.scheduler.leader import PostgresLeader
        leader = PostgresLeader(make_engine({pg_url!r}))
        print("leads" if leader.check() else "follows", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    engine = make_engine(pg_url)
    ours = PostgresLeader(engine)
    try:
        assert child.stdout.readline().strip() == "leads"
        assert not ours.check()
        child.kill()
        child.wait(timeout=10)
        assert _wait(ours.check)
    finally:
        if child.poll() is None:
            child.kill()
        ours.release()
        engine.dispose()


def test_the_lock_is_checked_on_the_database_not_remembered(pg_url):
    """Someone unlocking behind the leader's back (or a reset connection) is noticed before
    the next job runs."""
    engine = make_engine(pg_url)
    leader = PostgresLeader(engine)
    try:
        assert leader.check()
        with leader._lock:  # noqa: SLF001 - simulate the lock vanishing on the server
            leader._conn.execute(text("SELECT pg_advisory_unlock_all()"))
        other = PostgresLeader(engine)
        assert other.check()
        assert not leader.check()
        other.release()
        assert leader.check()
    finally:
        leader.release()
        engine.dispose()
    assert LOCK_KEY > 0


def test_two_schedulers_on_one_sqlite_file_only_one_runs(sqlite_url):
    ran: list[str] = []
    one, two = _context(sqlite_url), _context(sqlite_url)
    first = Scheduler(one, jobs=[_counting_job(ran, "first")], runner="first")
    second = Scheduler(two, jobs=[_counting_job(ran, "second")], runner="second")
    assert isinstance(first.leader, FileLeader)
    try:
        assert first.run_if_leader("tick") is not None
        assert second.run_if_leader("tick") is None
        first.shutdown()  # gives the lock file up
        assert second.run_if_leader("tick") is not None
        assert ran == ["first", "second"]
    finally:
        first.shutdown()
        second.shutdown()


def test_in_memory_sqlite_needs_no_lock():
    engine = make_engine("sqlite://")
    assert isinstance(make_leader(engine), SoloLeader)


@pytest.mark.parametrize("run_scheduler", [True, False])
def test_serve_runs_the_scheduler_when_told_to(sqlite_url, run_scheduler):
    from bot.http.app import create_app

    context = AppContext(
        settings=Settings(database_url=sqlite_url, run_scheduler=run_scheduler),
        engine=make_engine(sqlite_url),
    )
    app = create_app(context)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        scheduler = app.state.scheduler
        if run_scheduler:
            assert scheduler.running
            assert _wait(
                lambda: (
                    transaction(context.sessions, lambda s: records.current_leader(s, LEADER_NAME))
                    is not None
                )
            )
        else:
            assert scheduler is None
    if run_scheduler:
        assert not scheduler.running
        leader = transaction(context.sessions, lambda s: records.current_leader(s, LEADER_NAME))
        assert leader.heartbeat_at <= datetime.now(UTC)
    context.engine.dispose()
