"""Buttons and selects: in /balance and /topup answers, alerts, modals and the Home tab."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import blocks
from bot.slack.blocks.usage import OPEN_BILLING_PAGE, STATEMENT_MONTH
from bot.slack.listeners.actions import agents, auto_recharge, fix_payment, home, topup, usage
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
    agent_settings = billing_admins_only("change agent settings")
    app.action(blocks.OPEN_AGENT_SETTINGS, middleware=agent_settings)(agents.open_agent_settings)
    app.action(blocks.AGENT_SELECT, middleware=in_a_linked_workspace())(agents.agent_selected)
    app.action(blocks.AGENT_USE_BALANCE, middleware=agent_settings)(agents.use_balance)
    app.action(
        blocks.HOME_ALERT_CHANNEL,
        middleware=billing_admins_only(
            "choose the alert channel", after_refusal=home.put_back_home_tab
        ),
    )(home.alert_channel_picked)
    app.action(blocks.OPEN_LINK, middleware=[acknowledge])(url_button_pressed)
    app.action(STATEMENT_MONTH, middleware=in_a_linked_workspace())(usage.statement_month_chosen)
    app.action(OPEN_BILLING_PAGE, middleware=in_a_linked_workspace())(usage.open_billing_page)
