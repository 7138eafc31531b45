"""Publish the dashboard when someone opens the Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient

from bot.slack.deps import app_context, guarded
from bot.slack.home import publish_home


@guarded
def app_home_opened(
    ack: Ack, body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    if event.get("tab", "home") != "home":
        return
    publish_home(app_context(context), client, context.team_id, event["user"], opened=True)
