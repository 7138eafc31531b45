"""Auto-recharge attempts in the ledger (no Stripe): one in flight, the monthly cap in the
account's time zone, a fix link when no card is saved, retries after API errors, and a
pause after three failures in a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ledger.accounts import get_account
from ledger.auto_recharge import month_recharged, update_auto_recharge
from ledger.charges import charge
from ledger.db import transaction
from ledger.models.payments import Recharge
from ledger.recharges import (
    MAX_TRIES,
    RETRY_AFTER_FAILURE,
    claim_due_recharges,
    last_recharge,
    recharge_failed,
    recharge_retry_later,
    recharge_succeeded,
    request_recharge,
)
from ledger.stripe_records import save_card
from ledger.units import credits
from ledger.wallet import debit_wallet
from tests.support.factories import NOW, auto_recharge_without_card, story
from tests.support.ledger_reads import pending_alerts, wallet_of


def _auto(sessions, account_id, *, threshold=1000, amount=2000, cap=50000, card=True):
    if not card:
        auto_recharge_without_card(
            sessions, account_id, threshold_minor=threshold, amount_minor=amount, cap_minor=cap
        )
        return

    def work(s):
        save_card(
            s,
            account_id,
            customer_id=f"cus_{account_id}",
            payment_method_id="pm_1",
            brand="visa",
            last4="4242",
            now=NOW,
        )
        update_auto_recharge(
            s,
            account_id,
            enabled=True,
            threshold_minor=threshold,
            amount_minor=amount,
            monthly_cap_minor=cap,
        )

    transaction(sessions, work)


def _request(sessions, account_id, now=NOW, trigger="sweep"):
    return transaction(
        sessions,
        lambda s: request_recharge(
            s, account_id, trigger=trigger, fix_link_base="https://bot/fix/", now=now
        ),
    )


def test_recharge_success_credits_once_resumes_wallet_empty_agents_and_alerts(sessions):
    ids = story(sessions, plan=0, wallet=1)
    acc = ids["account"]
    _auto(sessions, acc)
    # Agent B (use_balance) spends the wallet down to zero and stops: wallet_empty.
    result = transaction(
        sessions, lambda s: charge(s, acc, ids["b"], "message", 1, idempotency_key="m1")
    )
    assert result.allowed and result.agent_status == "stopped"
    assert transaction(sessions, lambda s: get_account(s, acc).recharge_requested)
    request = _request(sessions, acc, trigger="charge")
    assert request.job is not None and request.job.amount_minor == 2000
    assert not transaction(sessions, lambda s: get_account(s, acc).recharge_requested)

    def succeed():
        return transaction(
            sessions,
            lambda s: recharge_succeeded(
                s,
                request.job.recharge_id,
                payment_intent_id="pi_rc",
                amount_minor=2000,
                currency="usd",
                now=NOW,
            ),
        )

    first, second = succeed(), succeed()  # the direct answer, then the webhook
    assert not first.replayed and second.replayed
    assert wallet_of(sessions, acc) == credits(2000)
    recharge = transaction(sessions, lambda s: last_recharge(s, acc))
    assert recharge.status == "succeeded" and recharge.payment_intent_id == "pi_rc"
    assert len(pending_alerts(sessions, "alert.recharge_succeeded")) == 1
    assert pending_alerts(sessions, "alert.topup_received") == []
    resumed = pending_alerts(sessions, "alert.agent_resumed")
    assert [a["agent_id"] for a in resumed] == [ids["b"]]


def test_no_card_fails_at_once_with_a_fix_link(sessions):
    acc = story(sessions, wallet=5)["account"]
    _auto(sessions, acc, card=False)
    request = _request(sessions, acc)
    assert request.job is None
    failed = request.failed
    assert failed.status == "failed" and failed.reason == "missing_payment_method"
    assert failed.fix_url == f"https://bot/fix/{failed.idempotency_key}"
    alert = pending_alerts(sessions, "alert.recharge_failed")[0]
    assert alert["reason"] == "missing_payment_method" and alert["fix_url"] == failed.fix_url


def test_three_failures_in_a_row_pause_auto_recharge_and_saving_settings_resumes(sessions):
    acc = story(sessions, wallet=5)["account"]
    _auto(sessions, acc, card=False)
    now = NOW
    assert _request(sessions, acc, now).failed is not None
    # Right after a failure automatic triggers wait instead of hammering the card.
    assert _request(sessions, acc, now + timedelta(minutes=1)).skipped
    for _ in range(2):
        now += RETRY_AFTER_FAILURE + timedelta(seconds=1)
        assert _request(sessions, acc, now).failed is not None
    account = transaction(sessions, lambda s: get_account(s, acc))
    assert account.auto_recharge_paused
    paused = pending_alerts(sessions, "alert.auto_recharge_paused")
    assert len(paused) == 1 and paused[0]["failures"] == 3
    now += timedelta(hours=1)
    assert _request(sessions, acc, now).skipped == "auto-recharge is paused"
    # The admin saves a card and the settings again: it un-pauses and counts failures
    # afresh (a fourth failure in a row does not pause it again).
    _auto(sessions, acc)
    job = _request(sessions, acc, now).job
    failed = transaction(
        sessions, lambda s: recharge_failed(s, job.recharge_id, reason="card_declined", now=now)
    )
    assert failed.status == "failed"
    assert not transaction(sessions, lambda s: get_account(s, acc).auto_recharge_paused)


def test_one_pending_attempt_per_account_enforced_by_the_database(sessions):
    acc = story(sessions, wallet=5)["account"]
    _auto(sessions, acc)
    assert _request(sessions, acc).job is not None
    assert _request(sessions, acc).skipped == "a recharge is already in flight"

    def sneak_in(s):  # what a racing worker that skipped the check would write
        s.add(
            Recharge(
                account_id=acc,
                idempotency_key="recharge-sneaky",
                status="pending",
                trigger="sweep",
                amount_minor=2000,
                currency="USD",
                tries=0,
                paused_auto_recharge=False,
                created_at=NOW,
            )
        )
        s.flush()

    with pytest.raises(IntegrityError):
        transaction(sessions, sneak_in, retries=0)
    rows = transaction(sessions, lambda s: list(s.execute(select(Recharge)).scalars()))
    assert len(rows) == 1


def test_monthly_cap_counts_the_month_in_the_account_time_zone(sessions):
    # Auckland: 2026-11-30 12:00 UTC is already 1 December there.
    acc = story(sessions, wallet=5, timezone="Pacific/Auckland")["account"]
    _auto(sessions, acc, amount=2000, cap=5000)  # two recharges fit, not three
    start = datetime(2026, 11, 10, tzinfo=UTC)
    for i in range(2):
        job = _request(sessions, acc, start).job
        transaction(
            sessions,
            lambda s, job=job, i=i: recharge_succeeded(
                s,
                job.recharge_id,
                payment_intent_id=f"pi_{i}",
                amount_minor=2000,
                currency="usd",
                now=start,
            ),
        )
        transaction(  # spend it again so the wallet is under the threshold
            sessions,
            lambda s, i=i: debit_wallet(s, acc, credits(2000), key=f"spend{i}"),
        )
    capped = _request(sessions, acc, start + timedelta(days=1))
    assert capped.skipped == "the monthly cap would be exceeded"
    month = transaction(
        sessions,
        lambda s: month_recharged(s, get_account(s, acc), start + timedelta(days=1)),
    )
    assert month == 4000
    alert = pending_alerts(sessions, "alert.recharge_failed")
    assert len(alert) == 1 and alert[0]["reason"] == "monthly_cap_reached"
    # Still November in UTC, but December in Auckland: a new month, a new cap.
    december = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert _request(sessions, acc, december).job is not None


def test_api_errors_retry_with_backoff_then_fail(sessions):
    acc = story(sessions, wallet=5)["account"]
    _auto(sessions, acc)
    job = _request(sessions, acc).job
    now = NOW
    for _ in range(MAX_TRIES - 1):
        r = transaction(
            sessions,
            lambda s, now=now: recharge_retry_later(s, job.recharge_id, "503", now=now),
        )
        assert r.status == "pending" and r.next_try_at > now
        assert transaction(sessions, lambda s, now=now: claim_due_recharges(s, now=now)) == []
        now = r.next_try_at
        claimed = transaction(sessions, lambda s, now=now: claim_due_recharges(s, now=now))
        assert [j.idempotency_key for j in claimed] == [job.idempotency_key]  # same key
    final = transaction(
        sessions, lambda s: recharge_retry_later(s, job.recharge_id, "503", now=now)
    )
    assert final.status == "failed" and final.reason == "api_error"
    # A success reported late (the money was taken after all) is still credited.
    transaction(
        sessions,
        lambda s: recharge_succeeded(
            s, job.recharge_id, payment_intent_id="pi_late", amount_minor=2000, currency="usd"
        ),
    )
    assert transaction(sessions, lambda s: last_recharge(s, acc)).status == "succeeded"


def _recharged(sessions, account_id, now, key):
    """One recharge of the account that succeeded at `now`."""
    job = _request(sessions, account_id, now).job
    transaction(
        sessions,
        lambda s: recharge_succeeded(
            s, job.recharge_id, payment_intent_id=key, amount_minor=2000, currency="usd", now=now
        ),
    )


def test_asking_again_at_the_monthly_cap_is_a_quiet_skip_with_one_alert(sessions):
    # Issue 10 item 0: the second ask in a month wrote the cap alert again and its dedup
    # key's UNIQUE constraint raised, every minute, for the rest of the month.
    acc = story(sessions, wallet=5)["account"]
    _auto(sessions, acc, threshold=100_000, amount=2000, cap=2000)  # still under after one
    _recharged(sessions, acc, NOW, "pi_1")
    for minutes in (1, 2, 3):
        later = NOW + timedelta(minutes=minutes)
        assert _request(sessions, acc, later).skipped == "the monthly cap would be exceeded"
    alerts = pending_alerts(sessions, "alert.recharge_failed")
    assert [a["reason"] for a in alerts] == ["monthly_cap_reached"]
    assert not transaction(sessions, lambda s: get_account(s, acc).recharge_requested)


def test_an_admin_run_right_after_a_failure_starts_one_now(sessions):
    acc = story(sessions, wallet=5)["account"]
    _auto(sessions, acc)
    job = _request(sessions, acc).job
    transaction(
        sessions,
        lambda s: recharge_failed(s, job.recharge_id, reason="card_declined", now=NOW),
    )
    soon = NOW + timedelta(minutes=1)
    # Automatic triggers wait; the admin who just fixed the card does not.
    assert _request(sessions, acc, soon, trigger="sweep").skipped == (
        "the last attempt failed moments ago"
    )
    assert _request(sessions, acc, soon, trigger="charge").skipped
    manual = _request(sessions, acc, soon, trigger="manual")
    assert manual.job is not None and manual.job.recharge_id != job.recharge_id
