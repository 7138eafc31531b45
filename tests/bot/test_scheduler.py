"""The scheduler's jobs with controlled time: renewals on time and after downtime, a double
fire, month rollover, the ports it drives, and jobs that raise (logged, recorded, retried,
nothing lost). Job runs are called directly with a frozen clock; the few real-timer tests
use one-second intervals."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

import bot.scheduler.jobs as scheduler_jobs
from bot import stripe as stripe_gateway
from bot.config import Settings
from bot.context import AppContext
from bot.scheduler.jobs import JobResult, JobSpec
from bot.scheduler.leader import SoloLeader
from bot.scheduler.runner import Scheduler
from bot.slack import alerts as slack_alerts
from bot.stripe import RechargeRun
from ledger import job_runs as records
from ledger.agents import get_agent, update_agent
from ledger.charges import charge
from ledger.db import transaction
from ledger.models import Account, Entry
from ledger.units import credits
from tests.support.factories import story

NOV = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def context(engine, db_url) -> AppContext:
    return AppContext(settings=Settings(database_url=db_url, run_scheduler=False), engine=engine)


@pytest.fixture
def sched(context) -> Scheduler:
    s = Scheduler(context, leader=SoloLeader(), runner="test")
    yield s
    s.shutdown()


def _renewal_starts(sessions, account_id):
    return transaction(
        sessions,
        lambda s: list(
            s.execute(
                select(Entry.memo)
                .where(Entry.account_id == account_id, Entry.kind == "renewal")
                .order_by(Entry.id)
            ).scalars()
        ),
    )


def _status(sessions, name):
    return transaction(sessions, lambda s: records.job_statuses(s).get(name))


def test_renewals_job_renews_on_time_and_records_the_run(sessions, sched):
    ids = story(sessions, now=NOV, cycle_day=1)
    with time_machine.travel(DEC - timedelta(seconds=1), tick=False):
        early = sched.run_if_leader("renewals")
    assert early.ok and early.result == "0 cycle(s) renewed in 0 account(s)"
    with time_machine.travel(DEC, tick=False):
        on_time = sched.run_if_leader("renewals")
    assert on_time.ok and on_time.result == "1 cycle(s) renewed in 1 account(s)"
    assert _renewal_starts(sessions, ids["account"])[-1] == "cycle starting 2026-12-01"

    row = _status(sessions, "renewals")
    assert (row.last_status, row.runs, row.failures, row.runner) == ("ok", 2, 0, "test")
    assert row.last_started_at == DEC
    # Idle runs update the job's row only; a run that did work is in the history too.
    history = transaction(sessions, lambda s: records.recent_runs(s, "renewals"))
    assert [r.result for r in history] == ["1 cycle(s) renewed in 1 account(s)"]


def test_a_double_fire_renews_once(sessions, context):
    ids = story(sessions, now=NOV, cycle_day=1)
    first, second = (Scheduler(context, leader=SoloLeader(), runner=r) for r in ("r1", "r2"))
    barrier = threading.Barrier(2)
    outcomes = []

    def fire(s: Scheduler) -> None:
        barrier.wait()
        outcomes.append(s.run_now("renewals", now=DEC + timedelta(seconds=5)))

    threads = [threading.Thread(target=fire, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.ok for o in outcomes)
    assert sorted(o.result for o in outcomes) == [
        "0 cycle(s) renewed in 1 account(s)",
        "1 cycle(s) renewed in 1 account(s)",
    ] or sorted(o.result for o in outcomes) == [
        "0 cycle(s) renewed in 0 account(s)",
        "1 cycle(s) renewed in 1 account(s)",
    ]
    assert _renewal_starts(sessions, ids["account"]) == [
        "cycle starting 2026-11-01",
        "cycle starting 2026-12-01",
    ]
    account = transaction(sessions, lambda s: s.get(Account, ids["account"]))
    assert account.plan_balance == credits(1000)


def test_month_rollover_job_resumes_limit_stopped_agents(sessions, sched):
    ids = story(sessions, now=NOV, cycle_day=10)
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(10))
    )
    transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 10, idempotency_key="k", now=NOV),
    )
    with time_machine.travel(DEC, tick=False):
        outcome = sched.run_if_leader("month_rollover")
        again = sched.run_if_leader("month_rollover")
    assert outcome.result == "2 agent(s) in 1 account(s) started a new month, 1 resumed"
    assert again.result == "0 agent(s) in 0 account(s) started a new month, 0 resumed"
    agent = transaction(sessions, lambda s: get_agent(s, ids["account"], ids["a"]))
    assert agent.status == "active"


def test_the_jobs_drive_the_payment_and_slack_ports(monkeypatch, sched):
    calls = []

    def port(name, result):
        def call(context):
            assert context is sched.context
            calls.append(name)
            return result

        return call

    monkeypatch.setattr(
        stripe_gateway, "process_recharge_requests", port("requests", RechargeRun(requests=2))
    )
    monkeypatch.setattr(stripe_gateway, "sweep_auto_recharge", port("sweep", RechargeRun()))
    monkeypatch.setattr(stripe_gateway, "reconcile_payments", port("reconcile", ["pi_1"]))
    monkeypatch.setattr(slack_alerts, "deliver_due_alerts", port("alerts", 3))
    results = {
        name: sched.run_if_leader(name).result
        for name in (
            "recharge_requests",
            "auto_recharge_sweep",
            "stripe_reconcile",
            "alert_delivery",
        )
    }
    assert calls == ["requests", "sweep", "reconcile", "alerts"]
    assert results == {
        "recharge_requests": "2 request(s)",
        "auto_recharge_sweep": "0 recharge(s) started",
        "stripe_reconcile": "1 payment(s) reconciled",
        "alert_delivery": "3 alert(s) delivered",
    }


def test_a_job_that_raises_is_logged_recorded_and_retried(monkeypatch, sessions, sched, caplog):
    failures = iter([RuntimeError("Stripe is down")])

    def sweep(context):
        for exc in failures:
            raise exc
        return RechargeRun(started=1)

    monkeypatch.setattr(stripe_gateway, "sweep_auto_recharge", sweep)
    with caplog.at_level(logging.ERROR, logger="creditbot.scheduler"):
        failed = sched.run_if_leader("auto_recharge_sweep")
    assert not failed.ok and "RuntimeError: Stripe is down" in failed.error
    assert "job auto_recharge_sweep failed" in caplog.text
    assert "Stripe is down" in caplog.text  # with its traceback
    row = _status(sessions, "auto_recharge_sweep")
    assert (row.last_status, row.consecutive_failures) == ("error", 1)
    assert "Stripe is down" in row.last_error

    retried = sched.run_if_leader("auto_recharge_sweep")
    assert retried.ok and retried.result == "1 recharge(s) started"
    row = _status(sessions, "auto_recharge_sweep")
    assert (row.last_status, row.consecutive_failures, row.failures, row.runs) == ("ok", 0, 1, 2)
    assert row.last_error is None
    runs = transaction(sessions, lambda s: records.recent_runs(s, "auto_recharge_sweep"))
    assert [r.status for r in runs] == ["ok", "error"]


def test_an_account_whose_renewal_fails_is_renewed_at_the_next_run(monkeypatch, sessions, sched):
    good = story(sessions, now=NOV, cycle_day=1, team="T1")
    bad = story(sessions, now=NOV, cycle_day=1, team="T2")
    real = scheduler_jobs.renew_due
    broken = {bad["account"]}

    def renew_due(session, account_id, *, now):
        if account_id in broken:
            broken.discard(account_id)
            raise RuntimeError("deadlock detected")
        return real(session, account_id, now=now)

    monkeypatch.setattr(scheduler_jobs, "renew_due", renew_due)
    with time_machine.travel(DEC, tick=False):
        first = sched.run_if_leader("renewals")
    assert not first.ok
    assert first.result == "1 cycle(s) renewed in 1 account(s)"
    assert f"account {bad['account']}: RuntimeError: deadlock detected" in first.error
    assert _renewal_starts(sessions, good["account"])[-1] == "cycle starting 2026-12-01"
    assert _renewal_starts(sessions, bad["account"]) == ["cycle starting 2026-11-01"]

    with time_machine.travel(DEC + timedelta(minutes=1), tick=False):
        second = sched.run_if_leader("renewals")
    assert second.ok and second.result == "1 cycle(s) renewed in 1 account(s)"
    assert _renewal_starts(sessions, bad["account"])[-1] == "cycle starting 2026-12-01"
    assert len(_renewal_starts(sessions, good["account"])) == 2


def _wait(predicate, timeout=30.0):  # generous: only a failing test waits it out
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_started_scheduler_catches_up_missed_renewals_at_once(sessions, context):
    ids = story(sessions, now=NOV, cycle_day=15)
    # The service was down from November to late February; it starts now.
    with time_machine.travel(datetime(2027, 2, 20, 9, tzinfo=UTC), tick=True):
        sched = Scheduler(context, leader=SoloLeader())
        sched.start()
        try:
            assert _wait(lambda: _status(sessions, "renewals") is not None)
        finally:
            sched.shutdown()
    starts = _renewal_starts(sessions, ids["account"])
    assert starts[1:] == [
        f"cycle starting {d}" for d in ("2026-11-15", "2026-12-15", "2027-01-15", "2027-02-15")
    ]
    account = transaction(sessions, lambda s: s.get(Account, ids["account"]))
    assert account.cycle_start == date(2027, 2, 15)
    row = _status(sessions, "renewals")
    assert row.next_run_at is not None and row.next_run_at > row.last_started_at


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_real_timer_failing_job_is_retried_until_it_succeeds(sessions, context):
    attempts = []

    def flaky(context, now):
        attempts.append(now)
        if len(attempts) < 3:
            raise ConnectionError("Slack is slow")
        return JobResult("done", True)

    sched = Scheduler(context, leader=SoloLeader(), jobs=[JobSpec("flaky", 1, flaky, "test")])
    sched.start()
    try:
        assert _wait(lambda: len(attempts) >= 3)
        assert _wait(lambda: getattr(_status(sessions, "flaky"), "last_status", None) == "ok")
    finally:
        sched.shutdown()
    row = _status(sessions, "flaky")
    assert row.failures == 2 and row.consecutive_failures == 0 and row.last_result == "done"
    assert not sched.running
