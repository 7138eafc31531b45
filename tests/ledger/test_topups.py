"""Top-ups in the ledger (no Stripe): a payment credited once however often it is
reported, only in the wallet's currency; refunds never make the wallet negative."""

from __future__ import annotations

import pytest

from ledger.charges import charge
from ledger.db import transaction
from ledger.errors import InvalidInput
from ledger.stripe_records import save_customer
from ledger.topups import (
    attach_checkout_session,
    list_topups,
    open_checkout_topup,
    record_payment,
    record_refund,
)
from ledger.units import credits
from tests.support.factories import NOW, story
from tests.support.ledger_reads import pending_alerts, wallet_of


def test_checkout_payment_credits_the_wallet_once_however_often_reported(sessions):
    ids = story(sessions)  # wallet 500 credits
    acc = ids["account"]
    topup = transaction(
        sessions, lambda s: open_checkout_topup(s, acc, 2500, requested_by="U1", now=NOW)
    )
    transaction(sessions, lambda s: attach_checkout_session(s, topup.id, "cs_1"))
    assert wallet_of(sessions, acc) == credits(500)  # nothing before Stripe confirms

    def paid(**keys):
        return transaction(
            sessions,
            lambda s: record_payment(
                s, acc, amount_minor=2500, currency="usd", source="checkout", now=NOW, **keys
            ),
        )

    first = paid(payment_intent_id="pi_1", checkout_session_id="cs_1", topup_id=topup.id)
    again = paid(payment_intent_id="pi_1")  # its payment_intent.succeeded webhook
    later = paid(checkout_session_id="cs_1")  # reconciliation finds the session
    assert first.credited == credits(2500) and not first.replayed
    assert again.replayed and later.replayed
    assert wallet_of(sessions, acc) == credits(3000)
    alerts = pending_alerts(sessions, "alert.topup_received")
    assert len(alerts) == 1 and alerts[0]["amount_minor"] == 2500
    assert [t.status for t in transaction(sessions, lambda s: list_topups(s, acc))] == ["paid"]


def test_opening_a_checkout_topup_checks_the_amount_first_and_opens_nothing_when_refused(
    sessions,
):
    acc = story(sessions)["account"]  # top-ups between 10.00 and 1,000.00
    for amount, refusal in ((999, "smallest top-up is \\$10.00"), (100_001, "largest")):
        with pytest.raises(InvalidInput, match=refusal):
            transaction(sessions, lambda s, amount=amount: open_checkout_topup(s, acc, amount))
    assert transaction(sessions, lambda s: list_topups(s, acc)) == []
    opened = transaction(sessions, lambda s: open_checkout_topup(s, acc, 1000, requested_by="U1"))
    # What the Checkout page needs comes with it: no Stripe customer yet for this account.
    assert (opened.amount_minor, opened.payer.currency, opened.payer.customer_id) == (
        1000,
        "USD",
        None,
    )
    transaction(sessions, lambda s: save_customer(s, acc, "cus_1"))
    again = transaction(sessions, lambda s: open_checkout_topup(s, acc, 1000))
    assert again.payer.customer_id == "cus_1"
    topups = transaction(sessions, lambda s: list_topups(s, acc))
    assert [(t.status, t.amount_minor) for t in topups] == [("open", 1000), ("open", 1000)]
    assert wallet_of(sessions, acc) == credits(500)


def test_a_payment_in_another_currency_is_refused(sessions):
    acc = story(sessions)["account"]
    with pytest.raises(InvalidInput):
        transaction(
            sessions,
            lambda s: record_payment(
                s, acc, amount_minor=2500, currency="eur", payment_intent_id="pi_x"
            ),
        )
    assert wallet_of(sessions, acc) == credits(500)


def test_refunds_take_credits_back_never_below_zero_and_alert_the_shortfall(sessions):
    ids = story(sessions, plan=0, wallet=0)
    acc = ids["account"]
    transaction(
        sessions,
        lambda s: record_payment(
            s, acc, amount_minor=1000, currency="USD", payment_intent_id="pi_r", now=NOW
        ),
    )
    assert wallet_of(sessions, acc) == credits(1000)

    def refund(total, charge_id="ch_r"):
        return transaction(
            sessions,
            lambda s: record_refund(
                s, payment_intent_id="pi_r", charge_id=charge_id, amount_refunded_minor=total
            ),
        )

    part = refund(400)  # 4.00 of 10.00 refunded: 400 credits back out
    assert (part.taken, part.shortfall) == (credits(400), 0)
    assert refund(400).replayed  # the same event again
    # The agent spends most of what is left, then the rest is refunded.
    spent = transaction(
        sessions, lambda s: charge(s, acc, ids["b"], "call_minute", 50, idempotency_key="big")
    )
    assert spent.allowed
    left = wallet_of(sessions, acc)
    assert left == credits(100)
    rest = refund(1000)
    assert rest.taken == credits(100) and rest.shortfall == credits(500)
    assert wallet_of(sessions, acc) == 0
    shortfalls = pending_alerts(sessions, "alert.refund_shortfall")
    assert len(shortfalls) == 1 and shortfalls[0]["shortfall"] == credits(500)
    assert refund(1000).replayed
    assert wallet_of(sessions, acc) == 0
    # A refund of a payment creditbot never saw changes nothing.
    assert (
        transaction(
            sessions,
            lambda s: record_refund(
                s, payment_intent_id="pi_other", charge_id="ch_o", amount_refunded_minor=100
            ),
        )
        is None
    )
