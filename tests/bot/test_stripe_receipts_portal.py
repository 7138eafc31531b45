# ruff: noqa: F401, F811  (pytest fixtures imported by name, then used as arguments)
"""Receipts and invoices for finance (STRIPE_TOPUP_RECEIPTS), and Manage card: Stripe's
Customer Portal made when a billing admin presses the button in /balance or the Home tab.

Through the Checkout fake (which also answers Customer Portal sessions, which localstripe
does not have) in front of localstripe; what Stripe then emails is Stripe's, not tested."""

from __future__ import annotations

import pytest

from bot import stripe as gateway
from bot.context import build_context
from bot.stripe.client import client
from bot.stripe.customers import ensure_customer, save_payment_method
from ledger.db import transaction
from tests.support.payments_support import SECRET_KEY, checkout_fake, localstripe_url, new_card
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import ADMIN, MEMBER, buttons, response_posts, settings_for, texts

FINANCE = "finance@example.com"


def _context(sqlite_url, fake_slack, checkout_fake, receipts):
    return build_context(
        settings_for(sqlite_url, fake_slack, stripe_secret_key=SECRET_KEY,
                     stripe_api_base=checkout_fake.url, public_url="https://creditbot.example",
                     stripe_topup_receipts=receipts)
    )  # fmt: skip


@pytest.fixture
def context(sqlite_url, fake_slack, checkout_fake):
    ctx = _context(sqlite_url, fake_slack, checkout_fake, "receipt")
    yield ctx
    ctx.engine.dispose()


def _with_email(ctx, account_id):
    customer = ensure_customer(ctx, account_id)
    client(ctx).v1.customers.update(customer, params={"email": FINANCE})
    return customer


def test_receipts_go_to_the_customers_email_for_checkout_and_off_session_top_ups(
    context, ids, checkout_fake, localstripe_url
):
    customer = _with_email(context, ids["account"])
    gateway.create_topup_checkout(context, ids["account"], 5000, ADMIN)
    asked = checkout_fake.created[-1]["data"]
    assert asked["payment_intent_data"]["receipt_email"] == FINANCE
    assert asked["payment_intent_data"]["setup_future_usage"] == "off_session"
    assert "invoice_creation" not in asked

    save_payment_method(context, ids["account"], customer, new_card(localstripe_url))
    paid = gateway.charge_saved_card(context, ids["account"], 2000, "once", ADMIN)
    assert paid.succeeded
    intents = [
        f for m, p, f in checkout_fake.forwarded if m == "POST" and p == "/v1/payment_intents"
    ]
    assert intents[-1]["receipt_email"] == FINANCE


def test_without_an_email_no_receipt_address_is_made_up(context, ids, checkout_fake):
    gateway.create_topup_checkout(context, ids["account"], 5000, ADMIN)
    assert "receipt_email" not in checkout_fake.created[-1]["data"]["payment_intent_data"]


@pytest.mark.parametrize("receipts", ["invoice", "none"])
def test_invoices_or_nothing_as_the_setting_says(sqlite_url, fake_slack, checkout_fake, receipts):
    from tests.support.factories import story

    ctx = _context(sqlite_url, fake_slack, checkout_fake, receipts)
    ids = story(ctx.sessions)
    _with_email(ctx, ids["account"])
    gateway.create_topup_checkout(ctx, ids["account"], 5000, ADMIN)
    asked = checkout_fake.created[-1]["data"]
    assert "receipt_email" not in asked["payment_intent_data"]
    if receipts == "invoice":
        invoice = asked["invoice_creation"]
        assert invoice["enabled"] == "true"
        assert invoice["invoice_data"]["description"] == "creditbot credits for Acme"
        assert invoice["invoice_data"]["metadata"]["creditbot_account_id"] == str(ids["account"])
    else:
        assert "invoice_creation" not in asked
    ctx.engine.dispose()


def _press_manage_card(slack, user):
    _, response_url = slack.command("/balance", user=user)
    answer = response_posts(slack.fake, response_url)[0]
    button = buttons(answer["blocks"])["Manage card"]
    _, url = slack.click(button["action_id"], button.get("value"), user=user,
                         block_id="dashboard_actions")  # fmt: skip
    return response_posts(slack.fake, url)[0]


def test_manage_card_opens_the_customer_portal_for_a_billing_admin_only(
    slack, context, ids, checkout_fake
):
    shown = _press_manage_card(slack, ADMIN)
    assert shown["response_type"] == "ephemeral"
    [portal] = checkout_fake.portals
    assert buttons(shown["blocks"])["Open Stripe"]["url"] == portal["url"]
    assert portal["return_url"] == "https://creditbot.example/stripe/portal/return"
    assert portal["customer"].startswith("cus_")
    assert "expires in a few minutes" in texts(shown["blocks"])

    refused = _press_manage_card(slack, MEMBER)
    assert "Only billing admins can manage the card" in refused["text"]
    assert len(checkout_fake.portals) == 1, "nothing was made for someone else"


def test_the_portal_return_page_says_to_close_it(slack):
    import httpx

    page = httpx.get(f"{slack.base_url.rstrip('/')}/stripe/portal/return", timeout=10)
    assert page.status_code == 200 and "close this page" in page.text


def test_a_card_replaced_in_the_portal_becomes_the_card_creditbot_charges(
    context, ids, localstripe_url
):
    from bot.stripe.webhooks import handle_event
    from ledger.stripe_records import stripe_customer

    customer = ensure_customer(context, ids["account"])
    save_payment_method(context, ids["account"], customer, new_card(localstripe_url))
    # In the portal, the admin adds another card and makes it the default.
    replacement = new_card(localstripe_url, "5555555555554444")
    api = client(context).v1
    api.payment_methods.attach(replacement, params={"customer": customer})
    api.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": replacement}}
    )
    assert handle_event(context, "evt_portal_1", "customer.updated", {"id": customer}) == (
        "processed"
    )
    saved = transaction(context.sessions, lambda s: stripe_customer(s, ids["account"]))
    assert (saved.payment_method_id, saved.card_last4) == (replacement, "4444")
    # Stripe sends it again: the same card stays saved, nothing else changes.
    assert handle_event(context, "evt_portal_1", "customer.updated", {"id": customer}) == (
        "processed"
    )
    again = transaction(context.sessions, lambda s: stripe_customer(s, ids["account"]))
    assert (again.payment_method_id, again.card_last4) == (replacement, "4444")
