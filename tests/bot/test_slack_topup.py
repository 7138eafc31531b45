"""/topup, the top-up modal, Pay (Checkout made when pressed) and Charge card."""

from __future__ import annotations

import json

import pytest

from bot import stripe as stripe_gateway
from bot.slack import dashboard_data
from bot.slack.dashboard_data import Card
from ledger.accounts import set_billing_admins
from ledger.db import transaction
from ledger.models import Account
from tests.support.hostile_input import NOT_AMOUNTS
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import BILLING, MEMBER, OWNER, buttons, response_posts, texts


@pytest.fixture
def gateway(monkeypatch):
    """Recording fakes of the payments part's Stripe functions."""
    calls: list[tuple] = []

    def topup_checkout(context, account_id, amount_minor, user_id):
        calls.append(("topup_checkout", account_id, amount_minor, user_id))
        return f"https://checkout.stripe.test/c/{len(calls)}"

    def card_checkout(context, account_id, user_id):
        calls.append(("card_checkout", account_id, user_id))
        return "https://checkout.stripe.test/setup/1"

    def charge_card(context, account_id, amount_minor, idempotency_key, user_id):
        calls.append(("charge", account_id, amount_minor, idempotency_key, user_id))
        return {"status": "processing"}

    monkeypatch.setattr(stripe_gateway, "create_topup_checkout", topup_checkout)
    monkeypatch.setattr(stripe_gateway, "create_card_checkout", card_checkout)
    monkeypatch.setattr(stripe_gateway, "charge_saved_card", charge_card)
    return calls


@pytest.fixture
def card(monkeypatch):
    monkeypatch.setattr(dashboard_data, "saved_card", lambda s, a: Card("visa", "4242"))


def _wallet(context, account_id):
    return transaction(context.sessions, lambda s: s.get(Account, account_id).wallet_balance)


@pytest.mark.parametrize(
    ("typed", "shown", "credits"),
    [("50", "$50.00", "5,000"), ("$50", "$50.00", "5,000"), ("50.00", "$50.00", "5,000"),
     ("1,000", "$1,000.00", "100,000"), ("10", "$10.00", "1,000")],
)  # fmt: skip
def test_topup_amount_offers_pay(slack, fake_slack, gateway, typed, shown, credits):
    response, url = slack.command("/topup", typed)
    assert response.status_code == 200
    [reply] = response_posts(fake_slack, url)
    assert reply["response_type"] == "ephemeral"
    seen = texts(reply["blocks"])
    assert (
        f"*Top up {shown}*: {credits} credits go into the wallet once Stripe confirms the payment."
        in seen
    )
    found = buttons(reply["blocks"])
    assert set(found) == {f"Pay {shown}"}  # no saved card: no Charge card button
    assert json.loads(found[f"Pay {shown}"]["value"])["amount_minor"] == int(
        shown.strip("$").replace(",", "").replace(".", "")
    )
    assert gateway == []  # the Checkout page is made when Pay is pressed, not before
    assert reply["text"] == f"Top up {shown}: press Pay {shown} to open the Stripe payment page."


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("abc", "'abc' is not an amount"),
        ("-5", "-5 is negative"),
        ("0.001", "finer than the smallest unit of USD"),
        ("5", "The smallest top-up is $10.00."),
        ("1,000.01", "The largest top-up is $1,000.00."),
        ("0", "Enter an amount greater than zero."),
    ],
)
def test_topup_bad_amount_is_refused_clearly(
    slack, fake_slack, gateway, context, ids, typed, error
):
    before = _wallet(context, ids["account"])
    _, url = slack.command("/topup", typed)
    [reply] = response_posts(fake_slack, url)
    assert error in reply["text"] and "For example: `/topup 50`." in reply["text"]
    assert not buttons(reply["blocks"])
    assert gateway == [] and _wallet(context, ids["account"]) == before


def test_pay_button_creates_checkout_when_pressed(slack, fake_slack, gateway, ids):
    _, url = slack.command("/topup", "$50")
    pay = buttons(response_posts(fake_slack, url)[0]["blocks"])["Pay $50.00"]
    response, message_url = slack.click(pay["action_id"], pay["value"])
    assert response.status_code == 200
    [shown] = response_posts(fake_slack, message_url)
    assert gateway == [("topup_checkout", ids["account"], 5000, "UADMIN")]
    assert shown["replace_original"] is True
    link = buttons(shown["blocks"])["Open payment page ($50.00)"]
    assert link["url"] == "https://checkout.stripe.test/c/1"
    assert "https://checkout.stripe.test/c/1" in shown["text"]


