"""The Stripe gateway against localstripe on loopback: customers and cards, a Checkout
top-up opened in one transaction, off-session recharges (succeeded, declined, no card,
needing authentication), one-click top-ups, and three failures pausing auto-recharge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from bot import stripe as gateway
from bot.stripe.customers import ensure_customer, save_payment_method
from ledger import outbox
from ledger.accounts import get_account
from ledger.auto_recharge import update_auto_recharge
from ledger.charges import charge
from ledger.db import transaction
from ledger.errors import InvalidInput
from ledger.recharges import RETRY_AFTER_FAILURE, last_recharge
from ledger.stripe_records import stripe_customer
from ledger.topups import list_topups
from ledger.units import credits
from tests.support.factories import auto_recharge_without_card, story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    checkout_fake,
    localstripe_url,
    new_card,
    payments_app,
    payments_context,
    saved_card,
    stripe_http,
)


@pytest.fixture
def context(payments_app):  # noqa: F811
    return payments_app


def _alerts(context, kind):
    return transaction(
        context.sessions, lambda s: [m.payload for m in outbox.pending(s) if m.kind == kind]
    )


def _wallet(context, account_id):
    return transaction(context.sessions, lambda s: get_account(s, account_id).wallet_balance)


def _intents_of(localstripe, customer_id):
    with stripe_http(localstripe) as http:
        data = http.get("/v1/payment_intents", params={"limit": 100}).json()["data"]
    return [pi for pi in data if pi["customer"] == customer_id]


def _auto_recharge(context, account_id, *, threshold=1000, amount=2000, cap=50000):
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


def test_customer_created_when_first_needed_and_card_becomes_the_default(
    context,
    localstripe_url,  # noqa: F811
):
    acc = story(context.sessions)["account"]
    assert transaction(context.sessions, lambda s: stripe_customer(s, acc)) is None
    customer = ensure_customer(context, acc)
    assert ensure_customer(context, acc) == customer  # not created twice
    method = new_card(localstripe_url, "4242424242424242")
    save_payment_method(context, acc, customer, method)

    with stripe_http(localstripe_url) as http:
        remote = http.get(f"/v1/customers/{customer}").json()
        attached = http.get(f"/v1/payment_methods/{method}").json()
    assert remote["invoice_settings"]["default_payment_method"] == method
    assert attached["customer"] == customer
    saved = transaction(context.sessions, lambda s: stripe_customer(s, acc))
    assert (saved.customer_id, saved.payment_method_id) == (customer, method)
    assert (saved.card_brand, saved.card_last4) == ("visa", "4242")


def test_pressing_pay_opens_the_topup_in_one_transaction_before_the_stripe_call(
    sqlite_url,
    checkout_fake,  # noqa: F811
):
    context = payments_context(sqlite_url, checkout_fake.url)
    try:
        acc = story(context.sessions)["account"]
        ensure_customer(context, acc)
        # At each transaction's start: how many Checkout pages Stripe had been asked for.
        began = []
        event.listen(context.engine, "begin", lambda conn: began.append(len(checkout_fake.created)))
        url = gateway.create_topup_checkout(context, acc, 2500, "U1")
        # One transaction checks the amount, opens the top-up and reads the customer; one
        # more, after the Stripe call, attaches the Checkout Session to the top-up.
        assert began == [0, 1]
        [topup] = transaction(context.sessions, lambda s: list_topups(s, acc))
        assert (topup.status, topup.amount_minor, topup.requested_by) == ("open", 2500, "U1")
        assert topup.checkout_session_id == url.rsplit("/", 1)[-1]
        with pytest.raises(InvalidInput, match="smallest top-up"):
            gateway.create_topup_checkout(context, acc, 100, "U1")
        assert len(checkout_fake.created) == 1  # a refused amount never reaches Stripe
        assert len(transaction(context.sessions, lambda s: list_topups(s, acc))) == 1
    finally:
        context.engine.dispose()


def test_off_session_recharge_succeeds_after_the_charge_returns(context, localstripe_url):  # noqa: F811
    ids = story(context.sessions, plan=0, wallet=5)
    acc = ids["account"]
    customer, method = saved_card(context, localstripe_url, acc)
    _auto_recharge(context, acc)  # under 10.00 worth (1,000 credits), add 20.00

    result = transaction(
        context.sessions,
        lambda s: charge(s, acc, ids["b"], "message", 1, idempotency_key="m1"),
    )
    assert result.allowed and result.wallet_balance == credits(4)
    # The charge only asked: no attempt and no Stripe call happened on its path.
    assert transaction(context.sessions, lambda s: last_recharge(s, acc)) is None
    assert _intents_of(localstripe_url, customer) == []

    assert gateway.process_recharge_requests(context).requests == 1
    recharge = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert recharge.status == "succeeded" and recharge.trigger == "charge"
    intents = _intents_of(localstripe_url, customer)
    assert [(pi["id"], pi["status"], pi["amount"]) for pi in intents] == [
        (recharge.payment_intent_id, "succeeded", 2000)
    ]
    assert intents[0]["payment_method"] == method
    assert intents[0]["metadata"]["creditbot_recharge_id"] == str(recharge.id)
    assert _wallet(context, acc) == credits(4) + credits(2000)
    assert not transaction(context.sessions, lambda s: get_account(s, acc).recharge_requested)
    assert len(_alerts(context, "alert.recharge_succeeded")) == 1
    # Handled: nothing more to do, and the sweep sees the wallet above the threshold.
    assert gateway.process_recharge_requests(context).requests == 0
    assert gateway.sweep_auto_recharge(context).started == 0
    assert len(_intents_of(localstripe_url, customer)) == 1


def test_recharge_declined_by_card_0002_is_recorded_with_the_decline_code(
    context,
    localstripe_url,  # noqa: F811
):
    acc = story(context.sessions, wallet=5)["account"]
    saved_card(context, localstripe_url, acc, "4000000000000002")
    _auto_recharge(context, acc)

    assert gateway.sweep_auto_recharge(context).started == 1
    recharge = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert recharge.status == "failed" and recharge.reason == "card_declined"
    assert recharge.decline_code == "generic_decline"
    assert recharge.payment_intent_id and recharge.payment_intent_id.startswith("pi_")
    assert recharge.fix_url == f"https://creditbot.example/stripe/fix/{recharge.idempotency_key}"
    assert _wallet(context, acc) == credits(5)
    [alert] = _alerts(context, "alert.recharge_failed")
    assert alert["reason"] == "card_declined" and alert["decline_code"] == "generic_decline"
    assert alert["fix_url"] == recharge.fix_url


def test_recharge_without_a_card_fails_at_once_without_calling_stripe(context, localstripe_url):  # noqa: F811
    acc = story(context.sessions, wallet=5)["account"]
    auto_recharge_without_card(context.sessions, acc)  # on from before cards were required
    customer = ensure_customer(context, acc)  # a customer, but no card
    assert gateway.recharge_now(context, acc) == "failed: missing_payment_method"
    assert _intents_of(localstripe_url, customer) == []
    recharge = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert recharge.reason == "missing_payment_method" and recharge.tries == 0
    assert _alerts(context, "alert.recharge_failed")[0]["fix_url"] == recharge.fix_url


def test_card_needing_authentication_fails_with_a_link_to_fix_it(context, localstripe_url):  # noqa: F811
    acc = story(context.sessions, wallet=5)["account"]
    saved_card(context, localstripe_url, acc, "4000002500003155")
    _auto_recharge(context, acc)
    assert gateway.recharge_now(context, acc) == "failed"
    recharge = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert recharge.reason == "authentication_required"
    assert recharge.fix_url.endswith(f"/stripe/fix/{recharge.idempotency_key}")
    assert _wallet(context, acc) == credits(5)


def test_three_declines_in_a_row_pause_auto_recharge(context, localstripe_url):  # noqa: F811
    acc = story(context.sessions, wallet=5)["account"]
    customer, _ = saved_card(context, localstripe_url, acc, "4000000000000341")
    _auto_recharge(context, acc)
    now = None
    for attempt in range(3):
        last = transaction(context.sessions, lambda s: last_recharge(s, acc))
        now = last.finished_at + RETRY_AFTER_FAILURE + timedelta(seconds=1) if last else None
        assert gateway.sweep_auto_recharge(context, now=now).started == 1, attempt
    account = transaction(context.sessions, lambda s: get_account(s, acc))
    assert account.auto_recharge_paused
    assert len(_alerts(context, "alert.auto_recharge_paused")) == 1
    assert len(_alerts(context, "alert.recharge_failed")) == 3
    # Paused: the sweep leaves it alone, however long it waits.
    assert gateway.sweep_auto_recharge(context, now=now + timedelta(hours=2)).started == 0
    assert len(_intents_of(localstripe_url, customer)) == 3


def test_one_click_topup_with_the_saved_card(context, localstripe_url):  # noqa: F811
    acc = story(context.sessions)["account"]
    assert gateway.charge_saved_card(context, acc, 1500, "click-1", "U1").reason == (
        "missing_payment_method"
    )
    customer, _ = saved_card(context, localstripe_url, acc)
    first = gateway.charge_saved_card(context, acc, 1500, "click-1", "U1")
    assert first.succeeded and first.credited == credits(1500)
    assert _wallet(context, acc) == credits(500) + credits(1500)
    [alert] = _alerts(context, "alert.topup_received")
    assert alert["source"] == "saved_card" and alert["requested_by"] == "U1"
    with pytest.raises(InvalidInput, match="smallest top-up"):
        gateway.charge_saved_card(context, acc, 100, "click-2", "U1")
    assert len(_intents_of(localstripe_url, customer)) == 1


def test_stripe_unreachable_is_retried_with_backoff_under_the_same_key(
    context,
    localstripe_url,  # noqa: F811
):
    acc = story(context.sessions, wallet=5)["account"]
    customer, _ = saved_card(context, localstripe_url, acc)
    _auto_recharge(context, acc)
    down = payments_context(context.settings.database_url, "http://127.0.0.1:9")
    try:
        assert gateway.sweep_auto_recharge(down).started == 1
    finally:
        down.engine.dispose()
    recharge = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert recharge.status == "pending" and recharge.tries == 1 and recharge.message
    assert _alerts(context, "alert.recharge_failed") == []
    # Nothing is due before the backoff ends; then the same attempt is tried again.
    assert gateway.sweep_auto_recharge(context).started == 0
    assert gateway.sweep_auto_recharge(context, now=recharge.next_try_at).started == 1
    done = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert (done.id, done.status, done.tries) == (recharge.id, "succeeded", 2)
    assert len(_intents_of(localstripe_url, customer)) == 1
    assert _wallet(context, acc) == credits(5) + credits(2000)
