"""Modal submissions: top-up, auto-recharge settings, agent settings."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import blocks
from bot.slack.listeners.views import agent_settings, auto_recharge, topup


def register(app: App) -> None:
    app.view(blocks.TOPUP_MODAL)(topup.topup_submitted)
    app.view(blocks.AUTO_RECHARGE_MODAL)(auto_recharge.auto_recharge_submitted)
    app.view(blocks.AGENT_MODAL)(agent_settings.agent_settings_submitted)
