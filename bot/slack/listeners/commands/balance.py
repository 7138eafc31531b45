"""/balance: the account's dashboard, privately, for anyone in the workspace."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.dashboard_data import load_dashboard
from bot.slack.deps import app_context, guarded, require_account


@guarded
def balance_command(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    account = require_account(context, body, client, respond)
    if account is None:
        return
    dashboard = load_dashboard(app_context(context), account.id)
    respond(response_type="ephemeral", **blocks.balance_message(dashboard))
