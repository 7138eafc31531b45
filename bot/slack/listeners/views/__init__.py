"""Modal submissions: top-up, auto-recharge settings, agent settings, budget and alerts. A saved setting
refreshes the account's open Home tabs in a lazy listener, once the modal is answered."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import blocks
from bot.slack.listeners.views.agent_settings import agent_settings_submitted
from bot.slack.listeners.views.auto_recharge import auto_recharge_submitted
from bot.slack.listeners.views.home_refresh import refresh_account_home_tabs
from bot.slack.listeners.views.spend_controls import spend_controls_submitted
from bot.slack.listeners.views.topup import topup_submitted
from bot.slack.middleware import billing_admins_only_in_modal


def register(app: App) -> None:
    app.view(
        blocks.TOPUP_MODAL, middleware=billing_admins_only_in_modal("amount", "top up the wallet")
    )(topup_submitted)
    app.view(
        blocks.AUTO_RECHARGE_MODAL,
        middleware=billing_admins_only_in_modal("threshold", "change auto-recharge settings"),
    )(ack=auto_recharge_submitted, lazy=[refresh_account_home_tabs])
    app.view(
        blocks.AGENT_MODAL,
        middleware=billing_admins_only_in_modal("agent", "change agent settings"),
    )(ack=agent_settings_submitted, lazy=[refresh_account_home_tabs])
    app.view(
        blocks.SPEND_CONTROLS_MODAL,
        middleware=billing_admins_only_in_modal("budget", "change the budget and alert levels"),
    )(ack=spend_controls_submitted, lazy=[refresh_account_home_tabs])
