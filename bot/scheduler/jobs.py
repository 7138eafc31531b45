"""The scheduler's jobs: what each does, how often, and what it reports.

Every job is idempotent (renewals are keyed on account and cycle start, the month rollover
only moves agents whose month is behind, the outbox hands each message to one deliverer,
Stripe work is keyed per attempt and per payment), so an overlap of two leaders or a run
cut halfway changes nothing twice. A job works from what the database says is still due,
so one that raises loses nothing: its next run does what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session

from bot import stripe as stripe_gateway
from bot.context import AppContext
from bot.outbound import email as outbound_email
from bot.outbound import webhooks as outbound_webhooks
from bot.slack import alerts as slack_alerts
from ledger import job_runs
from ledger.db import transaction
from ledger.renewals import accounts_due, renew_due
from ledger.rollover import accounts_to_roll, roll_account

log = logging.getLogger("creditbot.scheduler")

#: How long the history of runs is kept.
KEEP_RUNS = timedelta(days=14)


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


#: A job's work: given the context and the time of the run, what it did.
JobWork = Callable[[AppContext, datetime], JobResult]


@dataclass(frozen=True)
class JobSpec:
    name: str
    seconds: int
    work: JobWork
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


def _raise_if_failed(result: JobResult, failed: list[str]) -> JobResult:
    """`result`; JobFailed carrying it when some accounts failed."""
    if failed:
        raise JobFailed(f"{result.summary}; failed: " + "; ".join(failed), result)
    return result


def renew_cycles(context: AppContext, now: datetime) -> JobResult:
    """Renew every account whose cycle ended by `now`: each missed cycle once, in order."""
    due = transaction(context.sessions, lambda s: accounts_due(s, now=now))
    renewed, accounts, failed = _per_account(
        context, due, lambda s, a: len(renew_due(s, a, now=now)), "renewal"
    )
    return _raise_if_failed(
        JobResult(f"{renewed} cycle(s) renewed in {accounts} account(s)", renewed > 0), failed
    )


def start_new_months(context: AppContext, now: datetime) -> JobResult:
    """Start the new calendar month for agents whose month ended (account time zone)."""
    ids = transaction(context.sessions, lambda s: accounts_to_roll(s, now=now))
    resumed = 0

    def roll(session: Session, account_id: int) -> int:
        nonlocal resumed
        rollover = roll_account(session, account_id, now=now)
        resumed += len(rollover.resumed)
        return len(rollover.rolled)

    rolled, accounts, failed = _per_account(context, ids, roll, "month rollover")
    return _raise_if_failed(
        JobResult(
            f"{rolled} agent(s) in {accounts} account(s) started a new month, {resumed} resumed",
            rolled > 0,
        ),
        failed,
    )


def _counted(done: object, what: str) -> JobResult:
    """A summary of what an adapter's call returned: a count, or the things it did."""
    if done is None or isinstance(done, bool):
        n = int(bool(done))
    elif isinstance(done, int):
        n = done
    elif isinstance(done, Sized):
        n = len(done)
    else:
        n = 1
    return JobResult(f"{n} {what}", n > 0)


# The Stripe and Slack functions are looked up on their modules at each run, so a test can
# replace one there.


def _recharge_result(run: stripe_gateway.RechargeRun, summary: str, count: int) -> JobResult:
    """A recharge pass as a job result: not ok when an account failed or an attempt it
    made failed (they are retried, and alerted in Slack; the run says which)."""
    result = JobResult(f"{count} {summary}", count > 0 or bool(run.failed or run.errors))
    if not run.ok:
        raise JobFailed(f"{result.summary}; failed: {run.problems()}", result)
    return result


def start_requested_recharges(context: AppContext, now: datetime) -> JobResult:
    """Act on recharge requests written by charges (so a recharge follows within seconds)."""
    run = stripe_gateway.process_recharge_requests(context)
    return _recharge_result(run, "request(s)", run.requests)


def sweep_wallets_under_threshold(context: AppContext, now: datetime) -> JobResult:
    """Start a recharge for wallets under their threshold that no charge asked for."""
    run = stripe_gateway.sweep_auto_recharge(context)
    return _recharge_result(run, "recharge(s) started", run.started)


def deliver_alerts(context: AppContext, now: datetime) -> JobResult:
    """Post due alerts from the outbox to Slack (failed posts come back after a backoff)."""
    return _counted(slack_alerts.deliver_due_alerts(context), "alert(s) delivered")


def deliver_webhooks(context: AppContext, now: datetime) -> JobResult:
    """Post due alerts to the accounts' webhook endpoints (each endpoint retries alone)."""
    return _counted(outbound_webhooks.deliver_due_webhooks(context), "webhook(s) delivered")


def deliver_emails(context: AppContext, now: datetime) -> JobResult:
    """Email due alerts to the accounts' alert addresses over SMTP."""
    return _counted(outbound_email.deliver_due_emails(context), "email(s) sent")


def reconcile_stripe(context: AppContext, now: datetime) -> JobResult:
    """Credit Stripe payments, and take back refunds, whose webhook never came."""
    paid = _counted(stripe_gateway.reconcile_payments(context), "payment(s) reconciled")
    refunds = stripe_gateway.reconcile_refunds(context)
    if not refunds:
        return paid
    return JobResult(f"{paid.summary}, {refunds} refund(s) taken back", True)


def forget_old_runs(context: AppContext, now: datetime) -> JobResult:
    """Forget the run history older than two weeks."""
    n = transaction(context.sessions, lambda s: job_runs.prune_runs(s, before=now - KEEP_RUNS))
    return JobResult(f"{n} old run(s) forgotten", n > 0)


JOBS: tuple[JobSpec, ...] = (
    JobSpec("renewals", 60, renew_cycles, "renew plan credits of accounts whose cycle ended", True),
    JobSpec("month_rollover", 60, start_new_months, "new month: resume limit-stopped agents", True),
    JobSpec("recharge_requests", 2, start_requested_recharges, "recharges asked for by charges"),
    JobSpec(
        "auto_recharge_sweep", 60, sweep_wallets_under_threshold, "wallets under the threshold"
    ),
    JobSpec("alert_delivery", 5, deliver_alerts, "post due alerts to Slack, with retries"),
    JobSpec("webhook_delivery", 5, deliver_webhooks, "post due alerts to webhook endpoints"),
    JobSpec("email_delivery", 5, deliver_emails, "email due alerts to alert addresses"),
    JobSpec(
        "stripe_reconcile", 600, reconcile_stripe, "payments and refunds whose webhook never came"
    ),
    JobSpec("prune_job_runs", 3600, forget_old_runs, "forget run history older than 14 days"),
)
