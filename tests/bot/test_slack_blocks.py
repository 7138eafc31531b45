"""Every surface the builders make obeys Block Kit's rules, so Slack accepts it: limits on
blocks, text and options, unique ids, buttons with a value or a URL, initial options that
are among the options, and a text fallback on every message; slack_sdk.models' validators
agree. At any number of agents (issue 10, item 18)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.slack import blocks
from bot.slack.blocks.usage import billing_link_message, statement_link_message, usage_message
from bot.slack.dashboard_data import Card, Dashboard, RechargeAttempt
from bot.usage_summary import UsageSummary, months_before
from ledger.accounts import AgentView, BalanceView
from ledger.auto_recharge import AutoRecharge
from ledger.forecast import Forecast
from ledger.outbox import ALERT_KINDS
from ledger.usage import UsageRow
from tests.support.block_kit import check_message, check_options, check_view

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def _dashboard(agents: int = 3, *, card: bool = True, long_names: bool = False) -> Dashboard:
    name = "x" * 100 if long_names else "agent"
    view = BalanceView(
        account_id=1, name="Acme " * (40 if long_names else 1), currency="USD", plan_balance=250_000,
        plan_grant=1_000_000, wallet_balance=1_234_500, wallet_value_minor=1234, cycle_start=date(2026, 11, 1),
        next_renewal_at=datetime(2026, 12, 1, tzinfo=UTC),
        agents=[AgentView(i, f"{name}-{i}", "stopped" if i % 2 else "active", "monthly_limit" if i % 2 else None,
                          "stop" if i % 3 else "use_balance", 500_000 if i % 2 else None, 400_000) for i in range(1, agents + 1)],
    )  # fmt: skip
    return Dashboard(
        balance=view, timezone="Europe/Madrid",
        auto=AutoRecharge(enabled=True, threshold_minor=1000, amount_minor=5000, monthly_cap_minor=50000, paused=False),
        card=Card("visa", "4242") if card else None,
        last_attempt=RechargeAttempt(NOW, "failed", 5000, "card_declined", "declined", "https://fix.test"),
        forecast=Forecast(7, 100_000, NOW + timedelta(days=3), NOW + timedelta(days=9), view.next_renewal_at),
        alert_channel="C0ALERTS", billing_admins=["U1", "U2"], topup_min_minor=1000, topup_max_minor=100_000, now=NOW,
        usage=_usage(view), chart_url="https://creditbot.example/usage/1/chart.png?to=2026-11-10&signature=" + "f" * 64,
    )  # fmt: skip


def _usage(view: BalanceView) -> UsageSummary:
    start = date(2026, 10, 12)
    rows = [UsageRow(a.id, a.name, start + timedelta(days=d), None, 3, 1, 5_000, 2_000)
            for a in view.agents for d in range(0, 30, 3)]  # fmt: skip
    by_agent = [UsageRow(a.id, a.name, None, None, 30, 10, 50_000, 20_000) for a in view.agents]
    total = UsageRow(
        None, None, None, None, 30 * len(rows), 10 * len(rows), 5_000 * len(rows), 2_000 * len(rows)
    )
    return UsageSummary(1, view.name, "Europe/Madrid", start, date(2026, 11, 10), rows, by_agent, total, view.agents,
                        Forecast(7, 100_000, None, None, None, plan_beyond=True), months_before(date(2026, 11, 10)))  # fmt: skip


@pytest.mark.parametrize("agents", [0, 1, 40, 100, 101, 1000])
@pytest.mark.parametrize("long_names", [False, True])
def test_dashboard_surfaces(agents, long_names):
    d = _dashboard(agents, long_names=long_names)
    check_message(blocks.balance_message(d))
    check_view(blocks.home_view(d, notice=":white_check_mark: Alerts now go to <#C1>."))
    check_view(blocks.auto_recharge_modal(d, metadata='{"account_id": 1}'))
    check_view(blocks.auto_recharge_modal(_dashboard(agents, card=False)))
    if agents:
        for selected in (d.balance.agents[0], d.balance.agents[-1]):
            check_view(blocks.agent_modal(d.balance.agents, selected))

    for chart in (d.chart_url, None):
        check_message(usage_message(d.usage, chart))
    check_message(statement_link_message("2026-11", d.chart_url))
    check_message(billing_link_message(d.chart_url, True, 10))


@pytest.mark.parametrize("agents", [1, 100, 101, 1000])
def test_many_agents_are_summarised_and_searched(agents):
    d = _dashboard(agents, long_names=True)
    shown = blocks.balance_message(d)["blocks"]
    listed = [
        b for b in shown if (b.get("accessory") or {}).get("text", {}).get("text") == "Settings"
    ]
    assert len(listed) == min(agents, 20)
    if agents > 20:
        assert f"and {agents - 20} more agents" in str(shown)
    modal = blocks.agent_modal(d.balance.agents, d.balance.agents[-1])
    select = modal["blocks"][0]["element"]
    if agents <= 100:
        assert select["type"] == "static_select" and len(select["options"]) == agents
    else:  # more than one select holds: searched by name instead
        assert select["type"] == "external_select" and "options" not in select
    assert select["initial_option"]["value"] == str(agents)  # the last agent, shown
    everyone = [(a.id, a.name) for a in d.balance.agents]
    found = blocks.agent_search_options(everyone, "")
    check_options(found)
    assert len(found) == min(agents, 100)
    one = blocks.agent_search_options(everyone, f"-{agents}")
    assert str(agents) in [o["value"] for o in one]
    assert blocks.agent_search_options(everyone, "no such agent") == []


def test_topup_surfaces():
    for card in (None, Card("amex", "0005")):
        check_message(
            blocks.topup_offer_message(100_000, "USD", 100, card, "slack-topup:" + "f" * 32)
        )
    check_message(
        blocks.checkout_ready_message("$50.00", "https://checkout.stripe.com/c/pay/" + "a" * 300)
    )
    check_view(blocks.topup_modal("USD", 1000, 100_000))
    check_view(blocks.topup_modal("USD", 50_000, 60_000))  # no preset fits: just the field
    check_view(blocks.topup_modal("JPY", 1000, 100_000))
    check_view(blocks.info_modal("A title longer than Slack allows", "text"))
    check_message(blocks.not_linked_message("T0001"))
    check_message(blocks.info_message(blocks.refusal_text("top up the wallet", ["U1"] * 50)))


@pytest.mark.parametrize("kind", ALERT_KINDS)
@pytest.mark.parametrize("payload", [{}, {"agent_id": 7, "agent_name": "A", "reason": "plan_exhausted",
                                         "fix_url": "https://fix.test", "amount_minor": 100}])  # fmt: skip
def test_alert_surfaces(kind, payload):
    """Any payload, even an empty one, gives a valid message."""
    message = blocks.alert_message(kind, payload, account_name="Acme", currency="EUR", timezone="Asia/Tokyo",
                                   next_renewal_at=NOW)  # fmt: skip
    check_message(message)