@pytest.mark.parametrize(
    ("error", "said"),
    [(RuntimeError("Stripe is unreachable"), "Stripe is unreachable"),
     (NotImplementedError(), "payments are not set up on this creditbot yet")],
)  # fmt: skip
def test_pay_button_when_stripe_fails_says_so(slack, fake_slack, monkeypatch, error, said):
    def broken(*args):
        raise error

    monkeypatch.setattr(stripe_gateway, "create_topup_checkout", broken)
    _, url = slack.command("/topup", "20")
    pay = buttons(response_posts(fake_slack, url)[0]["blocks"])["Pay $20.00"]
    _, message_url = slack.click(pay["action_id"], pay["value"])
    [shown] = response_posts(fake_slack, message_url)
    assert f"Could not open the payment page for $20.00: {said}" in shown["text"]


def test_charge_card_button_for_admins_with_a_saved_card(slack, fake_slack, gateway, card, ids):
    _, url = slack.command("/topup", "50")
    found = buttons(response_posts(fake_slack, url)[0]["blocks"])
    charge = found["Charge card •••• 4242"]
    assert (
        charge["confirm"]["text"]["text"]
        == "$50.00 will be charged to Visa •••• 4242 now and added to the wallet."
    )
    assert charge["confirm"]["confirm"]["text"] == "Charge $50.00"
    _, first = slack.click(charge["action_id"], charge["value"])
    [shown] = response_posts(fake_slack, first)
    assert (
        "Charging $50.00 to Visa •••• 4242. The wallet is credited as soon as Stripe confirms the payment."
        in shown["text"]
    )
    slack.click(charge["action_id"], charge["value"])  # a double click: the same key
    fake_slack.wait_for("response_url", 3)
    keys = {c[3] for c in gateway}
    assert [c[:3] for c in gateway] == [("charge", ids["account"], 5000)] * 2 and len(keys) == 1


def test_charge_card_refused_to_members(slack, fake_slack, gateway, card):
    _, url = slack.command("/topup", "50", user=OWNER)
    charge = buttons(response_posts(fake_slack, url)[0]["blocks"])["Charge card •••• 4242"]
    _, message_url = slack.click(charge["action_id"], charge["value"], user=MEMBER)
    [shown] = response_posts(fake_slack, message_url)
    assert "Only billing admins can charge the saved card" in shown["text"]
    assert gateway == []


def test_topup_refused_to_members_naming_who_can(slack, fake_slack, context, ids, gateway):
    transaction(context.sessions, lambda s: set_billing_admins(s, ids["account"], [BILLING]))
    _, url = slack.command("/topup", "50", user=MEMBER)
    [reply] = response_posts(fake_slack, url)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (
        ":lock: Only billing admins can top up the wallet: workspace admins and owners, and the"
        " billing admins <@UBILLING>. Ask one of them to do it, or to make you a billing admin."
    )
    # a named billing admin may, without being a workspace admin
    users_info_before = len(fake_slack.of("users.info"))
    _, url = slack.command("/topup", "50", user=BILLING)
    assert "Pay $50.00" in buttons(response_posts(fake_slack, url)[0]["blocks"])
    assert len(fake_slack.of("users.info")) == users_info_before


