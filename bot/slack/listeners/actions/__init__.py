"""Buttons and selects: in /balance and /topup answers, alerts, modals and the Home tab."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.slack import blocks
from bot.slack.blocks.usage import OPEN_BILLING_PAGE, STATEMENT_MONTH
from bot.slack.listeners.actions import (
    agents,
    auto_recharge,
    fix_payment,
    home,
    spend_controls,
    topup,
    usage,
)
from bot.slack.middleware import acknowledge, billing_admins_only, in_a_linked_workspace


def url_button_pressed() -> None:
    """A URL button opens its page in the browser; Slack still sends the press, which only
    needs acknowledging."""


def register(app: App) -> None:
    top_up = billing_admins_only("top up the wallet")
    app.action(blocks.OPEN_TOPUP, middleware=top_up)(topup.open_topup)
    app.action(blocks.TOPUP_PAY, middleware=top_up)(topup.pay)
    app.action(blocks.TOPUP_CHARGE_CARD, middleware=billing_admins_only("charge the saved card"))(
        topup.charge_card
    )
    app.action(
        blocks.OPEN_AUTO_RECHARGE, middleware=billing_admins_only("change auto-recharge settings")
    )(auto_recharge.open_auto_recharge)
    app.action(blocks.ADD_CARD, middleware=billing_admins_only("add a card"))(
        auto_recharge.add_card
    )
    app.action(blocks.FIX_PAYMENT, middleware=billing_admins_only("fix the payment"))(
        fix_payment.fix_payment
    )
    app.action(blocks.MANAGE_CARD, middleware=billing_admins_only("manage the card"))(
        fix_payment.manage_card
    )
    agent_settings = billing_admins_only("change agent settings")
    app.action(blocks.OPEN_AGENT_SETTINGS, middleware=agent_settings)(agents.open_agent_settings)
    app.action(blocks.AGENT_SELECT, middleware=in_a_linked_workspace())(agents.agent_selected)
    # "Use balance" buttons of several agents in one block are `agent_use_balance:<id>`.
    use_balance = re.compile(rf"^{blocks.AGENT_USE_BALANCE}(:\d+)?$")
    app.action(use_balance, middleware=agent_settings)(agents.use_balance)
    app.action(blocks.AGENTS_USE_BALANCE_ALL, middleware=agent_settings)(agents.use_balance_for_all)
    app.action(
        blocks.OPEN_SPEND_CONTROLS,
        middleware=billing_admins_only("change the budget and alert levels"),
    )(spend_controls.open_spend_controls)
    app.action(
        blocks.HOME_ALERT_CHANNEL,
        middleware=billing_admins_only(
            "choose the alert channel", after_refusal=home.put_back_home_tab
        ),
    )(home.alert_channel_picked)
    app.action(blocks.OPEN_LINK, middleware=[acknowledge])(url_button_pressed)
    app.action(STATEMENT_MONTH, middleware=in_a_linked_workspace())(usage.statement_month_chosen)
    app.action(OPEN_BILLING_PAGE, middleware=in_a_linked_workspace())(usage.open_billing_page)
