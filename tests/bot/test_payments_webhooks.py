"""/stripe/webhook on a real server (uvicorn on loopback): Checkout through a loopback fake
signed with Stripe's scheme, localstripe's own signed PaymentIntent events, duplicates,
out-of-order delivery, forged and stale signatures, refunds, reconciliation. (Fixing a
failed recharge is a Slack button now: tests/bot/test_slack_fix_payment.py.)"""

from __future__ import annotations

import time

import httpx
from click.testing import CliRunner
from sqlalchemy import select

from bot import stripe as gateway
from bot.cli import cli
from bot.stripe.customers import ensure_customer, save_payment_method
from bot.stripe.recharges import charge_attempt
from ledger import outbox
from ledger.accounts import get_account
from ledger.auto_recharge import update_auto_recharge
from ledger.db import transaction
from ledger.models.payments import StripeEvent
from ledger.recharges import last_recharge, request_recharge
from ledger.stripe_records import stripe_customer
from ledger.units import credits
from ledger.wallet import debit_wallet
from tests.support.factories import story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    checkout_fake,
    disable_localstripe_webhook,
    event,
    localstripe_url,
    new_card,
    post_event,
    served,
    sign,
    stripe_http,
    wait_until,
)


def _alerts(context, kind):
    return transaction(
        context.sessions, lambda s: [m.payload for m in outbox.pending(s) if m.kind == kind]
    )


def _wallet(context, account_id):
    return transaction(context.sessions, lambda s: get_account(s, account_id).wallet_balance)


def _events(context):
    return transaction(
        context.sessions,
        lambda s: [(e.id, e.type) for e in s.execute(select(StripeEvent)).scalars()],
    )


def _session_id(url):
    return url.rsplit("/", 1)[-1]


def _paid_topup(context, checkout, amount_minor):
    """A new account with an empty wallet, topped up through Checkout: (account, session)."""
    acc = story(context.sessions, wallet=0)["account"]
    session_id = _session_id(gateway.create_topup_checkout(context, acc, amount_minor, "U1"))
    paid = checkout.complete(session_id)
    assert _wallet(context, acc) == credits(amount_minor)
    return acc, paid


def _auto_recharge(context, account_id):
    transaction(
        context.sessions,
        lambda s: update_auto_recharge(
            s, account_id, enabled=True, threshold_minor=1000, amount_minor=2000
        ),
    )


def _card(context, localstripe, account_id, number="4242424242424242"):
    customer = ensure_customer(context, account_id)
    save_payment_method(context, account_id, customer, new_card(localstripe, number))
    return customer


def test_topup_checkout_credits_once_saves_the_card_and_ignores_duplicates(
    served,  # noqa: F811
    checkout_fake,  # noqa: F811
):
    context = served.context
    acc = story(context.sessions)["account"]
    url = gateway.create_topup_checkout(context, acc, 2500, "U123")
    asked = checkout_fake.created[-1]["data"]
    assert asked["mode"] == "payment"
    assert asked["line_items"][0]["price_data"]["unit_amount"] == "2500"
    assert asked["payment_intent_data"]["setup_future_usage"] == "off_session"
    assert asked["metadata"]["creditbot_account_id"] == str(acc)
    assert asked["metadata"]["creditbot_topup_id"]
    assert 0 < int(asked["expires_at"]) - time.time() <= 3600
    assert asked["success_url"].startswith(f"{served.url}/stripe/checkout/success")
    assert asked["cancel_url"] == f"{served.url}/stripe/checkout/cancel"
    assert _wallet(context, acc) == credits(500)  # nothing until Stripe confirms

    session_id = _session_id(url)
    checkout_fake.complete(session_id)  # pays and posts checkout.session.completed
    assert _wallet(context, acc) == credits(500) + credits(2500)
    # localstripe's own payment_intent.succeeded for the same payment comes a second later.
    wait_until(lambda: any(t == "payment_intent.succeeded" for _, t in _events(context)))
    resent = checkout_fake.send("checkout.session.completed", session_id, event_id="evt_again")
    assert resent.status_code == 200
    duplicate = checkout_fake.send("checkout.session.completed", session_id, event_id="evt_again")
    assert duplicate.json()["outcome"] == "duplicate"
    assert _wallet(context, acc) == credits(3000)
    [alert] = _alerts(context, "alert.topup_received")
    assert alert["amount_minor"] == 2500 and alert["requested_by"] == "U123"
    card = transaction(context.sessions, lambda s: stripe_customer(s, acc))
    assert (card.card_brand, card.card_last4) == ("visa", "4242")
    # The pages Checkout returns to.
    assert "Thank you" in httpx.get(asked["success_url"].split("?")[0]).text
    assert httpx.get(asked["cancel_url"]).status_code == 200


