"""/balance through the real server and Bolt app: what a person sees in the blocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest

from bot.slack import dashboard_data
from bot.slack.dashboard_data import Card, RechargeAttempt
from ledger.agents import update_agent
from ledger.auto_recharge import update_auto_recharge
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models import Account
from ledger.stripe_records import save_card
from ledger.units import credits
from tests.support.factories import story
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import MEMBER, Server, Slack, buttons, response_posts, texts


def _charge(context, account, agent, n, key, now=None):
    return transaction(
        context.sessions,
        lambda s: charge(s, account, agent, "message", n, idempotency_key=key, now=now),
    )


def test_balance_shows_wallet_plan_renewal_agents_and_buttons(slack, fake_slack, context, ids):
    # A (stop, limit 50) spends 40; B (use_balance) spends the rest of the plan; the wallet
    # is empty, so B stops (wallet_empty) and A's next message is refused (plan_exhausted).
    transaction(
        context.sessions,
        lambda s: update_agent(s, ids["account"], ids["a"], monthly_limit=credits(50)),
    )
    from ledger.wallet import debit_wallet

    transaction(
        context.sessions, lambda s: debit_wallet(s, ids["account"], credits(500), key="empty")
    )
    assert _charge(context, ids["account"], ids["a"], 40, "a1").allowed
    assert _charge(context, ids["account"], ids["b"], 960, "b1").allowed
    assert not _charge(context, ids["account"], ids["a"], 1, "a2").allowed

    response, url = slack.command("/balance", user=MEMBER)

    assert response.status_code == 200 and response.text == ""  # acked at once, empty
    [reply] = response_posts(fake_slack, url)
    assert reply["response_type"] == "ephemeral"
    seen = texts(reply["blocks"])
    assert "*Wallet*\n0 credits ($0.00)" in seen
    assert "0 of 1,000 left" in seen and "`░░░░░░░░░░` 0%" in seen
    renewal = transaction(
        context.sessions, lambda s: s.get(Account, ids["account"]).next_renewal_at
    )
    assert f"*Next renewal*\n{renewal.day} {renewal:%b %Y}" in seen
    assert "*A*: :red_circle: stopped: plan credits ran out" in seen
    assert "40 of 50 credits this month (80%)" in seen
    assert "*B*: :red_circle: stopped: plan credits and the wallet ran out" in seen
    assert "960 credits this month, no monthly limit" in seen
    assert "Auto-recharge:* off" in seen and "no saved card" in seen
    assert {"Top up", "Auto-recharge settings", "Agent settings"} <= set(buttons(reply["blocks"]))
    assert reply["text"].startswith("Acme: wallet 0 credits ($0.00); plan credits 0 of 1,000 left")


def test_balance_forecast_at_the_last_7_days_pace(fake_slack, context):
    now = utcnow()
    start = now - timedelta(days=8)
    ids = story(context.sessions, plan=1000, wallet=500, now=start, cycle_day=start.day)
    for day in range(7, 0, -1):  # 100 credits a day for the 7 days before today (UTC noon)
        noon = datetime.combine(now.date() - timedelta(days=day), clock(12), tzinfo=UTC)
        _charge(context, ids["account"], ids["a"], 100, f"d{day}", now=noon)
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.command("/balance")
        [reply] = response_posts(fake_slack, url)
    seen = texts(reply["blocks"])
    plan_end = now + timedelta(days=3)  # 300 credits left at 100 a day
    wallet_end = plan_end + timedelta(days=5)  # then 500 in the wallet
    assert "300 of 1,000 left" in seen and "`███░░░░░░░` 30%" in seen
    assert (
        f"At the last 7 days' pace (100 credits a day), plan credits last until"
        f" {plan_end.day} {plan_end:%b}, the wallet until {wallet_end.day} {wallet_end:%b}."
    ) in seen


def test_balance_shows_auto_recharge_card_and_last_attempt(
    slack, fake_slack, context, ids, monkeypatch
):
    def settings(s):
        save_card(
            s,
            ids["account"],
            customer_id="cus_1",
            payment_method_id="pm_1",
            brand="visa",
            last4="4242",
        )
        update_auto_recharge(
            s, ids["account"], enabled=True, threshold_minor=1000, amount_minor=5000
        )

    transaction(context.sessions, settings)
    at = utcnow() - timedelta(days=1)
    monkeypatch.setattr(dashboard_data, "saved_card", lambda s, a: Card("visa", "4242"))
    monkeypatch.setattr(
        dashboard_data,
        "last_recharge",
        lambda s, a: RechargeAttempt(
            at, "failed", 5000, "card_declined", "Your card was declined.", None
        ),
    )
    _, url = slack.command("/balance")
    seen = texts(response_posts(fake_slack, url)[0]["blocks"])
    assert (
        "*Auto-recharge:* on: when the wallet drops below $10.00, add $50.00 (at most $500.00 a month)"
        in seen
    )
    assert "Card: Visa •••• 4242" in seen
    assert (
        f"Last attempt of $50.00: {at.day} {at:%b %Y}, failed: the card was declined (Your card was declined.)"
        in seen
    )


def test_balance_in_a_workspace_without_an_account(slack, fake_slack):
    _, url = slack.command("/balance", team="T0OTHER")
    [reply] = response_posts(fake_slack, url)
    assert "not linked to a creditbot account" in reply["text"]
    assert "creditbot accounts link --account NAME --team T0OTHER" in reply["text"]


@pytest.mark.parametrize("agents", [0, 25])
def test_balance_with_no_agents_or_many(fake_slack, context, agents):
    from ledger.accounts import AccountSettings, create_account
    from ledger.agents import add_agent

    def setup(s):
        account = create_account(
            s, AccountSettings(name="Solo", slack_team_id="T0001", plan_credits=credits(10))
        )
        for i in range(agents):
            add_agent(s, account.id, f"agent-{i:02d}")

    transaction(context.sessions, setup)
    with Server(context) as server:
        _, url = Slack(server.url, fake_slack, context).command("/balance")
        [reply] = response_posts(fake_slack, url)
    seen = texts(reply["blocks"])
    assert len(reply["blocks"]) <= 50  # Slack's limit for a message
    if agents:
        assert "*Agents* (25)" in seen and "and 5 more agents" in seen
    else:
        assert "*Agents*: none yet." in seen


def test_commands_are_acknowledged_at_once_even_when_slack_is_slow(slack, fake_slack):
    """Slack wants the acknowledgement within 3 seconds; the answer may come later. The
    permission check (users.info) is held unanswered until the acknowledgement is in: an
    ack that waited for Slack would only come once the hold gave up, after Slack answered
    (no clock: on a busy machine a timed bound failed while the ack did not wait)."""
    import threading

    slow_check = fake_slack.holds["users.info"] = threading.Event()
    try:
        response, url = slack.command("/topup", "50", user="UOWNER")
        assert response.status_code == 200
        assert fake_slack.of("users.info", ok_only=False) == []  # Slack has not answered yet
    finally:
        slow_check.set()
    assert fake_slack.wait_for("users.info", timeout=30)  # the check was on the answer's path
    [reply] = response_posts(fake_slack, url)
    assert "Pay $50.00" in buttons(reply["blocks"])
    # meanwhile the server kept answering other requests
    assert slack.http.get("/healthz").status_code == 200
