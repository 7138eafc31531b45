"""`creditbot jobs` shows each job's last run, result and next run; `creditbot jobs run`
runs one now; `creditbot scheduler --once` runs them all once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from bot import stripe as stripe_gateway
from bot.cli import cli, environment
from bot.config import get_settings
from tests.support.factories import story


@pytest.fixture
def run(monkeypatch, sqlite_url):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    environment.context.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    yield invoke
    get_settings.cache_clear()
    environment.context.cache_clear()


def test_jobs_lists_every_job_before_any_run(run):
    result = run("jobs")
    assert result.exit_code == 0
    for name in ("renewals", "month_rollover", "recharge_requests", "alert_delivery"):
        assert name in result.output
    assert "never" in result.output
    assert "leader: none has run yet" in result.output


def test_jobs_run_then_jobs_shows_the_result_and_failures(run, monkeypatch):
    story(environment.context().sessions, now=datetime(2026, 10, 10, tzinfo=UTC), cycle_day=1)
    ok = run("jobs", "run", "renewals")
    assert ok.exit_code == 0
    assert "renewals: ok" in ok.output and "renewed in 1 account(s)" in ok.output

    def broken(context):
        raise RuntimeError("card network unreachable")

    monkeypatch.setattr(stripe_gateway, "reconcile_payments", broken)
    failed = CliRunner().invoke(cli, ["jobs", "run", "stripe_reconcile"])
    assert failed.exit_code == 1
    assert "card network unreachable" in failed.output

    table = run("jobs")
    lines = {line.split()[1]: line for line in table.output.splitlines() if "│" in line[:2]}
    assert "ok" in lines["renewals"] and "renewed in 1" in lines["renewals"]
    assert "error" in lines["stripe_reconcile"]
    assert "card network unreachable" in lines["stripe_reconcile"]
    assert lines["stripe_reconcile"].rstrip("│ ").split("│")[-2].strip() == "1"  # fails in a row

    history = run("jobs", "history")
    assert "stripe_reconcile" in history.output and "renewals" in history.output


def test_jobs_run_refuses_an_unknown_job(run):
    result = CliRunner().invoke(cli, ["jobs", "run", "nope"])
    assert result.exit_code != 0
    assert "No job 'nope'" in result.output


def test_scheduler_once_runs_every_job_and_records_it(run):
    result = run("scheduler", "--once")
    assert result.exit_code == 0, result.output
    table = run("jobs")
    assert "never" not in table.output
    assert "leader:" in table.output and "none has run yet" not in table.output
