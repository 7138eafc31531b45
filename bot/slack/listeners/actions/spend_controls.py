"""Budget and alerts (opens the modal) on the App Home and `/balance`."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.slack import blocks
from bot.slack.bolt_context import account_of, app_context
from bot.slack.dashboard_data import load_dashboard


def open_spend_controls(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    account = account_of(context)
    board = load_dashboard(app_context(context), account.id)
    client.views_open(
        trigger_id=body["trigger_id"],
        view=blocks.spend_controls_modal(board, metadata=json.dumps({"account_id": account.id})),
    )
