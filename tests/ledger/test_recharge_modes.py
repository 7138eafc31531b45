"""Auto-recharge modes: "add N when below T" whose N can close the gap (issue 10 item 2),
and "top the wallet back up to B when below T", sized at the moment of the recharge within
the top-up minimum and maximum and the monthly cap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.accounts import get_account
from ledger.audit import Actor, list_events
from ledger.auto_recharge import (
    credits_cost,
    recharge_amount,
    recharge_preview,
    update_auto_recharge,
)
from ledger.db import transaction
from ledger.errors import FieldError
from ledger.models import Account
from ledger.recharges import recharge_succeeded, request_recharge
from ledger.stripe_records import save_card
from ledger.units import credits, money_to_credits
from tests.support.factories import NOW, story
from tests.support.ledger_reads import pending_alerts, wallet_of


def _account(**changes) -> Account:
    """An account in memory: wallet 300 credits, top-ups $10-$1,000, cap $500, target $50."""
    values = dict(
        currency="USD", credits_per_unit=100, wallet_balance=credits(300),
        topup_min_minor=1000, topup_max_minor=100_000, auto_recharge_monthly_cap_minor=50_000,
        auto_recharge_mode="target", auto_recharge_target_minor=5000,
        auto_recharge_amount_minor=2000, auto_recharge_threshold_minor=1000,
    )  # fmt: skip
    values.update(changes)
    return Account(**values)


def test_a_target_recharge_buys_what_the_wallet_lacks_now():
    assert recharge_amount(_account(), 0).amount_minor == 4700


def test_a_target_recharge_stays_within_the_top_up_limits():
    assert recharge_amount(_account(wallet_balance=credits(4950)), 0).amount_minor == 1000
    big = _account(
        auto_recharge_target_minor=500_000, wallet_balance=0, auto_recharge_monthly_cap_minor=10**6
    )
    assert recharge_amount(big, 0).amount_minor == 100_000


def test_a_target_recharge_takes_what_the_monthly_cap_still_allows():
    capped = recharge_amount(_account(), 50_000 - 3000)
    assert (capped.amount_minor, capped.capped) == (3000, True)
    none_left = recharge_amount(_account(), 50_000 - 999)
    assert (none_left.amount_minor, none_left.skipped) == (None, "monthly_cap_reached")


def test_a_fixed_amount_the_cap_cannot_take_is_not_made():
    add = _account(auto_recharge_mode="add")
    assert recharge_amount(add, 48_000).amount_minor == 2000
    assert recharge_amount(add, 48_001).skipped == "monthly_cap_reached"


def test_a_wallet_at_its_target_needs_nothing():
    assert recharge_amount(_account(wallet_balance=credits(5000)), 0).skipped == "not_needed"


def test_the_cost_of_credits_is_rounded_up_to_the_cent():
    # 3 credits per 1.00: 10 credits cost 3.33..., so 3.34 (never a cent short).
    assert credits_cost(credits(10), "USD", 3) == 334
    assert credits_cost(credits(10), "JPY", 3) == 4
    assert credits_cost(credits(3), "USD", 3) == 100


@given(
    wallet=st.integers(0, credits(200_000)),
    target=st.integers(1, 10_000_000),
    low=st.integers(1, 10_000),
    span=st.integers(0, 1_000_000),
    cap=st.integers(1, 2_000_000),
    done=st.integers(0, 2_000_000),
    price=st.integers(1, 1_000),
)
def test_any_target_recharge_keeps_its_bounds(wallet, target, low, span, cap, done, price):
    account = _account(
        wallet_balance=wallet, auto_recharge_target_minor=target, topup_min_minor=low,
        topup_max_minor=low + span, auto_recharge_monthly_cap_minor=cap, credits_per_unit=price,
    )  # fmt: skip
    sized = recharge_amount(account, done)
    short = money_to_credits(target, "USD", price) - wallet
    if short <= 0:
        assert sized.skipped == "not_needed"
        return
    if sized.amount_minor is None:
        assert sized.skipped == "monthly_cap_reached" and cap - done < low
        return
    amount = sized.amount_minor
    assert low <= amount <= low + span and done + amount <= cap
    if not sized.capped and amount < low + span:
        # Uncapped and under the maximum: it reaches the target, by less than a cent over
        # unless the minimum asked for more.
        bought = money_to_credits(amount, "USD", price)
        assert bought >= short
        assert amount == low or money_to_credits(amount - 1, "USD", price) < short


def _save(sessions, acc, **settings):
    """Auto-recharge turned on, with a card saved first (as turning it on needs)."""

    def work(s):
        save_card(s, acc, customer_id="cus_1", payment_method_id="pm_1", brand="visa",
                  last4="4242", now=NOW)  # fmt: skip
        return update_auto_recharge(s, acc, enabled=True, actor=Actor.slack("UADMIN"), **settings)

    return transaction(sessions, work)


def test_an_amount_that_cannot_close_the_gap_is_raised_to_what_does():
    # $20 set, threshold $50, the wallet holds $3 worth: $47 lifts it back to $50.
    add = _account(auto_recharge_mode="add", auto_recharge_threshold_minor=5000)
    sized = recharge_amount(add, 0)
    assert (sized.amount_minor, sized.raised, sized.capped) == (4700, True, False)
    empty = _account(auto_recharge_mode="add", auto_recharge_threshold_minor=5000, wallet_balance=0)
    assert recharge_amount(empty, 0).amount_minor == 5000
    # Within what the monthly cap still allows; a cap that cannot take the amount set at
    # all makes no recharge (as before).
    assert recharge_amount(add, 50_000 - 3000).amount_minor == 3000
    assert recharge_amount(add, 50_000 - 3000).capped
    assert recharge_amount(add, 50_000 - 1999).skipped == "monthly_cap_reached"
    # An amount that closes the gap is charged as set.
    enough = _account(auto_recharge_mode="add", auto_recharge_threshold_minor=300)
    assert (recharge_amount(enough, 0).amount_minor, recharge_amount(enough, 0).raised) == (
        2000,
        False,
    )


def test_one_sized_recharge_lifts_the_wallet_back_to_the_threshold(sessions):
    acc = story(sessions, plan=0, wallet=5)["account"]
    saved = _save(sessions, acc, threshold_minor=5000, amount_minor=2000)
    assert (saved.mode, saved.amount_minor) == ("add", 2000), "saved as set"
    job = transaction(sessions, lambda s: request_recharge(s, acc, trigger="sweep", now=NOW)).job
    assert job.amount_minor == 4995
    transaction(
        sessions,
        lambda s: recharge_succeeded(s, job.recharge_id, payment_intent_id="pi_s",
                                     amount_minor=job.amount_minor, currency="usd", now=NOW),
    )  # fmt: skip
    assert wallet_of(sessions, acc) == credits(5000)
    again = transaction(
        sessions,
        lambda s: request_recharge(s, acc, trigger="sweep", now=NOW + timedelta(minutes=1)),
    )
    assert again.skipped == "the wallet is not under the threshold", "one recharge was enough"


def test_a_target_at_or_under_the_threshold_is_refused_on_the_target_field(sessions):
    acc = story(sessions)["account"]
    with pytest.raises(FieldError) as refused:
        _save(sessions, acc, threshold_minor=2000, amount_minor=0, mode="target",
              target_minor=2000)  # fmt: skip
    assert refused.value.field == "target" and "above the threshold" in str(refused.value)
    saved = _save(sessions, acc, threshold_minor=2000, amount_minor=0, mode="target",
                  target_minor=5000)  # fmt: skip
    assert (saved.mode, saved.target_minor) == ("target", 5000)
    (event,) = [
        e
        for e in transaction(sessions, lambda s: list_events(s, acc))
        if e.action == "auto_recharge"
    ]
    assert event.after["mode"] == "target" and event.before["mode"] == "add"
    assert (event.actor_kind, event.actor) == ("slack_user", "UADMIN")


def test_a_target_recharge_lifts_the_wallet_to_its_target_in_one_attempt(sessions):
    acc = story(sessions, plan=0, wallet=5)["account"]
    _save(sessions, acc, threshold_minor=2000, amount_minor=0, mode="target", target_minor=5000)
    transaction(
        sessions,
        lambda s: save_card(
            s,
            acc,
            customer_id="cus_1",
            payment_method_id="pm_1",
            brand="visa",
            last4="4242",
            now=NOW,
        ),  # fmt: skip
    )
    preview = transaction(sessions, lambda s: recharge_preview(s, acc, now=NOW))
    assert preview.amount_minor == 4995  # 4,995 credits short of 5,000
    job = transaction(sessions, lambda s: request_recharge(s, acc, trigger="sweep", now=NOW)).job
    assert job is not None and job.amount_minor == 4995
    transaction(
        sessions,
        lambda s: recharge_succeeded(s, job.recharge_id, payment_intent_id="pi_t",
                                     amount_minor=job.amount_minor, currency="usd", now=NOW),
    )  # fmt: skip
    assert wallet_of(sessions, acc) == credits(5000)
    again = transaction(
        sessions,
        lambda s: request_recharge(s, acc, trigger="sweep", now=NOW + timedelta(minutes=1)),
    )
    assert again.skipped == "the wallet is not under the threshold"


def test_a_target_recharge_the_cap_cannot_take_alerts_the_cap(sessions):
    acc = story(sessions, plan=0, wallet=5)["account"]
    _save(sessions, acc, threshold_minor=2000, amount_minor=0, mode="target", target_minor=5000,
          monthly_cap_minor=1000)  # fmt: skip
    transaction(
        sessions,
        lambda s: save_card(
            s,
            acc,
            customer_id="cus_1",
            payment_method_id="pm_1",
            brand="visa",
            last4="4242",
            now=NOW,
        ),  # fmt: skip
    )
    first = transaction(sessions, lambda s: request_recharge(s, acc, now=NOW)).job
    assert first.amount_minor == 1000, "what the cap allows"
    transaction(
        sessions,
        lambda s: recharge_succeeded(s, first.recharge_id, payment_intent_id="pi_c",
                                     amount_minor=1000, currency="usd", now=NOW),
    )  # fmt: skip
    assert wallet_of(sessions, acc) == credits(1005)
    later = transaction(sessions, lambda s: request_recharge(s, acc, now=NOW + timedelta(hours=1)))
    assert later.skipped == "the monthly cap would be exceeded"
    assert [a["reason"] for a in pending_alerts(sessions, "alert.recharge_failed")] == [
        "monthly_cap_reached"
    ]
    assert transaction(sessions, lambda s: get_account(s, acc).auto_recharge_mode) == "target"
