"""Every surface the builders make obeys Block Kit's rules, so Slack accepts it: limits on
blocks, text and options, unique ids, buttons with a value or a URL, initial options that
are among the options, and a text fallback on every message."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

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


def check_text(obj: dict[str, Any], limit: int, where: str) -> None:
    assert obj["type"] in ("plain_text", "mrkdwn"), where
    assert 0 < len(obj["text"]) <= limit, (where, len(obj["text"]))


def check_element(el: dict[str, Any], where: str) -> None:
    assert 0 < len(el.get("action_id", "x")) <= 255, where
    kind = el["type"]
    if kind == "button":
        check_text(el["text"], 75, where)
        if "value" in el:  # optional, but never empty
            assert 0 < len(el["value"]) <= 2000, f"{where}: an empty button value"
        assert len(el.get("url", "")) <= 3000
        assert el.get("style") in (None, "primary", "danger")
        if "confirm" in el:
            c = el["confirm"]
            check_text(c["title"], 100, where)
            check_text(c["text"], 300, where)
            check_text(c["confirm"], 30, where)
            check_text(c["deny"], 30, where)
    elif kind in ("radio_buttons", "static_select"):
        options = el["options"]
        assert 0 < len(options) <= (10 if kind == "radio_buttons" else 100), where
        for o in options:
            check_text(o["text"], 75, where)
            assert 0 < len(o["value"]) <= 150
        if "initial_option" in el:
            assert el["initial_option"] in options, f"{where}: initial option not among the options"
    elif kind == "plain_text_input":
        assert len(el.get("initial_value", "")) <= 3000
    elif kind == "conversations_select":
        check_text(el["placeholder"], 150, where)
    else:
        raise AssertionError(f"{where}: unexpected element {kind}")


def check_blocks(items: list[dict[str, Any]], max_blocks: int) -> None:
    assert 0 < len(items) <= max_blocks
    block_ids = [b["block_id"] for b in items if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique"
    for i, b in enumerate(items):
        where = f"block {i} ({b['type']})"
        if b["type"] == "section":
            assert "text" in b or "fields" in b
            if "text" in b:
                check_text(b["text"], 3000, where)
            for f in b.get("fields", []):
                check_text(f, 2000, where)
            assert len(b.get("fields", [])) <= 10
            if "accessory" in b:
                check_element(b["accessory"], where)
        elif b["type"] == "actions":
            assert 0 < len(b["elements"]) <= 25
            ids = [e["action_id"] for e in b["elements"]]
            assert len(ids) == len(set(ids)), f"{where}: action ids must be unique in a block"
            for e in b["elements"]:
                check_element(e, where)
        elif b["type"] == "context":
            assert 0 < len(b["elements"]) <= 10
            for e in b["elements"]:
                check_text(e, 3000, where)
        elif b["type"] == "header":
            check_text(b["text"], 150, where)
        elif b["type"] == "image":
            assert 0 < len(b["image_url"]) <= 3000 and 0 < len(b["alt_text"]) <= 2000, where
            if "title" in b:
                check_text(b["title"], 2000, where)
        elif b["type"] == "input":
            check_text(b["label"], 2000, where)
            if "hint" in b:
                check_text(b["hint"], 2000, where)
            check_element(b["element"], where)
        else:
            assert b["type"] == "divider", where
        assert len(b.get("block_id", "")) <= 255


def check_message(message: dict[str, Any]) -> None:
    assert message["text"].strip(), "every message has a text fallback"
    assert len(message["text"]) <= 40_000
    check_blocks(message["blocks"], 50)


def check_view(view: dict[str, Any]) -> None:
    check_blocks(view["blocks"], 100)
    if view["type"] == "modal":
        check_text(view["title"], 24, "title")
        for key in ("submit", "close"):
            if key in view:
                check_text(view[key], 24, key)
        assert len(view.get("private_metadata", "")) <= 3000
        assert len(view.get("callback_id", "")) <= 255
    else:
        assert view["type"] == "home"


@pytest.mark.parametrize("agents", [0, 1, 40])
@pytest.mark.parametrize("long_names", [False, True])
def test_dashboard_surfaces(agents, long_names):
    d = _dashboard(agents, long_names=long_names)
    check_message(blocks.balance_message(d))
    check_view(blocks.home_view(d, notice=":white_check_mark: Alerts now go to <#C1>."))
    check_view(blocks.auto_recharge_modal(d, metadata='{"account_id": 1}'))
    check_view(blocks.auto_recharge_modal(_dashboard(agents, card=False)))
    if agents:
        check_view(blocks.agent_modal(d.balance.agents, d.balance.agents[-1]))
    for chart in (d.chart_url, None):
        check_message(usage_message(d.usage, chart))
    check_message(statement_link_message("2026-11", d.chart_url))
    check_message(billing_link_message(d.chart_url, True, 10))


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