def test_delayed_payment_is_credited_when_it_succeeds(served, checkout_fake):  # noqa: F811
    context = served.context
    acc = story(context.sessions)["account"]
    session_id = _session_id(gateway.create_topup_checkout(context, acc, 1000, "U1"))
    checkout_fake.complete(session_id, paid=False)  # completed, payment still pending
    assert _wallet(context, acc) == credits(500)
    checkout_fake.pay_async(session_id)  # checkout.session.async_payment_succeeded
    assert _wallet(context, acc) == credits(1500)


def test_card_checkout_saves_the_card_as_default(served, checkout_fake, localstripe_url):  # noqa: F811
    context = served.context
    acc = story(context.sessions)["account"]
    url = gateway.create_card_checkout(context, acc, "U1")
    asked = checkout_fake.created[-1]["data"]
    assert asked["mode"] == "setup" and asked["customer"]
    checkout_fake.complete(_session_id(url), card="5555555555554444")
    saved = transaction(context.sessions, lambda s: stripe_customer(s, acc))
    assert saved.card_last4 == "4444" and saved.payment_method_id
    with stripe_http(localstripe_url) as http:
        remote = http.get(f"/v1/customers/{saved.customer_id}").json()
    assert remote["invoice_settings"]["default_payment_method"] == saved.payment_method_id


def test_localstripe_signed_payment_intent_webhooks_reach_the_server(
    served,  # noqa: F811
    localstripe_url,  # noqa: F811
):
    context = served.context
    ok = story(context.sessions, wallet=5, team="T1")["account"]
    bad = story(context.sessions, wallet=5, team="T2")["account"]
    for acc, number in ((ok, "4242424242424242"), (bad, "4000000000000341")):
        _card(context, localstripe_url, acc, number)
        _auto_recharge(context, acc)
    assert gateway.sweep_auto_recharge(context).started == 2
    types = wait_until(
        lambda: (
            {t for _, t in _events(context)}
            >= {"payment_intent.succeeded", "payment_intent.payment_failed"}
            and {t for _, t in _events(context)}
        )
    )
    assert types == {"payment_intent.succeeded", "payment_intent.payment_failed"}
    # Both outcomes were already recorded from Stripe's answer: the webhooks changed nothing.
    assert _wallet(context, ok) == credits(5) + credits(2000)
    assert len(_alerts(context, "alert.recharge_succeeded")) == 1
    assert len(_alerts(context, "alert.recharge_failed")) == 1
    assert transaction(context.sessions, lambda s: last_recharge(s, bad)).reason == (
        "card_declined"
    )


def test_out_of_order_and_duplicate_webhooks_act_on_the_current_state(
    served,  # noqa: F811
    localstripe_url,  # noqa: F811
):
    context = served.context
    acc = story(context.sessions, wallet=5)["account"]
    _card(context, localstripe_url, acc)
    _auto_recharge(context, acc)
    disable_localstripe_webhook(localstripe_url)
    # The worker made the Stripe call, then died before recording the answer.
    job = transaction(context.sessions, lambda s: request_recharge(s, acc)).job
    outcome = charge_attempt(context, job)
    intent = outcome.payment_intent
    assert intent["status"] == "succeeded"
    # A stale payment_failed (say, from an earlier try) arrives after the success:
    stale = {**intent, "status": "requires_payment_method"}
    hook = f"{served.url}/stripe/webhook"
    r = post_event(hook, event("payment_intent.payment_failed", stale, "evt_stale"))
    assert r.status_code == 200
    # Re-read from Stripe, the PaymentIntent succeeded: that is what counts.
    recharge = transaction(context.sessions, lambda s: last_recharge(s, acc))
    assert recharge.status == "succeeded"
    assert _wallet(context, acc) == credits(2005)
    for event_id in ("evt_ok", "evt_ok", "evt_stale"):
        r = post_event(hook, event("payment_intent.succeeded", intent, event_id))
        assert r.status_code == 200
    assert _wallet(context, acc) == credits(2005)
    assert len(_alerts(context, "alert.recharge_succeeded")) == 1
    assert _alerts(context, "alert.recharge_failed") == []
    # Events creditbot does not handle are acknowledged and left alone.
    r = post_event(hook, event("customer.created", {"id": job.customer_id}))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"


def test_forged_or_stale_signatures_are_refused_and_change_nothing(
    served,  # noqa: F811
    checkout_fake,  # noqa: F811
    localstripe_url,  # noqa: F811
):
    context = served.context
    disable_localstripe_webhook(localstripe_url)  # only the requests below reach creditbot
    acc = story(context.sessions)["account"]
    session_id = _session_id(gateway.create_topup_checkout(context, acc, 5000, "U1"))
    paid = checkout_fake.complete(session_id, send=False)
    payload = event("checkout.session.completed", paid)
    hook = f"{served.url}/stripe/webhook"
    forged = post_event(hook, payload, secret="whsec_not_the_secret")
    stale = post_event(hook, payload, timestamp=int(time.time()) - 301)
    unsigned = httpx.post(hook, content=payload, headers={"Content-Type": "application/json"})
    tampered = httpx.post(
        hook,
        content=payload.replace(b"5000", b"9000"),
        headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
    )
    assert [r.status_code for r in (forged, stale, unsigned, tampered)] == [400, 400, 400, 400]
    assert _wallet(context, acc) == credits(500)
    assert _events(context) == []
    assert post_event(hook, payload).status_code == 200  # the genuine one
    assert _wallet(context, acc) == credits(5500)


