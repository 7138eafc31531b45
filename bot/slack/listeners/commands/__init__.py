"""Slash commands: /balance and /topup."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.commands.balance import balance_command
from bot.slack.listeners.commands.topup import topup_command


def register(app: App) -> None:
    app.command("/balance")(balance_command)
    app.command("/topup")(topup_command)
