"""/balance: the account's dashboard, privately, for anyone in the workspace."""

from __future__ import annotations

from slack_bolt import BoltContext, Respond

from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context
from bot.slack.dashboard_data import load_dashboard


def balance_command(context: BoltContext, respond: Respond) -> None:
    dashboard = load_dashboard(app_context(context), account_of(context).id)
    respond(response_type="ephemeral", **blocks.balance_message(dashboard))
