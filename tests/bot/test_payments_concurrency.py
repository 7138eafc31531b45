"""Concurrent charges crossing the auto-recharge threshold start one recharge, not several
(threads on PostgreSQL, Stripe calls to localstripe)."""

from __future__ import annotations

import threading

import pytest

from bot import stripe as gateway
from bot.stripe.customers import ensure_customer, save_payment_method
from ledger.accounts import get_account
from ledger.auto_recharge import update_auto_recharge
from ledger.charges import charge
from ledger.db import transaction
from ledger.models.payments import Recharge
from ledger.recharges import pending_recharge, request_recharge
from ledger.stripe_records import save_card
from ledger.units import credits
from tests.support.factories import story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    localstripe_url,
    new_card,
    payments_context,
    stripe_http,
)

pytestmark = pytest.mark.postgres


def _together(workers):
    barrier = threading.Barrier(len(workers))
    errors = []

    def run(work):
        barrier.wait()
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_concurrent_charges_crossing_the_threshold_start_one_recharge(pg_url, localstripe_url):  # noqa: F811
    context = payments_context(pg_url, localstripe_url, "https://creditbot.example")
    try:
        ids = story(context.sessions, plan=0, wallet=1010)
        acc = ids["account"]
        customer = ensure_customer(context, acc)
        save_payment_method(context, acc, customer, new_card(localstripe_url))
        transaction(
            context.sessions,
            lambda s: update_auto_recharge(
                s, acc, enabled=True, threshold_minor=1000, amount_minor=2000
            ),
        )

        # Eight agents' requests at once, each taking 5 credits from the wallet: the wallet
        # falls from 1,010 to 970 credits, under the 1,000-credit threshold.
        _together(
            [
                lambda i=i: transaction(
                    context.sessions,
                    lambda s: charge(s, acc, ids["b"], "message", 5, idempotency_key=f"m{i}"),
                )
                for i in range(8)
            ]
        )
        assert transaction(context.sessions, lambda s: get_account(s, acc).wallet_balance) == (
            credits(970)
        )
        # Several workers act on the requests and sweep at the same moment.
        _together(
            [lambda: gateway.process_recharge_requests(context) for _ in range(3)]
            + [lambda: gateway.sweep_auto_recharge(context) for _ in range(3)]
        )
        attempts = transaction(
            context.sessions,
            lambda s: list(s.query(Recharge).filter(Recharge.account_id == acc)),
        )
        assert [(r.status, r.amount_minor) for r in attempts] == [("succeeded", 2000)]
        with stripe_http(localstripe_url) as http:
            data = http.get("/v1/payment_intents", params={"limit": 100}).json()["data"]
        assert len([pi for pi in data if pi["customer"] == customer]) == 1
        balance = transaction(context.sessions, lambda s: get_account(s, acc).wallet_balance)
        assert balance == credits(970) + credits(2000)
        assert transaction(context.sessions, lambda s: pending_recharge(s, acc)) is None
    finally:
        context.engine.dispose()


def test_concurrent_recharge_starts_leave_one_attempt_in_flight(pg_url):
    """Straight at the ledger: twelve workers ask at once, one attempt is created."""
    context = payments_context(pg_url, "http://127.0.0.1:9")
    try:
        acc = story(context.sessions, wallet=5)["account"]

        def setup(s):
            save_card(
                s, acc, customer_id="cus_x", payment_method_id="pm_x", brand="visa", last4="1"
            )
            update_auto_recharge(s, acc, enabled=True, threshold_minor=1000, amount_minor=2000)

        transaction(context.sessions, setup)
        jobs = []
        _together(
            [
                lambda: jobs.append(
                    transaction(context.sessions, lambda s: request_recharge(s, acc)).job
                )
                for _ in range(12)
            ]
        )
        assert len([j for j in jobs if j is not None]) == 1
    finally:
        context.engine.dispose()
