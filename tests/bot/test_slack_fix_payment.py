# ruff: noqa: F401, F811  (pytest fixtures imported by name, then used as arguments)
"""Fixing a failed auto-recharge (issue 10, item 11). The alert in the channel carries a
**Fix the payment** button, not a link: a billing admin who presses it gets a fresh Stripe
page of their own (card setup, or paying the recharge when the bank wanted authentication),
shown only to them, expiring within the hour; anyone else is told who can and nothing is
opened. The `/stripe/fix/<key>` links of older alerts open nothing any more.

Through the real server, the fake Slack, the Checkout fake and localstripe.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest

from bot import stripe as gateway
from bot.slack.alerts import deliver_due_alerts
from bot.stripe.customers import ensure_customer, save_payment_method
from ledger.auto_recharge import update_auto_recharge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models.payments import Recharge
from ledger.recharges import last_recharge
from tests.support.factories import auto_recharge_without_card
from tests.support.payments_support import SECRET_KEY, checkout_fake, localstripe_url, new_card
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import (
    ADMIN,
    BILLING,
    MEMBER,
    buttons,
    response_posts,
    settings_for,
    texts,
)

CHANNEL = "C0ALERTS"


@pytest.fixture
def context(sqlite_url, fake_slack, checkout_fake):
    """Slack and Stripe both configured: Stripe through the Checkout fake (and localstripe)."""
    from bot.context import build_context

    ctx = build_context(
        settings_for(
            sqlite_url,
            fake_slack,
            stripe_secret_key=SECRET_KEY,
            stripe_api_base=checkout_fake.url,
            public_url="https://creditbot.example",
            slack_alert_channel=CHANNEL,
        )  # fmt: skip
    )
    yield ctx
    ctx.engine.dispose()


def _fail_a_recharge(context, fake_slack, account_id, localstripe, card=None):
    """Auto-recharge on, a customer with `card` (none: no card at all), one sweep: the
    attempt fails; its alert is posted to the channel. Returns the posted alert."""
    customer = ensure_customer(context, account_id)
    if card:
        save_payment_method(context, account_id, customer, new_card(localstripe, card))
        transaction(
            context.sessions,
            lambda s: update_auto_recharge(
                s, account_id, enabled=True, threshold_minor=1000, amount_minor=2000
            ),
        )
    else:  # turning it on needs a card now: as an account that turned it on before
        auto_recharge_without_card(context.sessions, account_id)
    assert gateway.sweep_auto_recharge(context).started == 1
    recharge = transaction(context.sessions, lambda s: last_recharge(s, account_id))
    assert recharge.status == "failed"
    assert deliver_due_alerts(context) >= 1
    return next(
        c.args for c in fake_slack.of("chat.postMessage") if "Auto-recharge" in c.args["text"]
    )


def _press_fix(slack, alert, user):
    fix = buttons(alert["blocks"])["Fix the payment"]
    _, url = slack.click(
        fix["action_id"], fix.get("value"), user=user, block_id="alert:recharge_failed"
    )
    return response_posts(slack.fake, url)[0]


def test_the_alert_carries_a_button_and_no_link(slack, context, ids, localstripe_url):
    alert = _fail_a_recharge(context, slack.fake, ids["account"], localstripe_url)
    fix = buttons(alert["blocks"])["Fix the payment"]
    assert "url" not in fix
    assert "/stripe/fix/" not in json.dumps(alert) and "checkout" not in json.dumps(alert)


@pytest.mark.parametrize("admin", [ADMIN, BILLING])
def test_a_billing_admin_gets_a_card_page_of_their_own(
    slack, context, ids, checkout_fake, localstripe_url, admin
):
    from ledger.accounts import set_billing_admins

    transaction(context.sessions, lambda s: set_billing_admins(s, ids["account"], [BILLING]))
    alert = _fail_a_recharge(context, slack.fake, ids["account"], localstripe_url)
    shown = _press_fix(slack, alert, admin)
    assert shown["response_type"] == "ephemeral"  # only the admin sees it
    page = buttons(shown["blocks"])["Open Stripe"]
    [made] = checkout_fake.created
    asked = made["data"]
    assert asked["mode"] == "setup"
    assert asked["metadata"]["creditbot_account_id"] == str(ids["account"])
    assert asked["metadata"]["creditbot_user"] == admin  # made for this person
    assert 0 < int(asked["expires_at"]) - time.time() <= 3600  # short-lived
    session_id = page["url"].rsplit("/", 1)[-1]
    assert checkout_fake.sessions[session_id]["obj"]["mode"] == "setup"
    assert "no card is saved" in texts(shown["blocks"])
    assert "expires within the hour" in texts(shown["blocks"])


def test_anyone_else_is_told_who_can_and_nothing_is_opened(
    slack, context, ids, checkout_fake, localstripe_url
):
    alert = _fail_a_recharge(context, slack.fake, ids["account"], localstripe_url)
    shown = _press_fix(slack, alert, MEMBER)
    assert shown["response_type"] == "ephemeral"
    assert "Only billing admins can fix the payment: workspace admins and owners" in shown["text"]
    assert "Open Stripe" not in buttons(shown.get("blocks") or [])
    assert checkout_fake.created == []


def test_each_press_makes_a_new_page(slack, context, ids, checkout_fake, localstripe_url):
    """A page is used once and expires; pressing again is how an admin gets another."""
    alert = _fail_a_recharge(context, slack.fake, ids["account"], localstripe_url)
    first = buttons(_press_fix(slack, alert, ADMIN)["blocks"])["Open Stripe"]["url"]
    second = buttons(_press_fix(slack, alert, ADMIN)["blocks"])["Open Stripe"]["url"]
    assert first != second and len(checkout_fake.created) == 2


def test_a_card_needing_authentication_pays_the_recharge_on_checkout(
    slack, context, ids, checkout_fake, localstripe_url
):
    alert = _fail_a_recharge(
        context, slack.fake, ids["account"], localstripe_url, card="4000002500003155"
    )
    shown = _press_fix(slack, alert, ADMIN)
    asked = checkout_fake.created[-1]["data"]
    assert asked["mode"] == "payment"
    assert asked["line_items"][0]["price_data"]["unit_amount"] == "2000"  # the recharge's amount
    assert "Pay the recharge on Stripe's page" in texts(shown["blocks"])


def test_nothing_to_fix_once_a_later_recharge_succeeded(
    slack, context, ids, checkout_fake, localstripe_url
):
    alert = _fail_a_recharge(context, slack.fake, ids["account"], localstripe_url)
    later = utcnow() + timedelta(minutes=20)
    with context.engine.begin() as conn:
        conn.execute(Recharge.__table__.insert().values(
            account_id=ids["account"], idempotency_key="r-later", status="succeeded", trigger="sweep",
            amount_minor=2000, currency="USD", tries=1, created_at=later, finished_at=later,
            paused_auto_recharge=False))  # fmt: skip
    shown = _press_fix(slack, alert, ADMIN)
    assert "There is nothing to fix: the last auto-recharge attempt" in shown["text"]
    assert "succeeded" in shown["text"]
    assert checkout_fake.created == []


def test_old_fix_links_open_nothing_and_say_what_to_do(
    slack, context, ids, checkout_fake, localstripe_url
):
    _fail_a_recharge(context, slack.fake, ids["account"], localstripe_url)
    recharge = transaction(context.sessions, lambda s: last_recharge(s, ids["account"]))
    old = recharge.fix_url.replace(context.settings.public_url, slack.base_url)
    for url in (old, old, f"{slack.base_url}/stripe/fix/recharge-unknown"):  # reused, unknown
        page = httpx.get(url, follow_redirects=False)
        assert page.status_code == 410
        assert "This link no longer opens a payment page" in page.text
        assert "presses Fix the payment on the alert in Slack" in page.text
    assert checkout_fake.created == []
