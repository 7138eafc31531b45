"""Buttons and selects: in /balance and /topup answers, alerts, modals and the Home tab."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import blocks
from bot.slack.listeners.actions import agents, home, settings, topup


def register(app: App) -> None:
    app.action(blocks.OPEN_TOPUP)(topup.open_topup)
    app.action(blocks.TOPUP_PAY)(topup.pay)
    app.action(blocks.TOPUP_CHARGE_CARD)(topup.charge_card)
    app.action(blocks.OPEN_AUTO_RECHARGE)(settings.open_auto_recharge)
    app.action(blocks.ADD_CARD)(settings.add_card)
    app.action(blocks.OPEN_AGENT_SETTINGS)(agents.open_agent_settings)
    app.action(blocks.AGENT_SELECT)(agents.agent_selected)
    app.action(blocks.AGENT_USE_BALANCE)(agents.use_balance)
    app.action(blocks.HOME_ALERT_CHANNEL)(home.alert_channel_picked)
    app.action(blocks.OPEN_LINK)(lambda ack: ack())
