"""Alerts: the ledger's outbox posted to the account's alert channel, with retries; when
Slack answers 500 or 429 nothing is lost, and nothing is posted twice."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.context import build_context
from bot.slack import blocks
from bot.slack.alerts import deliver_due_alerts
from ledger import outbox
from ledger.accounts import set_alert_channel
from ledger.agents import get_agent
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from tests.support.factories import story
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import MEMBER, buttons, response_posts, settings_for, texts

CHANNEL = "C0ALERTS"


@pytest.fixture
def alerting(db_url, fake_slack):
    """An account (on SQLite and PostgreSQL) whose alerts go to #alerts."""
    ctx = build_context(settings_for(db_url, fake_slack))
    ids = story(ctx.sessions, now=utcnow())
    transaction(ctx.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    yield ctx, ids
    ctx.engine.dispose()


def _stop_agent_a(ctx, ids, key="k1"):
    """A (stop) uses the whole plan: plan low, plan exhausted, A stopped."""
    return transaction(
        ctx.sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 1000, idempotency_key=key),
    )


def _pending(ctx):
    return transaction(
        ctx.sessions, lambda s: [(m.kind, m.attempts, m.last_error) for m in outbox.pending(s)]
    )


def test_agent_stopped_alert_is_posted_once_with_buttons(alerting, fake_slack):
    ctx, ids = alerting
    _stop_agent_a(ctx, ids)
    kinds = [k for k, *_ in _pending(ctx)]
    assert kinds == ["alert.plan_low", "alert.plan_exhausted", "alert.agent_stopped"]

    assert deliver_due_alerts(ctx) == 3
    posts = [c.args for c in fake_slack.of("chat.postMessage")]
    assert [p["channel"] for p in posts] == [CHANNEL] * 3
    assert posts[0]["text"].startswith(
        "[Acme] Plan credits are running low: 0 of 1,000 credits left (0%)."
    )
    stopped = posts[2]
    assert stopped["text"] == "[Acme] A stopped: plan credits ran out."
    assert "*A* stopped: plan credits ran out." in texts(stopped["blocks"])
    found = buttons(stopped["blocks"])
    assert set(found) == {"Top up", "Use balance for this agent", "Agent settings"}
    assert found["Use balance for this agent"]["value"] == str(ids["a"])
    assert _pending(ctx) == []

    assert deliver_due_alerts(ctx) == 0  # delivered ones are never posted again
    assert len(fake_slack.of("chat.postMessage")) == 3


def test_slack_500_then_delivered_later_exactly_once_in_order(alerting, fake_slack):
    ctx, ids = alerting
    _stop_agent_a(ctx, ids)
    now = utcnow()
    fake_slack.fail_with(500, times=2)  # the first post and its one retry

    assert deliver_due_alerts(ctx, now=now) == 0
    assert [c.status for c in fake_slack.of("chat.postMessage", ok_only=False)] == [500, 500]
    pending = _pending(ctx)
    assert [p[:2] for p in pending] == [
        ("alert.plan_low", 1),
        ("alert.plan_exhausted", 0),
        ("alert.agent_stopped", 0),
    ]
    assert "slack 500" in pending[0][2]

    assert deliver_due_alerts(ctx, now=now + timedelta(seconds=1)) == 0  # backing off
    assert len(fake_slack.of("chat.postMessage", ok_only=False)) == 2

    assert deliver_due_alerts(ctx, now=now + outbox.backoff(1)) == 3  # Slack is back
    delivered = [c.args["text"] for c in fake_slack.of("chat.postMessage")]
    starts = [
        "[Acme] Plan credits are running low",
        "[Acme] Plan credits are used up",
        "[Acme] A stopped",
    ]
    assert len(delivered) == 3
    assert all(text.startswith(start) for text, start in zip(delivered, starts, strict=True))
    assert deliver_due_alerts(ctx, now=now + timedelta(hours=1)) == 0
    assert len(fake_slack.of("chat.postMessage")) == 3 and _pending(ctx) == []


def test_slack_500_once_is_retried_by_the_client(alerting, fake_slack):
    ctx, ids = alerting
    _stop_agent_a(ctx, ids)
    fake_slack.fail_with(500, times=1)
    assert deliver_due_alerts(ctx) == 3
    assert [c.status for c in fake_slack.of("chat.postMessage", ok_only=False)] == [
        500,
        200,
        200,
        200,
    ]


