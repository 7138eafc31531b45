"""A pass over recharge requests or wallets (the scheduler's recharge jobs, `creditbot
stripe sweep`) goes on past an account that fails: the failure is recorded in the job's
run and retried, and a request is marked handled only once it was."""

from __future__ import annotations

from datetime import timedelta

import pytest

import bot.stripe.recharges as recharges_module
from bot import stripe as gateway
from bot.scheduler.leader import SoloLeader
from bot.scheduler.runner import Scheduler
from ledger import job_runs, outbox
from ledger.auto_recharge import update_auto_recharge
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.recharges import last_recharge
from tests.support.factories import auto_recharge_without_card, story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    localstripe_url,
    payments_app,
    saved_card,
)


@pytest.fixture
def context(payments_app):  # noqa: F811
    return payments_app


def _sched(context):
    return Scheduler(context, leader=SoloLeader())


def _recharge_settings(context, account_id, *, threshold=1000, amount=2000, cap=50000):
    transaction(
        context.sessions,
        lambda s: update_auto_recharge(
            s,
            account_id,
            enabled=True,
            threshold_minor=threshold,
            amount_minor=amount,
            monthly_cap_minor=cap,
        ),
    )


def _cap_alerts(context):
    return transaction(
        context.sessions,
        lambda s: [
            m.payload
            for m in outbox.pending(s)
            if m.kind == outbox.Alert.RECHARGE_FAILED
            and m.payload.get("reason") == "monthly_cap_reached"
        ],
    )


def test_an_account_at_its_monthly_cap_never_stops_the_sweep_for_the_others(
    context,
    localstripe_url,  # noqa: F811
):
    capped = story(context.sessions, wallet=5, team="T1")["account"]
    saved_card(context, localstripe_url, capped)
    # One recharge fills the month's cap; the wallet stays under the threshold after it.
    _recharge_settings(context, capped, threshold=100_000, amount=2000, cap=2000)
    assert _sched(context).run_now("auto_recharge_sweep").ok
    assert transaction(context.sessions, lambda s: last_recharge(s, capped)).status == ("succeeded")
    assert _sched(context).run_now("auto_recharge_sweep").ok  # asks again: the cap alert
    later = story(context.sessions, wallet=5, team="T2")["account"]  # swept after it
    saved_card(context, localstripe_url, later)
    _recharge_settings(context, later)

    outcome = _sched(context).run_now("auto_recharge_sweep")  # the capped account asks again

    assert outcome.ok, outcome.error
    assert outcome.result == "1 recharge(s) started"
    done = transaction(context.sessions, lambda s: last_recharge(s, later))
    assert done.status == "succeeded"
    assert len(_cap_alerts(context)) == 1
    # An admin's run says why, without a traceback.
    assert gateway.recharge_now(context, capped) == "skipped: the monthly cap would be exceeded"


def test_an_account_that_raises_is_recorded_and_the_sweep_goes_on(context, monkeypatch, caplog):
    first = story(context.sessions, wallet=5, team="T1")["account"]
    second = story(context.sessions, wallet=5, team="T2")["account"]
    for account_id in (first, second):
        auto_recharge_without_card(context.sessions, account_id)
    real = recharges_module.request_recharge

    def request_recharge(session, account_id, **kw):
        if account_id == first:
            raise RuntimeError("database hiccup")
        return real(session, account_id, **kw)

    monkeypatch.setattr(recharges_module, "request_recharge", request_recharge)
    outcome = _sched(context).run_now("auto_recharge_sweep")

    assert not outcome.ok
    assert f"account {first}: RuntimeError: database hiccup" in outcome.error
    # The second account was still handled (it has no card: failed at once, alerted).
    assert transaction(context.sessions, lambda s: last_recharge(s, second)).reason == (
        "missing_payment_method"
    )
    status = transaction(context.sessions, job_runs.job_statuses)["auto_recharge_sweep"]
    assert status.last_status == "error" and "database hiccup" in status.last_error
    assert "auto-recharge failed for account" in caplog.text

    monkeypatch.setattr(recharges_module, "request_recharge", real)  # fixed: retried
    gateway.sweep_auto_recharge(context)
    assert transaction(context.sessions, lambda s: last_recharge(s, first)) is not None


def test_a_sweep_whose_attempts_all_failed_is_not_reported_ok(context):
    account_id = story(context.sessions, wallet=5)["account"]
    auto_recharge_without_card(context.sessions, account_id)
    outcome = _sched(context).run_now("auto_recharge_sweep")
    assert not outcome.ok
    assert outcome.result == "1 recharge(s) started"
    assert f"account {account_id}: missing_payment_method" in outcome.error


def _request_by_charge(context, ids):
    """A use_balance agent's charge leaves the wallet under the threshold: a request."""
    transaction(
        context.sessions,
        lambda s: charge(s, ids["account"], ids["b"], "message", 1, idempotency_key="m1"),
    )


def _requests(context, account_id):
    return transaction(
        context.sessions,
        lambda s: [
            m
            for m in outbox.pending(s, account_id=account_id)
            if m.kind == outbox.RECHARGE_REQUESTED
        ],
    )


def test_a_recharge_request_is_marked_handled_only_after_it_was(context, monkeypatch):
    failing = story(context.sessions, plan=0, wallet=5, team="T1")
    working = story(context.sessions, plan=0, wallet=5, team="T2")
    for ids in (failing, working):
        auto_recharge_without_card(context.sessions, ids["account"])
        _request_by_charge(context, ids)
    real = recharges_module.request_recharge

    def request_recharge(session, account_id, **kw):
        if account_id == failing["account"]:
            raise RuntimeError("database hiccup")
        return real(session, account_id, **kw)

    monkeypatch.setattr(recharges_module, "request_recharge", request_recharge)
    outcome = _sched(context).run_now("recharge_requests")

    assert not outcome.ok and "database hiccup" in outcome.error
    assert outcome.result == "1 request(s)"
    assert _requests(context, working["account"]) == []  # handled
    [waiting] = _requests(context, failing["account"])  # not lost: offered again later
    assert waiting.attempts == 1 and "database hiccup" in waiting.last_error
    assert waiting.available_at > utcnow()

    monkeypatch.setattr(recharges_module, "request_recharge", real)
    run = gateway.process_recharge_requests(context, now=utcnow() + timedelta(minutes=1))
    assert run.requests == 1 and run.failed == [
        f"account {failing['account']}: missing_payment_method"
    ]
    assert _requests(context, failing["account"]) == []