def test_topup_alone_opens_modal_with_presets(slack, fake_slack, gateway, card):
    response, _ = slack.command("/topup", "")
    assert response.status_code == 200
    [opened] = fake_slack.wait_for("views.open")
    view = opened.args["view"]
    assert opened.args["trigger_id"].startswith("trigger.")
    assert view["callback_id"] == "topup_modal"
    presets = view["blocks"][0]["element"]["options"]
    assert [o["text"]["text"] for o in presets] == ["$20.00", "$50.00", "$100.00", "$250.00"]
    assert "Between $10.00 and $1,000.00." in texts(view["blocks"])

    # a preset
    reply = slack.submit(view, {"preset": "10000"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["response_action"] == "update"
    found = buttons(body["view"]["blocks"])
    assert set(found) == {"Pay $100.00", "Charge card •••• 4242"}

    # a typed amount wins over the preset; Pay inside the modal updates it with the link
    body = slack.submit(view, {"preset": "2000", "amount": "75"}).json()
    pay = buttons(body["view"]["blocks"])["Pay $75.00"]
    slack.click(pay["action_id"], pay["value"], view={**body["view"], "id": "V0042"})
    [update] = fake_slack.wait_for("views.update")
    assert update.args["view_id"] == "V0042"
    assert buttons(update.args["view"]["blocks"])["Open payment page ($75.00)"]["url"].startswith(
        "https://checkout.stripe.test/"
    )
    assert gateway[-1][2] == 7500


@pytest.mark.parametrize(
    ("answers", "error"),
    [({}, "Choose an amount or type one."), ({"amount": "abc"}, "'abc' is not an amount"),
     ({"amount": "2000"}, "The largest top-up is $1,000.00."), ({"amount": "9.99"}, "The smallest top-up is $10.00.")],
)  # fmt: skip
def test_topup_modal_errors_show_on_the_amount_field(slack, fake_slack, answers, error):
    slack.command("/topup", "")
    view = fake_slack.wait_for("views.open")[0].args["view"]
    body = slack.submit(view, answers).json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == ["amount"] and error in body["errors"]["amount"]


def test_topup_alone_refused_to_members(slack, fake_slack):
    _, url = slack.command("/topup", "", user=MEMBER)
    [reply] = response_posts(fake_slack, url)
    assert "Only billing admins can top up the wallet" in reply["text"]
    assert fake_slack.of("views.open") == []


def test_top_up_button_opens_the_modal_for_admins_only(slack, fake_slack):
    slack.click("open_topup", user=MEMBER)
    shown = fake_slack.wait_for("response_url")[0].args
    assert "Only billing admins can top up the wallet" in shown["text"]
    assert fake_slack.of("views.open") == []
    slack.click("open_topup", user=OWNER)
    assert fake_slack.wait_for("views.open")[0].args["view"]["callback_id"] == "topup_modal"


@pytest.mark.parametrize(
    ("result", "said"),
    [
        ({"status": "succeeded", "credited": 5_000_000, "wallet_balance": 5_500_000},
         ":white_check_mark: $50.00 charged to Visa •••• 4242: 5,000 credits added to the wallet, which now holds 5,500 credits."),
        ({"status": "failed", "reason": "card_declined", "message": "Your card has insufficient funds."},
         ":x: Charging $50.00 to Visa •••• 4242 failed: the card was declined (Your card has insufficient funds.)."),
        ({"status": "failed", "reason": "authentication_required"},
         ":x: Charging $50.00 to Visa •••• 4242 failed: the bank asks the cardholder to authenticate the payment."),
    ],
)  # fmt: skip
def test_charge_card_outcomes_are_told(slack, fake_slack, card, monkeypatch, result, said):
    from dataclasses import dataclass

    @dataclass
    class Outcome:  # shaped like the payments part's SavedCardCharge
        status: str
        credited: int = 0
        wallet_balance: int | None = None
        reason: str | None = None
        message: str | None = None

    monkeypatch.setattr(stripe_gateway, "charge_saved_card", lambda *a: Outcome(**result))
    _, url = slack.command("/topup", "50")
    charge = buttons(response_posts(fake_slack, url)[0]["blocks"])["Charge card •••• 4242"]
    _, message_url = slack.click(charge["action_id"], charge["value"])
    [shown] = response_posts(fake_slack, message_url)
    assert shown["text"] == said


def test_link_buttons_are_only_acknowledged(slack, fake_slack, gateway):
    """Slack opens a URL button's link itself and still sends the click: ack, do nothing."""
    import time

    response, _ = slack.click("open_link", extra={"url": "https://checkout.stripe.test/c/1"})
    assert response.status_code == 200 and response.text == ""
    time.sleep(0.2)
    assert [c.method for c in fake_slack.calls] == [] or {c.method for c in fake_slack.calls} == {
        "auth.test"
    }
    assert gateway == []


@pytest.mark.parametrize(
    ("low", "high", "said"),
    [(1000, 2000, "The largest top-up is $20.00."), (6000, 100_000, "The smallest top-up is $60.00.")],
)  # fmt: skip
def test_pay_after_the_limits_changed_tells_the_new_limit_and_opens_nothing(
    slack, fake_slack, context, ids, monkeypatch, low, high, said
):
    """The offer was made under the old limits; Pay checks the amount again when pressed."""
    from bot.stripe import checkout
    from ledger.accounts import configure_account
    from ledger.topups import list_topups

    stripe_calls = []
    monkeypatch.setattr(checkout, "client", lambda context: stripe_calls.append(context))
    _, url = slack.command("/topup", "50")
    pay = buttons(response_posts(fake_slack, url)[0]["blocks"])["Pay $50.00"]
    transaction(  # an operator changes the limits meanwhile
        context.sessions,
        lambda s: configure_account(s, ids["account"], topup_min_minor=low, topup_max_minor=high),
    )
    _, message_url = slack.click(pay["action_id"], pay["value"])
    [shown] = response_posts(fake_slack, message_url)
    assert f"Could not open the payment page for $50.00: {said}" in shown["text"]
    assert not [b for b in buttons(shown["blocks"]) if b.startswith("Open payment page")]
    assert stripe_calls == []  # no Checkout page was asked for
    assert transaction(context.sessions, lambda s: list_topups(s, ids["account"])) == []


def test_hostile_amounts_get_an_inline_error_in_the_topup_modal(slack, fake_slack, gateway):
    slack.command("/topup", "")
    view = fake_slack.wait_for("views.open")[0].args["view"]
    for typed in NOT_AMOUNTS:
        body = slack.submit(view, {"amount": typed}).json()
        assert body["response_action"] == "errors", typed
        assert list(body["errors"]) == ["amount"], typed
    assert gateway == []


def test_a_euro_amount_on_a_dollar_account_is_refused(slack, fake_slack, gateway):
    _, url = slack.command("/topup", "€50")
    [reply] = response_posts(fake_slack, url)
    assert "'€50' is in EUR, but this account pays in USD" in reply["text"]
    assert not buttons(reply["blocks"]) and gateway == []