def test_rate_limited_waits_for_retry_after_then_delivers_once(alerting, fake_slack):
    ctx, ids = alerting
    _stop_agent_a(ctx, ids)
    now = utcnow()
    fake_slack.rate_limit(retry_after=30, times=1)  # too long to sleep on: left to the outbox
    assert deliver_due_alerts(ctx, now=now) == 0
    assert [c.status for c in fake_slack.of("chat.postMessage", ok_only=False)] == [429]
    assert "ratelimited" in _pending(ctx)[0][2]

    assert deliver_due_alerts(ctx, now=now + timedelta(seconds=29)) == 0  # Slack said 30 s
    assert len(fake_slack.of("chat.postMessage", ok_only=False)) == 1
    assert deliver_due_alerts(ctx, now=now + timedelta(seconds=30)) == 3
    assert len(fake_slack.of("chat.postMessage")) == 3
    assert deliver_due_alerts(ctx, now=now + timedelta(minutes=5)) == 0
    assert len(fake_slack.of("chat.postMessage")) == 3


def test_short_rate_limit_is_slept_through_by_the_client(context, fake_slack, ids):
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    _stop_agent_a(context, ids)
    fake_slack.rate_limit(retry_after=0, times=1)
    assert deliver_due_alerts(context) == 3
    assert [c.status for c in fake_slack.of("chat.postMessage", ok_only=False)] == [
        429,
        200,
        200,
        200,
    ]


def test_slack_unreachable_keeps_alerts(context, fake_slack, ids):
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    _stop_agent_a(context, ids)
    fake_slack.stop()  # Slack is down: connections refused
    assert deliver_due_alerts(context) == 0
    assert [a for _, a, _ in _pending(context)] == [1, 0, 0]


def test_without_an_alert_channel_alerts_wait_until_one_is_picked(slack, fake_slack, context, ids):
    _stop_agent_a(context, ids)
    assert deliver_due_alerts(context) == 0
    assert "no alert channel" in _pending(context)[0][2]
    assert fake_slack.of("chat.postMessage") == []
    # an admin picks #alerts in the Home tab: alerts waiting for it go out on the next round
    slack.click("home_alert_channel", view={"type": "home", "id": "VHOME"}, block_id="alert_channel",
                extra={"type": "conversations_select", "selected_conversation": CHANNEL})  # fmt: skip
    [hello] = fake_slack.wait_for("chat.postMessage")
    assert (
        hello.args["channel"] == CHANNEL and "balance alerts in this channel" in hello.args["text"]
    )
    assert deliver_due_alerts(context) == 3
    assert [c.args["channel"] for c in fake_slack.of("chat.postMessage")] == [CHANNEL] * 4


def test_use_balance_button_on_the_stopped_alert(slack, fake_slack, context, ids):
    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    _stop_agent_a(context, ids)
    deliver_due_alerts(context)
    stopped = fake_slack.of("chat.postMessage")[-1].args
    use = buttons(stopped["blocks"])["Use balance for this agent"]

    _, url = slack.click(use["action_id"], use["value"], user=MEMBER)
    assert (
        "Only billing admins can change agent settings"
        in response_posts(fake_slack, url)[0]["text"]
    )
    assert (
        transaction(context.sessions, lambda s: get_agent(s, ids["account"], ids["a"]).status)
        == "stopped"
    )

    _, url = slack.click(use["action_id"], use["value"])
    [reply] = response_posts(fake_slack, url)
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert "A had stopped (plan credits ran out) and has resumed." in reply["text"]
    agent = transaction(context.sessions, lambda s: get_agent(s, ids["account"], ids["a"]))
    assert (agent.status, agent.behaviour) == ("active", "use_balance")
    # the resume is itself an alert
    assert deliver_due_alerts(context) == 1
    resumed = fake_slack.of("chat.postMessage")[-1].args["text"]
    assert (
        resumed
        == "[Acme] A resumed: its settings were changed (it had stopped because plan credits ran out)."
    )


