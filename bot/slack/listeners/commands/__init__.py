"""Slash commands: /balance and /usage for anyone, /topup for billing admins."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.commands.balance import balance_command
from bot.slack.listeners.commands.topup import topup_command
from bot.slack.listeners.commands.usage import usage_command
from bot.slack.middleware import billing_admins_only, in_a_linked_workspace


def register(app: App) -> None:
    app.command("/balance", middleware=in_a_linked_workspace())(balance_command)
    app.command("/topup", middleware=billing_admins_only("top up the wallet"))(topup_command)
    app.command("/usage", middleware=in_a_linked_workspace())(usage_command)