def test_lost_webhooks_are_recovered_by_reconciliation(
    served,  # noqa: F811
    checkout_fake,  # noqa: F811
    localstripe_url,  # noqa: F811
    monkeypatch,
):
    context = served.context
    acc = story(context.sessions, wallet=5)["account"]
    disable_localstripe_webhook(localstripe_url)
    session_id = _session_id(gateway.create_topup_checkout(context, acc, 3000, "U1"))
    checkout_fake.complete(session_id, send=False)  # paid, but the webhook never came
    _card(context, localstripe_url, acc)
    _auto_recharge(context, acc)
    job = transaction(context.sessions, lambda s: request_recharge(s, acc)).job
    charge_attempt(context, job)  # a recharge charged whose answer was lost
    assert _wallet(context, acc) == credits(5)

    # `creditbot stripe reconcile` (the scheduler runs the same function).
    for key, value in {
        "DATABASE_URL": context.settings.database_url,
        "STRIPE_SECRET_KEY": context.settings.stripe_secret_key,
        "STRIPE_API_BASE": context.settings.stripe_api_base,
        "PUBLIC_URL": context.settings.public_url,
    }.items():
        monkeypatch.setenv(key, value)
    from bot.cli import environment
    from bot.config import get_settings

    get_settings.cache_clear()
    environment.context.cache_clear()
    monkeypatch.setattr(environment.console, "width", 200)
    try:
        runner = CliRunner()
        first = runner.invoke(cli, ["stripe", "reconcile"])
        assert first.exit_code == 0, first.output
        assert "2 missed payment(s) credited" in first.output
        assert _wallet(context, acc) == credits(5) + credits(3000) + credits(2000)
        assert transaction(context.sessions, lambda s: last_recharge(s, acc)).status == (
            "succeeded"
        )
        again = runner.invoke(cli, ["stripe", "reconcile"])
        assert "0 missed payment(s) credited" in again.output
        assert _wallet(context, acc) == credits(5005)
        listed = runner.invoke(cli, ["recharges", "list", "--account", str(acc)])
        assert listed.exit_code == 0 and "succeeded" in listed.output
        topups = runner.invoke(cli, ["topups", "list", "--account", str(acc)])
        assert "checkout" in topups.output and "auto_recharge" in topups.output
    finally:
        get_settings.cache_clear()
        environment.context.cache_clear()


def test_refund_takes_credits_back_and_alerts_the_shortfall(
    served,  # noqa: F811
    checkout_fake,  # noqa: F811
    localstripe_url,  # noqa: F811
):
    context = served.context
    acc, paid = _paid_topup(context, checkout_fake, 2000)
    transaction(  # most of it is spent
        context.sessions,
        lambda s: debit_wallet(s, acc, credits(1500), key="spent"),
    )
    with stripe_http(localstripe_url) as http:
        http.post("/v1/refunds", data={"payment_intent": paid["payment_intent"]}).raise_for_status()
        intent = http.get(f"/v1/payment_intents/{paid['payment_intent']}").json()
    charge_obj = {"id": intent["latest_charge"]["id"], "object": "charge", "amount_refunded": 0}
    hook = f"{served.url}/stripe/webhook"
    for event_id in ("evt_refund", "evt_refund"):
        assert post_event(hook, event("charge.refunded", charge_obj, event_id)).status_code == 200
    assert _wallet(context, acc) == 0  # never negative
    [alert] = _alerts(context, "alert.refund_shortfall")
    assert alert["shortfall"] == credits(1500) and alert["taken"] == credits(500)


def test_a_refund_whose_webhook_never_came_is_taken_back_by_reconciliation(
    served,  # noqa: F811
    checkout_fake,  # noqa: F811
    localstripe_url,  # noqa: F811
):
    # Found by the simulation (tests/sim/regressions/lost-refund-webhook.json): a refund
    # whose charge.refunded event was lost left the refunded credits in the wallet.
    context = served.context
    acc, paid = _paid_topup(context, checkout_fake, 2000)
    disable_localstripe_webhook(localstripe_url)  # the refund's event never comes
    with stripe_http(localstripe_url) as http:
        refund = {"payment_intent": paid["payment_intent"], "amount": "500"}
        http.post("/v1/refunds", data=refund).raise_for_status()
    assert _wallet(context, acc) == credits(2000)
    assert gateway.reconcile_refunds(context) == 1
    assert _wallet(context, acc) == credits(1500)
    assert gateway.reconcile_refunds(context) == 0, "taken back once"
    assert _wallet(context, acc) == credits(1500)