def test_every_alert_kind_reads_as_a_sentence():
    samples = {
        "alert.plan_low": {"plan_balance": 150_000, "plan_grant": 1_000_000},
        "alert.plan_exhausted": {"plan_balance": 0},
        "alert.wallet_low": {"wallet_balance": 900_000, "threshold": 1_000_000},
        "alert.limit_80": {"agent_id": 1, "agent_name": "A", "month_spend": 400_000, "limit": 500_000},
        "alert.limit_100": {"agent_id": 1, "agent_name": "A", "month_spend": 500_000, "limit": 500_000},
        "alert.agent_stopped": {"agent_id": 1, "agent_name": "A", "reason": "monthly_limit"},
        "alert.agent_resumed": {"agent_id": 1, "agent_name": "A", "previous_reason": "wallet_empty", "cause": "wallet_credit"},
        "alert.topup_received": {"amount_minor": 5000, "credits": 5_000_000, "wallet_balance": 5_500_000,
                                  "source": "saved_card", "requested_by": "U0PAYER", "currency": "USD"},
        "alert.recharge_succeeded": {"amount_minor": 5000, "credits": 5_000_000},
        "alert.recharge_failed": {"amount_minor": 5000, "reason": "card_declined", "message": "Your card was declined.",
                                  "fix_url": "https://billing.stripe.test/fix"},
        "alert.auto_recharge_paused": {"failures": 3, "reason": "card_declined", "fix_url": "https://fix.test/1"},
        "alert.refund_shortfall": {"shortfall": 200_000},
        "alert.cycle_renewed": {"granted": 1_000_000, "expired": 120_000, "next_renewal_at": "2027-01-01T00:00:00+00:00"},
        "alert.plan_recovered": {"plan_balance": 600_000, "plan_grant": 1_000_000},
        "alert.wallet_recovered": {"wallet_balance": 2_000_000},
        "alert.limit_level": {"agent_id": 1, "agent_name": "A", "month_spend": 250_000, "limit": 500_000, "level": 50},
        "alert.budget_level": {"month_spend": 800_000, "budget": 1_000_000, "level": 80},
        "alert.budget_reached": {"month_spend": 1_000_000, "budget": 1_000_000},
    }  # fmt: skip
    assert set(samples) == set(outbox.ALERT_KINDS)
    expected = {
        "alert.plan_low": "Plan credits are running low: 150 of 1,000 credits left (15%).",
        "alert.wallet_low": "The wallet is low: 900 credits left (alert below 1,000 credits).",
        "alert.limit_80": "A has used 80% of its monthly limit: 400 of 500 credits.",
        "alert.limit_100": "A reached its monthly limit: 500 of 500 credits.",
        "alert.agent_stopped": "A stopped: it reached its monthly spending limit.",
        "alert.agent_resumed": "A resumed: the wallet was topped up (it had stopped because plan credits and the wallet ran out).",
        "alert.topup_received": "Top-up received: $50.00, 5,000 credits added to the wallet. Paid with the saved card by <@U0PAYER>. The wallet now holds 5,500 credits.",
        "alert.auto_recharge_paused": "Auto-recharge paused itself after 3 failed attempts in a row (the last: the card was declined).",
        "alert.recharge_succeeded": "Auto-recharge succeeded: $50.00 (5,000 credits).",
        "alert.recharge_failed": "Auto-recharge of $50.00 failed: the card was declined (Your card was declined.).",
        "alert.refund_shortfall": "200 credits could not be taken back.",
        "alert.cycle_renewed": "New cycle: 1,000 credits of plan credits granted (120 credits left from the last cycle expired). Next renewal: 1 Jan 2027.",
        "alert.plan_recovered": "Plan credits are back above their alert levels: 600 of 1,000 credits left.",
        "alert.wallet_recovered": "The wallet is back above its alert levels: 2,000 credits.",
        "alert.limit_level": "A has used 50% of its monthly limit: 250 of 500 credits.",
        "alert.budget_level": "The agents have used 80% of the account's monthly budget: 800 of 1,000 credits this month.",
        "alert.budget_reached": "The account reached its monthly budget (1,000 of 1,000 credits this month): every agent is stopped",
    }  # fmt: skip
    for kind, payload in samples.items():
        message = blocks.alert_message(kind, payload, account_name="Acme", currency="USD", timezone="UTC",
                                       next_renewal_at=None)  # fmt: skip
        assert message["text"].startswith("[Acme] ")
        assert kind.removeprefix("alert.") not in message["text"]  # no raw kind names
        if kind in expected:
            assert expected[kind] in message["text"], (kind, message["text"])
    failed = blocks.alert_message("alert.recharge_failed", samples["alert.recharge_failed"], account_name="Acme",
                                  currency="USD", timezone="UTC", next_renewal_at=None)  # fmt: skip
    # Issue 10 item 11: the fix is a button for billing admins, never a link anyone in the
    # channel could open (it used to be `url == "https://billing.stripe.test/fix"`).
    fix = buttons(failed["blocks"])["Fix the payment"]
    assert fix["action_id"] == blocks.FIX_PAYMENT and "url" not in fix
    assert "billing.stripe.test" not in json.dumps(failed)


def test_a_slow_round_hands_back_what_it_could_not_post_in_its_lease(
    context, fake_slack, ids, monkeypatch
):
    import bot.slack.alerts as alerts

    transaction(context.sessions, lambda s: set_alert_channel(s, ids["account"], CHANNEL))
    _stop_agent_a(context, ids)
    monkeypatch.setattr(alerts, "LEASE", timedelta(seconds=0.4))
    fake_slack.delays["chat.postMessage"] = 0.25
    now = utcnow()
    first = deliver_due_alerts(context, now=now)
    assert 1 <= first < 3
    # the rest is due again at once, not after the lease
    fake_slack.delays.clear()
    assert deliver_due_alerts(context, now=now) == 3 - first
    assert len(fake_slack.of("chat.postMessage")) == 3 and _pending(context) == []
